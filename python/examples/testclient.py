# The seed's testclient.py, with its first line fixed: as documented,
# `import asyncapy.client` does not bind `client` (a NameError in any Python).
# The port comes from the command line (the examples listen on a free port).
import sys

from asyncapy import client

client = client.Client(tls=False, encoding="json")
client.connect("0.0.0.0", int(sys.argv[1]) if len(sys.argv) > 1 else 1500)
client.send({"test": 1})
response = client.receive()
print(response)
