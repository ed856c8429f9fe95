"""AsyncAPY 0.5's API on the AsyncAPY for Rust engine.

``from asyncapy import Server`` and the rest of an AsyncAPY 0.5 application
work unchanged: the engine (sockets, framing, limits, timeouts, the built-in
filters) is Rust, the handlers run under trio (or asyncio: ``Server(backend="asyncio")``)
on one Python thread.
"""

from .core import Client, Packet, Session, Handler
from .server import Server

__version__ = "0.5.0"
__all__ = ["Server", "Client", "Packet", "Session", "Handler"]
