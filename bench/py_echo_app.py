"""The echo application of bench/python_compare.py: the same file runs under
the original AsyncAPY 0.5 (its source tree first on PYTHONPATH) and under our
package. Usage: python py_echo_app.py PORT (ECHO_BACKEND=asyncio for our
asyncio backend)"""

import logging
import os
import sys

from asyncapy import Server

# ECHO_BACKEND=asyncio picks our package's asyncio backend (the original has
# no such argument: it is passed only when set).
options = {"backend": os.environ["ECHO_BACKEND"]} if os.environ.get("ECHO_BACKEND") else {}
server = Server(addr="127.0.0.1", port=int(sys.argv[1]), logging_level=logging.WARNING, **options)


@server.add_handler()
async def echo(client, packet):
    await client.send(packet)


print("READY", flush=True)
server.start()
