"""An application that configures logging itself, before start()."""

import logging

from asyncapy import Server

logging.basicConfig(format="MYLOG %(levelname)s %(name)s: %(message)s", level=logging.INFO)
server = Server(addr="127.0.0.1", port=0)


@server.add_handler()
async def echo(client, packet):
    logging.getLogger("app").info("handling %s", packet["n"])
    print("printed", packet["n"], flush=True)
    await client.send(packet)


server.start()
