"""The :class:`Server`: AsyncAPY 0.5's server, on the Rust engine."""

import asyncio
import configparser
import contextvars
import functools
import inspect
import logging
import signal
import sys
import types

import outcome
import trio

from . import _engine
from .core import Client, Handler, Packet
from .errors import StopPropagation
from .filters import Filters
from .util import APIKeyFactory, _StoreAPIKeyFactory

__all__ = ["Server"]

log = logging.getLogger("asyncapy")

#: INI keys (and keyword arguments) of the engine's own options.
ENGINE_OPTIONS = (
    "max_packet_size",
    "max_connections",
    "max_outbox",
    "workers",
    "grace_period",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "proxy_protocol",
    "proxy_trusted",
)
_ORIGINAL_KEYS = (
    "port", "addr", "header_size", "byteorder", "timeout", "datefmt",
    "console_format", "encoding", "buf", "logging_level", "session_limit",
)

_DONE, _STOP, _FAILED, _PASS, _FAIL = 0, 1, 2, 3, 4

#: The event loops a server can run its handlers on.
BACKENDS = ("trio", "asyncio")

#: The signals that stop a server gracefully, and what is logged for each.
_STOP_SIGNALS = {
    signal.SIGINT: "{API main} Ctrl + C detected, exiting",
    signal.SIGTERM: "{API main} SIGTERM received, exiting",
}

#: Parked handler tasks kept for the next packets.
_MAX_IDLE_WORKERS = 256


@types.coroutine
def _resume(coro, yielded):
    """Goes on driving ``coro``, which yielded ``yielded`` to trio on its first
    step: forwards what trio sends or throws until it returns."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class _Events:
    """What both backends do with the engine's events that are not jobs."""

    def _other(self, event):
        """Runs an event that is not a job; true when the engine stopped."""
        kind = event[0]
        if kind == "filter":
            self._server._run_filter(self._engine, event)
        elif kind == "cancel":
            peer = self._cancel(event[1])
            if peer is not None:
                log.info(f"({peer.session_id}) {{Client handler}} The operation has timed out")
        elif kind == "log":
            self._server._emit(event)
        elif kind == "stopped":
            self._cancel_all()
            self.stopped.set()
            return True
        return False


class _Runner(_Events):
    """Runs the engine's events on trio: one task at a time is the *drainer*,
    which waits on the engine's wake descriptor, takes a batch of events and
    runs them in order, in itself.

    A handler's coroutine takes its first step right there (``coro.send``):
    one that returns without blocking (an echo: ``await client.send(p)``
    does not block) costs no trio task step. One that blocks (``await
    trio.sleep(1)``) keeps the drainer's task, which finishes it: the drain
    role and the rest of the batch go to a parked task (``reschedule``) or a
    new one. Events are taken strictly in order, so a job's cancellation is
    never seen before its start.

    Each task runs in a long-lived ``trio.CancelScope`` (entering and leaving
    one costs about as much as the rest of a job's Python side): a job's
    timeout cancels the scope of the task running it, which ends that job;
    the task then parks and goes on in a new scope."""

    def __init__(self, server, engine, nursery):
        self._server = server
        self._engine = engine
        self._nursery = nursery
        self._idle = []
        self._scopes = server._scopes
        self._functions = [handler.function for handler, _ in server._handlers]
        self.stopped = trio.Event()

    def start(self):
        self._nursery.start_soon(self._work, None, 0)

    def _hand_off(self, events, start):
        """Gives the drain role, with ``events[start:]`` to run first, to
        another task."""
        if self._idle:
            trio.lowlevel.reschedule(self._idle.pop(), outcome.Value((events, start)))
        else:
            self._nursery.start_soon(self._work, events, start)

    async def _work(self, events, start):
        engine = self._engine
        server = self._server
        scopes = self._scopes
        functions = self._functions
        idle = self._idle
        fd = engine.fileno()
        wait = trio.lowlevel.wait_readable
        finish = engine.finish
        from_peer = Client._from_peer
        from_engine = Packet._from_engine
        task = trio.lowlevel.current_task()

        def abort(_raise_cancel):
            if task in idle:
                idle.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        while True:
            # This task is the drainer.
            with trio.CancelScope() as scope:
                blocked = None
                while blocked is None:
                    if events is None:
                        await wait(fd)
                        events = engine.drain(1024)
                        start = 0
                    for i in range(start, len(events)):
                        event = events[i]
                        if event[0] != "job":
                            if self._other(event):
                                return
                            continue
                        _, job, index, peer, fields, encoding = event
                        client = from_peer(peer, server)
                        try:
                            coro = functions[index](client, from_engine(fields, encoding, client))
                            yielded = coro.send(None)
                        except StopIteration:
                            code = _DONE
                        except Exception as error:
                            code = _failure_code(peer, error)
                        else:
                            blocked = (job, peer, coro, yielded, events, i + 1)
                            break
                        finish(job, code)
                    events = None
                # A handler blocks: it keeps this task; another one drains.
                job, peer, coro, yielded, rest, start = blocked
                blocked = None
                # Its session writes what it sent so far, and sends later.
                peer.uncork()
                self._hand_off(rest, start)
                scopes[job] = (scope, peer)
                try:
                    await _resume(coro, yielded)
                    code = _DONE
                except Exception as error:
                    code = _failure_code(peer, error)
                finally:
                    del scopes[job]
                finish(job, code)
            # Cancelled (a timeout) or done: park until given the drain role.
            if len(idle) >= _MAX_IDLE_WORKERS:
                return
            idle.append(task)
            events, start = await trio.lowlevel.wait_task_rescheduled(abort)

    def _cancel(self, job):
        """Cancels job ``job`` if it is running; returns its peer."""
        running = self._scopes.get(job)
        if running is None:
            return None
        scope, peer = running
        scope.cancel()
        return peer

    def _cancel_all(self):
        for scope, _ in list(self._scopes.values()):
            scope.cancel()


class _AsyncioRunner(_Events):
    """Runs the engine's events on an asyncio loop (``backend="asyncio"``).

    The loop watches the engine's wake descriptor (``add_reader``); each
    wakeup takes a batch of events and starts one asyncio task per job (on
    Python 3.12 and later an eager one: a handler that does not block
    finishes inside ``Task()``). A task's first step runs inside the task, so
    ``asyncio.current_task()``, ``asyncio.timeout`` and task groups work as
    in any asyncio program. A job's timeout cancels its task.

    Sends and outcomes made while a batch is being run are handed to the
    engine together, by a callback scheduled after the batch's tasks took
    their first step; later ones (after an ``await asyncio.sleep``) are
    handed over as they are made (``Engine.set_autoflush``), since asyncio
    has no hook before it waits for I/O."""

    def __init__(self, server, engine, loop):
        self._server = server
        self._engine = engine
        self._loop = loop
        self._functions = [handler.function for handler, _ in server._handlers]
        #: The running jobs: job id -> (task, peer, handler coroutine).
        self._tasks = {}
        #: Every task not finished yet, cancelled ones included (the loop
        #: holds tasks weakly), until it ends.
        self._live = set()
        self._eager = sys.version_info >= (3, 12)
        #: Peers of the batch's jobs whose task has not finished (3.11: not
        #: run yet): at the flush, those still running are uncorked.
        self._unsettled = []
        self.stopped = asyncio.Event()

    def start(self):
        self._engine.set_autoflush(True)
        self._loop.add_reader(self._engine.fileno(), self._on_readable)

    def close(self):
        self._loop.remove_reader(self._engine.fileno())

    def _on_readable(self):
        engine = self._engine
        engine.set_autoflush(False)
        try:
            for event in engine.drain(1024):
                try:
                    if event[0] == "job":
                        self._start(event)
                    elif self._other(event):
                        break
                except Exception:  # pragma: no cover - a bug; the batch goes on
                    log.exception(f"{{API main}} Could not run the engine's event {event[0]!r}")
        finally:
            # After the batch's tasks were created: on 3.11 their first steps
            # run before this callback, and it runs before the next batch
            # (asyncio runs the callbacks already queued before those of the
            # I/O it polls next).
            self._loop.call_soon(self._flush)

    def _flush(self):
        # A job whose first step did not finish it blocks: its session
        # writes what it sent so far, and sends later (before the flush).
        for task, peer in self._unsettled:
            if not task.done():
                peer.uncork()
        self._unsettled.clear()
        self._engine.flush()
        self._engine.set_autoflush(True)

    def _start(self, event):
        _, job, index, peer, fields, encoding = event
        client = Client._from_peer(peer, self._server)
        try:
            handler = self._functions[index](client, Packet._from_engine(fields, encoding, client))
        except Exception as error:  # not a coroutine function of (client, packet)
            self._engine.finish(job, _failure_code(peer, error))
            return
        run = self._run(job, peer, handler)
        if self._eager:
            task = asyncio.Task(run, loop=self._loop, eager_start=True)
        else:
            task = self._loop.create_task(run)
        if not task.done():
            self._unsettled.append((task, peer))
            self._tasks[job] = (task, peer, handler)
            self._live.add(task)
            task.add_done_callback(self._live.discard)

    async def _run(self, job, peer, handler):
        code = _FAILED
        try:
            await handler
            code = _DONE
        except asyncio.CancelledError:
            if job in self._tasks:
                # Not the job's timeout, nor the shutdown: something the
                # handler awaited was cancelled under it.
                log.error(f"({peer.session_id}) {{Client handler}} The handler was cancelled")
            raise
        except Exception as error:
            code = _failure_code(peer, error)
        finally:
            self._tasks.pop(job, None)
            # After a timeout the engine has given up already (finish says so).
            self._engine.finish(job, code)

    async def wait_tasks(self):
        """Waits for every task to end (after the shutdown cancelled them),
        as trio's nursery does before ``shutdown()`` runs."""
        while self._live:
            await asyncio.gather(*self._live, return_exceptions=True)

    def _cancel(self, job):
        running = self._tasks.pop(job, None)
        if running is None:
            return None
        task, peer, handler = running
        task.cancel()
        if inspect.getcoroutinestate(handler) == inspect.CORO_CREATED:
            handler.close()  # cancelled before its task ran it
        return peer

    def _cancel_all(self):
        for job in list(self._tasks):
            self._cancel(job)


def _failure_code(peer, error):
    """The outcome code of a handler that raised ``error`` (an ``Exception``):
    ``StopPropagation`` stops the packet; anything else is logged with its
    traceback (call it in the ``except`` block) and fails the packet."""
    if isinstance(error, StopPropagation):
        return _STOP
    log.exception(
        f"({peer.session_id}) {{Client handler}} A fatal unhandled exception "
        f"occurred -> {type(error).__name__}: {error}"
    )
    return _FAILED


class _Flusher(trio.abc.Instrument):
    """Hands the sends and outcomes of each trio scheduling batch to the
    engine in one call, when trio is about to wait for I/O (after every task
    of the batch has run); ``Engine.flush`` does nothing when there are none."""

    def __init__(self, engine):
        self._flush = engine.flush

    def before_io_wait(self, timeout):
        self._flush()


def _check_backend(backend):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'trio' or 'asyncio', not {backend!r}")


def _level_number(level):
    if isinstance(level, int):
        return level
    number = logging.getLevelName(str(level).upper())
    return number if isinstance(number, int) else logging.INFO


def _option_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    return str(value)


class Server:
    """An AsyncAPY server.

    The arguments are the original's; the engine's own options
    (``max_packet_size``, ``max_connections``, ``max_outbox``, ``workers``,
    ``grace_period``, ``tls_cert``, ``tls_key``, ``tls_client_ca``,
    ``proxy_protocol``, ``proxy_trusted``) are keyword arguments too, and
    keys of the INI file's ``[AsyncAPY]`` section.

    ``backend`` (keyword, or the INI key) picks the event loop the handlers
    run on: ``"trio"`` (the default, as in the original) or ``"asyncio"``
    (handlers then await asyncio primitives; the installed event loop
    policy applies, so uvloop can be used).
    """

    def __init__(
        self,
        addr="127.0.0.1",
        port=8081,
        buf=1024,
        logging_level=logging.INFO,
        console_format="[%(levelname)s] %(asctime)s %(message)s",
        datefmt="%d/%m/%Y %H:%M:%S %p",
        timeout=60,
        header_size=4,
        byteorder="big",
        config=None,
        cfg_parser=None,
        session_limit=0,
        *,
        backend="trio",
        **engine_options,
    ):
        if not isinstance(addr, str):
            raise TypeError("addr must be a string!")
        if not isinstance(port, int):
            raise TypeError("port must be an integer!")
        if not isinstance(buf, int):
            raise TypeError("buf must be an integer!")
        if not isinstance(logging_level, (int, str)):
            raise TypeError("logging_level must be an integer!")
        if not isinstance(console_format, str):
            raise TypeError("console_format must be a string!")
        if not isinstance(datefmt, str):
            raise TypeError("datefmt must be a string!")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
            raise TypeError("timeout must be an integer!")
        if not isinstance(header_size, int):
            raise TypeError("header_size must be an integer!")
        if byteorder not in ("big", "little"):
            raise TypeError("byteorder must either be 'little' or 'big'!")
        if config is not None and not isinstance(config, str):
            raise TypeError("config must be a string!")
        if not isinstance(session_limit, int):
            raise TypeError("session_limit must be an integer!")
        _check_backend(backend)
        for key in engine_options:
            if key not in ENGINE_OPTIONS:
                raise TypeError(f"Server() got an unexpected keyword argument {key!r}")
        self.addr = addr
        self.port = port
        self.buf = buf
        self.logging_level = logging_level
        self.console_format = console_format
        self.datefmt = datefmt
        self.timeout = timeout
        self.header_size = header_size
        self.byteorder = byteorder
        self.config = config
        self.session_limit = session_limit
        self.backend = backend
        self.encoding = "json"
        self.engine_options = dict(engine_options)
        self._cfg_parser = cfg_parser
        self._handlers = []
        self._filters = []
        self._engine = None
        self._scopes = {}
        #: The ``(host, port)`` the server listens on, once started.
        self.bound_address = None
        if config:
            self.load_config()

    def load_config(self):
        """Reads the INI file ``config`` (section ``[AsyncAPY]``) with the
        ``cfg_parser`` given (a ``configparser.ConfigParser`` by default);
        its values override the constructor's, as in the original."""
        parser = self._cfg_parser or configparser.ConfigParser()
        with open(self.config) as file:
            parser.read_file(file)
        self.parser = parser
        for key in _ORIGINAL_KEYS + ENGINE_OPTIONS + ("backend",):
            value = parser.get("AsyncAPY", key, fallback=None)
            if value is None or value == "":
                continue
            if value.isdigit():
                value = int(value)
            if key in ENGINE_OPTIONS:
                self.engine_options[key] = value
            else:
                setattr(self, key, value)
        _check_backend(self.backend)

    # -- handlers ---------------------------------------------------------

    def register_handler(self, handler, *filters, group=0, **kwargs):
        """Registers ``handler`` (an ``async def handler(client, packet)``)
        behind ``filters``, in ``group`` (lower groups run first)."""
        if "group" in kwargs:
            group = kwargs.pop("group")
        if not isinstance(group, int):
            raise TypeError("group must be an integer!")
        self._handlers.append((Handler(handler, filters), group))
        return handler

    def add_handler(self, *filters, group=0, **kwargs):
        """Decorator form of :meth:`register_handler`; returns the function."""

        def decorator(function):
            return self.register_handler(function, *filters, group=group, **kwargs)

        return decorator

    async def setup(self):
        """Runs before the server serves; override it (``async def`` or ``def``)."""

    async def shutdown(self):
        """Runs after the server stopped; override it (``async def`` or ``def``)."""

    async def run_sync_task(self, sync_fn, *args, cancellable=False, limiter=None):
        """Runs ``sync_fn(*args)`` in a worker thread (``trio.to_thread.run_sync``).

        ``cancellable`` is trio's ``abandon_on_cancel``: when true, a
        cancelled (timed-out) handler does not wait for the thread.

        Under the asyncio backend the thread is the loop's default executor's,
        running in a copy of the handler's context (as ``asyncio.to_thread``);
        ``limiter`` is then an ``asyncio.Semaphore`` (or None), held until the
        thread is done; a handler cancelled while the thread runs waits for
        it unless ``cancellable``, as under trio."""
        if self.backend != "asyncio":
            return await trio.to_thread.run_sync(
                sync_fn, *args, abandon_on_cancel=cancellable, limiter=limiter
            )
        loop = asyncio.get_running_loop()
        if limiter is not None:
            await limiter.acquire()
        call = functools.partial(contextvars.copy_context().run, sync_fn, *args)
        try:
            future = loop.run_in_executor(None, call)
        except BaseException:
            if limiter is not None:
                limiter.release()
            raise
        if limiter is not None:
            future.add_done_callback(lambda _: limiter.release())
        if cancellable:
            # Abandoned on cancel; the executor's future (and the limiter)
            # stays with the thread.
            return await asyncio.shield(future)
        # As trio without abandon_on_cancel: cancellations wait for the thread.
        cancelled = False
        while not future.done():
            try:
                await asyncio.wait([future])
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError()
        return future.result()

    # -- serving ----------------------------------------------------------

    def _engine_config(self):
        options = [
            ("addr", self.addr),
            ("port", self.port),
            ("buf", self.buf),
            ("logging_level", _level_number(self.logging_level)),
            ("timeout", self.timeout),
            ("header_size", self.header_size),
            ("byteorder", self.byteorder),
            ("session_limit", self.session_limit),
        ]
        options += list(self.engine_options.items())
        return [(key, _option_text(value)) for key, value in options]

    def _filter_spec(self, f):
        kind = type(f)
        if kind is Filters.Ip or (isinstance(f, Filters.Ip) and kind.check is Filters.Ip.check):
            return ("ip", f._native)
        if kind is Filters.Fields or (
            isinstance(f, Filters.Fields) and kind.check is Filters.Fields.check
        ):
            self._filters.append(f)
            pairs = [(name, None if p is None else getattr(p, "pattern", p))
                     for name, p in f._patterns.items()]
            return ("fields", pairs, len(self._filters) - 1)
        if (
            isinstance(f, Filters.APIFactory)
            and type(f).check is Filters.APIFactory.check
            and isinstance(f.factory, APIKeyFactory)
            and type(f.factory).__contains__ is APIKeyFactory.__contains__
        ):
            return ("keys", f.factory._native, str(f.field_name))
        if (
            isinstance(f, Filters.APIFactory)
            and type(f).check is Filters.APIFactory.check
            and isinstance(f.factory, _StoreAPIKeyFactory)
            and type(f.factory).__contains__ is _StoreAPIKeyFactory.__contains__
        ):
            return ("store", f.factory._native, str(f.field_name))
        self._filters.append(f)
        return ("python", len(self._filters) - 1)

    def _build_engine(self):
        engine = _engine.Engine(self._engine_config())
        self._filters = []
        order = sorted(range(len(self._handlers)), key=lambda i: self._handlers[i][1])
        for index in order:
            handler, group = self._handlers[index]
            specs = [self._filter_spec(f) for f in handler.filters]
            name = getattr(handler.function, "__name__", repr(handler.function))
            engine.add_route(index, name, group, specs)
        return engine

    def start(self):
        """Serves until Ctrl-C or SIGTERM (blocking): runs :meth:`setup`,
        serves, drains in-flight packets like the Rust server, then runs
        :meth:`shutdown`, on the server's ``backend``."""
        try:
            if self.backend == "asyncio":
                asyncio.run(self._serve_forever_asyncio())
            else:
                trio.run(self._serve_forever)
        except KeyboardInterrupt:  # pragma: no cover - signals are handled in the loop
            pass

    async def _open(self):
        """Configures logging, runs :meth:`setup`, then builds and starts the
        engine (exits on a bad configuration or an address in use)."""
        logging.basicConfig(
            datefmt=self.datefmt, format=self.console_format, level=self.logging_level
        )
        log.info("{API main} AsyncAPY server is starting up")
        log.info("{API main} Running setup function...")
        result = self.setup()
        if inspect.isawaitable(result):
            await result
        try:
            engine = self._build_engine()
        except ValueError as error:
            log.error(f"{{API main}} Invalid configuration: {error}")
            sys.exit("INVALID_CONFIGURATION")
        try:
            self.bound_address = engine.start()
        except OSError as error:
            log.error(f"{{API main}} Could not bind: {error}")
            sys.exit("PORT_UNAVAILABLE")
        self._engine = engine
        return engine

    async def _close(self):
        """Runs :meth:`shutdown` once the engine stopped."""
        log.info("{API main} Server stopped, running shutdown function...")
        result = self.shutdown()
        if inspect.isawaitable(result):
            await result
        self._engine = None

    async def _serve_forever(self):
        engine = await self._open()
        flusher = _Flusher(engine)
        trio.lowlevel.add_instrument(flusher)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self._watch_signals, engine)
                host, port = self.bound_address
                log.info(f"{{API main}} Now serving at {host}:{port}")
                runner = _Runner(self, engine, nursery)
                runner.start()
                await runner.stopped.wait()
                nursery.cancel_scope.cancel()
        finally:
            trio.lowlevel.remove_instrument(flusher)
            engine.flush()
        await self._close()

    async def _serve_forever_asyncio(self):
        engine = await self._open()
        loop = asyncio.get_running_loop()
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, engine, signum)
        runner = _AsyncioRunner(self, engine, loop)
        try:
            host, port = self.bound_address
            log.info(f"{{API main}} Now serving at {host}:{port}")
            runner.start()
            await runner.stopped.wait()
            await runner.wait_tasks()
        finally:
            runner.close()
            for signum in _STOP_SIGNALS:
                loop.remove_signal_handler(signum)
            engine.flush()
        await self._close()

    @staticmethod
    def _on_signal(engine, signum):
        log.info(_STOP_SIGNALS[signum])
        engine.shutdown()

    async def _watch_signals(self, engine, task_status=trio.TASK_STATUS_IGNORED):
        with trio.open_signal_receiver(*_STOP_SIGNALS) as signals:
            task_status.started()
            async for signum in signals:
                self._on_signal(engine, signum)

    def _need_flush(self):
        """Kept for callers of 0.5-era internals: flushing is automatic."""

    def stop(self):
        """Starts a graceful shutdown (from a handler, or from the trio thread)."""
        if self._engine is not None:
            self._engine.shutdown()

    def _emit(self, event):
        _, level, session, message, created = event
        if not log.isEnabledFor(level):
            return
        text = f"({session}) {{Engine}} {message}" if session else f"{{Engine}} {message}"
        record = log.makeRecord(log.name, level, "(engine)", 0, text, None, None)
        record.created = created
        record.msecs = (created - int(created)) * 1000
        log.handle(record)

    def _run_filter(self, engine, event):
        _, job, index, peer, fields, encoding = event
        f = self._filters[index]
        client = Client._from_peer(peer, self)
        packet = Packet._from_engine(fields, encoding, client)
        try:
            passed = bool(f.check(client, packet))
        except Exception:
            log.exception(
                f"({peer.session_id}) {{Dispatcher}} Filter {f!r} raised; it does not match"
            )
            passed = False
        engine.finish(job, _PASS if passed else _FAIL)
