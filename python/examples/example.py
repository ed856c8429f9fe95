from asyncapy import Server

server = Server(addr='0.0.0.0',
                port=0
                )

async def echo_server(client, packet):
    print(f"Hello world from {client}!")
    print(f"Echoing back {packet}...")
    await client.send(packet)
    await client.close()

server.register_handler(echo_server)  # Register our handler

server.start()  # Start the server
