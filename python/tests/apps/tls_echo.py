"""The engine's TLS from Python: engine options as keyword arguments.
Usage: tls_echo.py CERT KEY"""

import sys

from asyncapy import Server

server = Server(addr="127.0.0.1", port=0, tls_cert=sys.argv[1], tls_key=sys.argv[2])


@server.add_handler()
async def echo(client, packet):
    await client.send(packet)


server.start()
