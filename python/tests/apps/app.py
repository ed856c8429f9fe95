"""A test application: subclass state, push, sleeps, run_sync_task,
timeouts, failures, filters. Run as `python app.py [timeout]
[max_packet_size] [sync|async|asyncio]`: plain or async setup()/shutdown()
under trio, or async ones under the asyncio backend."""

import asyncio
import contextvars
import sys
import time

import trio

from asyncapy import Server
from asyncapy.filters import Filter, Filters
from asyncapy.util import APIKeyFactory

TIMEOUT = int(sys.argv[1]) if len(sys.argv) > 1 else 2
MAX = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
MODE = sys.argv[3] if len(sys.argv) > 3 else "sync"
ASYNC_HOOKS = MODE in ("async", "asyncio")
BACKEND = "asyncio" if MODE == "asyncio" else "trio"
sleep = asyncio.sleep if BACKEND == "asyncio" else trio.sleep
REQUEST = contextvars.ContextVar("request", default="unset")


class Exploding(Filter):
    def check(self, c, p):
        if p.get("op") == "explode":
            raise RuntimeError("filter blew up")
        return False


class IsVip(Filter):
    def check(self, c, p):
        return p.get("op") == "vip" and p.get("who") in c.server.vips


class NotFor(Filter):
    """Lets every packet through but those of the given ops."""

    def __init__(self, *ops):
        self.ops = ops

    def check(self, c, p):
        return p.get("op") not in self.ops


class App(Server):
    def setup(self):
        self.db = {"hits": 0}
        self.vips = {"ann"}
        self.cancelled = []
        self.key = KEYS.issue({"user": "bob"})
        self.ip_filter.ips.add("127.0.0.1")
        print("SETUP", "sync", flush=True)

    def shutdown(self):
        print("SHUTDOWN", self.db["hits"], flush=True)


class AsyncApp(App):
    async def setup(self):
        await sleep(0)
        App.setup(self)
        print("SETUP", "async", flush=True)

    async def shutdown(self):
        await sleep(0)
        App.shutdown(self)


KEYS = APIKeyFactory()

server = (AsyncApp if ASYNC_HOOKS else App)(
    addr="127.0.0.1", port=0, timeout=TIMEOUT, max_packet_size=MAX, backend=BACKEND
)
server.ip_filter = Filters.Ip([])


@server.add_handler(Exploding())
async def never(client, packet):
    await client.send({"never": True})


@server.add_handler(IsVip())
async def vip(client, packet):
    await client.send({"vip": packet["who"]})


@server.add_handler(server.ip_filter, Filters.Fields(op="ip"))
async def ip_only(client, packet):
    await client.send({"ip": client.address})


@server.add_handler(Filters.Fields(flt=r"1\.5"))
async def float_field(client, packet):
    # a float: Rust leaves str(value) to Python
    await client.send({"float": packet["flt"]})


@server.add_handler(Filters.Fields(look=r"(?=ab)a"))
async def lookahead(client, packet):
    # a look-ahead: not a Rust regex, checked in Python
    await client.send({"look": packet["look"]})


@server.add_handler(Filters.Fields(op="badsig"))
async def bad_signature(packet):  # called with (client, packet): a TypeError
    pass


@server.add_handler(Filters.Fields(op="sessions"))
async def sessions(client, packet):
    mine = client.session
    await client.send({
        "count": len(client.get_sessions()),
        "mine": str(mine.session_id) in [str(s) for s in client.get_sessions()],
        "same_client": mine.get_client() is client,
        "date": mine.date > 0,
        "sender": packet.sender is client,
        "repr": repr(client),
    })


@server.add_handler(Filters.Fields(op="key", key=None), Filters.APIFactory(KEYS, "key"))
async def key_ok(client, packet):
    await client.send({"key": KEYS.get(packet["key"])})


@server.add_handler(Filters.Fields(op="key", key=None))
async def key_refused(client, packet):
    await client.send({"key": "refused"})


@server.add_handler(NotFor("vip", "explode", "ip", "key", "sessions", None), group=-1)
async def main(client, packet):
    op = packet.get("op")
    app = client.server
    app.db["hits"] += 1
    if op == "count":
        await client.send({"hits": app.db["hits"], "session": str(client.session.session_id)})
        packet.stop_propagation()
    elif op == "sleep":
        await client.send({"before": True})
        await sleep(float(packet["s"]))
        await client.send({"after": True})
        packet.stop_propagation()
    elif op == "sync":
        result = await app.run_sync_task(lambda x: x * 2, packet["x"], cancellable=True)
        await client.send({"result": result})
        packet.stop_propagation()
    elif op == "sync_limited":
        # Not cancellable, behind a limiter, in the handler's context.
        limiter = asyncio.Semaphore(1) if BACKEND == "asyncio" else trio.CapacityLimiter(1)
        REQUEST.set(packet["tag"])
        seen = await app.run_sync_task(REQUEST.get, limiter=limiter)
        await client.send({"seen": seen})
        packet.stop_propagation()
    elif op == "slow":
        try:
            await sleep(60)
        finally:
            app.cancelled.append(packet["tag"])
    elif op == "cancelled":
        await client.send({"cancelled": app.cancelled})
        packet.stop_propagation()
    elif op == "fail":
        raise ValueError("boom")
    elif op == "fail_later":
        await sleep(0)
        raise ValueError("late boom")
    elif op == "stop_later":
        await sleep(0)
        await client.send({"stopping": True})
        packet.stop_propagation()
    elif op == "block":
        time.sleep(float(packet["s"]))
        await client.send({"blocked": True})
        packet.stop_propagation()
    elif op == "push":
        sent = 0
        for session in client.get_sessions():
            if session.session_id != client.session.session_id:
                await session.get_client().send({"pushed": packet["msg"]})
                sent += 1
        await client.send({"pushed_to": sent})
        packet.stop_propagation()
    elif op == "getkey":
        await client.send({"key": app.key})
        packet.stop_propagation()
    elif op == "revoke":
        KEYS.revoke(packet["key"])
        await client.send({"revoked": True})
        packet.stop_propagation()
    elif op == "close":
        await client.send({"bye": True}, close=True)
        packet.stop_propagation()
    elif op == "echo":
        await client.send(packet)
        packet.stop_propagation()


server.start()
