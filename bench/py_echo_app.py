"""The echo application of bench/python_compare.py: the same file runs under
the original AsyncAPY 0.5 (its source tree first on PYTHONPATH) and under our
package. Usage: python py_echo_app.py PORT"""

import logging
import sys

from asyncapy import Server

server = Server(addr="127.0.0.1", port=int(sys.argv[1]), logging_level=logging.WARNING)


@server.add_handler()
async def echo(client, packet):
    await client.send(packet)


print("READY", flush=True)
server.start()
