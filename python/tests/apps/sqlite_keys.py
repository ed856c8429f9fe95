"""Filters.APIFactory over the engine's SQLite store. Usage: sqlite_keys.py DB_PATH"""

import sys

from asyncapy import Server
from asyncapy.filters import Filters
from asyncapy.util import SQLiteAPIKeyFactory

keys = SQLiteAPIKeyFactory(sys.argv[1])
server = Server(addr="127.0.0.1", port=0, timeout=5)


@server.add_handler(Filters.APIFactory(keys, "key"))
async def private(client, packet):
    metadata = await server.run_sync_task(keys.get, packet["key"])
    await client.send({"user": metadata["user"]})


@server.add_handler(group=1)
async def public(client, packet):
    await client.send({"public": True})


server.start()
