"""An asyncio client for the FreeSWITCH Event Socket, built on greenswitch in its own thread.

greenswitch is gevent code. We never monkey-patch the asyncio process, so each client runs one
dedicated thread with its own gevent hub, and every call is marshalled onto it with
``loop.run_callback_threadsafe`` (calling greenswitch from another thread raises LoopExit and
leaves a stray waiter behind). Results and events come back with ``call_soon_threadsafe``.

greenswitch reads and frames the socket; we replace its dispatch so that a call has a timeout,
a bgapi result is matched by Job-UUID, plain events are decoded by ``wire`` (duplicate headers
kept, BACKGROUND_JOB bodies split off) and a lost connection fails the calls waiting on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import gevent
import gevent.event
import gevent.lock
from greenswitch.esl import InboundESL

from c2bot.config.settings import Settings, parse_esl_hosts
from c2bot.switch.wire import EslEvent, WireError, parse_event_plain

__all__ = [
    "DEFAULT_EVENTS",
    "EslClient",
    "EslEvent",
    "EventStream",
    "SwitchError",
    "SwitchPool",
    "SwitchUnavailable",
    "pool_from_settings",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_EVENTS: tuple[str, ...] = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP_COMPLETE",
    "BACKGROUND_JOB",
    "CUSTOM",
    "spandsp::txfaxresult",
    "spandsp::rxfaxresult",
    "spandsp::txfaxpageresult",
    "spandsp::rxfaxpageresult",
    "spandsp::txfaxnegociateresult",
    "spandsp::rxfaxnegociateresult",
)
EXIT_TIMEOUT = 2.0


class SwitchError(Exception):
    """The switch answered with an error; ``reply`` holds its text, e.g. ``-ERR USER_BUSY``."""

    def __init__(self, reply: str, message: str | None = None) -> None:
        super().__init__(message or reply)
        self.reply = reply


class SwitchUnavailable(SwitchError):
    """No answer at all: not connected, authentication refused, or the call timed out."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)


@dataclass
class _Pending:
    """A command waiting for its reply; replies arrive in the order commands were sent."""

    result: Any  # gevent.event.AsyncResult (untyped library)
    job: Any = None  # AsyncResult for the BACKGROUND_JOB of a bgapi
    abandoned: bool = False


@dataclass(frozen=True)
class _Reply:
    content_type: str
    headers: dict[str, str]
    body: str = ""


class _Connection(InboundESL):  # type: ignore[misc]
    """One authenticated socket. Lives and dies inside the ESL thread."""

    def __init__(
        self, host: str, port: int, password: str, timeout: float, name: str,
        on_event: Callable[[EslEvent], None],
    ) -> None:  # fmt: skip
        super().__init__(host, port, password, timeout=timeout)
        self.name = name
        self._on_event = on_event
        self._pending: deque[_Pending] = deque()
        self._jobs: dict[str, Any] = {}
        self._send_lock = gevent.lock.Semaphore()
        self.closed = gevent.event.Event()
        self.reject_reason = ""

    # -- greenswitch hooks -------------------------------------------------------------------
    def start_event_handlers(self) -> None:
        """Only greenswitch's reader: events are dispatched by us, not by its 1 s poll loop."""
        self._receive_events_greenlet = gevent.spawn(self._read_loop)

    def _read_loop(self) -> None:
        try:
            self.receive_events()
        finally:
            self.connected = False
            self._fail_all(SwitchUnavailable(f"connection to {self.name} lost"))
            self._auth_request_event.set()
            self.closed.set()

    def handle_event(self, envelope: Any) -> None:
        """Route one message read by greenswitch (its headers only; we read the body)."""
        headers: dict[str, str] = dict(envelope.headers)
        kind = headers.get("Content-Type", "")
        body = self._read_body(headers)
        if body is None:
            return
        if kind == "auth/request":
            self._auth_request_event.set()
        elif kind in ("command/reply", "api/response"):
            self._resolve(_Reply(kind, headers, body.decode("utf-8", errors="replace")))
        elif kind == "text/event-plain":
            self._dispatch_event(body)
        elif kind == "text/disconnect-notice":
            if headers.get("Content-Disposition") != "linger":
                self.connected = False
        elif kind == "text/rude-rejection":
            self.reject_reason = body.decode("utf-8", errors="replace").strip()
            self.connected = False
            self._auth_request_event.set()

    def authenticate(self) -> None:
        reply = self.command(f"auth {self.password}", self.timeout)
        if reply.headers.get("Reply-Text") != "+OK accepted":
            raise SwitchUnavailable(
                f"{self.name}: authentication refused ({reply.headers.get('Reply-Text', '')})"
            )

    def send(self, data: str) -> _Reply:
        return self.command(data, self.timeout)

    # -- our protocol ------------------------------------------------------------------------
    def command(self, text: str, timeout: float, *, job: Any = None) -> _Reply:
        """Send one command and wait for its reply; the timeout never desynchronises replies."""
        if not self.connected:
            raise SwitchUnavailable(f"{self.name} is not connected")
        pending = _Pending(gevent.event.AsyncResult(), job)
        with self._send_lock:
            self._pending.append(pending)
            try:
                self.sock.sendall((text + "\n\n").encode("utf-8"))
            except OSError as error:
                self._pending.remove(pending)
                raise SwitchUnavailable(f"{self.name}: sending failed ({error})") from error
        try:
            reply: _Reply = pending.result.get(timeout=timeout)
        except gevent.Timeout:
            # The late reply still pops this entry, so later replies stay matched.
            pending.abandoned = True
            verb = text.split(" ", 2)[:2]
            raise SwitchUnavailable(
                f"{self.name}: no reply to {' '.join(verb)!r} within {timeout:g} s"
            ) from None
        return reply

    def _resolve(self, reply: _Reply) -> None:
        if not self._pending:
            log.warning("%s: reply with no command waiting: %s", self.name, reply.headers)
            return
        pending = self._pending.popleft()
        job_uuid = reply.headers.get("Job-UUID", "")
        if pending.job is not None and job_uuid and not pending.abandoned:
            # Registered before the waiter wakes: the event may already be in the read buffer.
            self._jobs[job_uuid] = pending.job
        pending.result.set(reply)

    def forget_job(self, job_uuid: str) -> None:
        self._jobs.pop(job_uuid, None)

    def _dispatch_event(self, body: bytes) -> None:
        try:
            event = parse_event_plain(body, host=self.name)
        except (WireError, UnicodeDecodeError) as error:
            log.warning("%s: undecodable event skipped: %s", self.name, error)
            return
        if event.name == "BACKGROUND_JOB":
            waiter = self._jobs.pop(event.get("Job-UUID"), None)
            if waiter is not None:
                waiter.set(event)
        self._on_event(event)

    def _read_body(self, headers: dict[str, str]) -> bytes | None:
        """Exactly Content-Length bytes; None (and the reader stops) if the socket ends first."""
        length = headers.get("Content-Length", "")
        if not length.isdigit():
            return b""
        wanted = int(length)
        data = b""
        while len(data) < wanted:
            try:
                chunk = self.sock_file.read(wanted - len(data))
            except OSError:
                chunk = b""
            if not chunk:
                self.connected = False
                self._run = False
                return None
            data += chunk
        return data

    def _fail_all(self, error: SwitchUnavailable) -> None:
        while self._pending:
            pending = self._pending.popleft()
            if not pending.result.ready():
                pending.result.set_exception(error)
        for waiter in self._jobs.values():
            if not waiter.ready():
                waiter.set_exception(error)
        self._jobs.clear()

    def close(self) -> None:
        """Say goodbye if we can, then release the socket and the reader greenlet."""
        if self.connected:
            with contextlib.suppress(SwitchError):
                self.command("exit", EXIT_TIMEOUT)
            self.closed.wait(EXIT_TIMEOUT)
        self.abort()

    def abort(self) -> None:
        self._run = False
        self.connected = False
        sock = getattr(self, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(2)  # SHUT_RDWR: wakes the reader with end-of-file
        reader = self._receive_events_greenlet
        if reader is not None:
            reader.join(EXIT_TIMEOUT)
            reader.kill(block=True, timeout=EXIT_TIMEOUT)
        sock_file = getattr(self, "sock_file", None)
        if sock_file is not None:
            with contextlib.suppress(OSError):
                sock_file.close()
        if sock is not None:
            sock.close()
        self._fail_all(SwitchUnavailable(f"connection to {self.name} closed"))


def _settle(future: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    """Runs on the asyncio loop; the caller may have given up (cancelled) meanwhile."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


class EventStream:
    """Events from one or more clients, as an async iterator with a bounded queue.

    When the consumer falls behind by ``maxsize`` events, new events are dropped and counted
    in ``dropped`` (and logged) rather than growing memory without bound.
    """

    def __init__(self, maxsize: int = 10000) -> None:
        self._queue: asyncio.Queue[EslEvent | None] = asyncio.Queue(maxsize)
        self._sources: list[EslClient] = []
        self.closed = False
        self.dropped = 0

    def _attach(self, client: EslClient) -> None:
        self._sources.append(client)
        client._streams.add(self)

    def _put(self, event: EslEvent) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event stream full: dropped %s %s", event.name, event.subclass)

    def close(self) -> None:
        """Stop receiving; a consumer waiting in ``async for`` finishes its loop."""
        if self.closed:
            return
        self.closed = True
        for client in self._sources:
            client._streams.discard(self)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        if self._queue.full():
            # Make room for the end marker so a waiting consumer always wakes up.
            self._queue.get_nowait()
            self._queue.put_nowait(None)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> EslEvent:
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def get(self, timeout: float) -> EslEvent:  # noqa: ASYNC109
        """The next event, or TimeoutError; handy in tests and in short waits."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()


@dataclass
class _Health:
    state: str = "stopped"
    since: float = field(default_factory=time.time)
    reconnects: int = 0
    last_error: str | None = None


class _EslThread:
    """The gevent side: one thread, one hub, one connection at a time, reconnecting."""

    def __init__(self, client: EslClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.thread = threading.Thread(target=self._run, name=f"esl-{client.name}", daemon=True)
        self.hub_loop: Any = None
        self.connection: _Connection | None = None
        self._stopping: Any = None
        self._jobs: set[Any] = set()

    # -- called from asyncio -----------------------------------------------------------------
    def submit(self, work: Callable[[_Connection], T], future: asyncio.Future[T]) -> None:
        self.hub_loop.run_callback_threadsafe(self._spawn_job, work, future)

    def request_stop(self) -> None:
        self.hub_loop.run_callback_threadsafe(self._stopping.set)

    # -- inside the thread -------------------------------------------------------------------
    def _run(self) -> None:
        hub = gevent.get_hub()
        self.hub_loop = hub.loop
        self._stopping = gevent.event.Event()
        self._report(None, None, self.client._ready)
        supervisor = gevent.spawn(self._supervise)
        try:
            self._stopping.wait()
        finally:
            supervisor.kill(block=True)
            for job in list(self._jobs):
                job.kill(block=True)
            if self.connection is not None:
                self.connection.close()
            self._set_state("stopped")
            hub.destroy(destroy_loop=True)

    def _spawn_job(self, work: Callable[[_Connection], T], future: asyncio.Future[T]) -> None:
        job = gevent.spawn(self._run_job, work, future)
        self._jobs.add(job)
        job.link(self._jobs.discard)

    def _run_job(self, work: Callable[[_Connection], T], future: asyncio.Future[T]) -> None:
        try:
            connection = self.connection
            if connection is None or not connection.connected:
                raise SwitchUnavailable(f"{self.client.name} is {self.client.state}")
            self._report(work(connection), None, future)
        except SwitchError as error:
            self._report(None, error, future)
        except gevent.GreenletExit:
            self._report(None, SwitchUnavailable(f"{self.client.name}: client stopped"), future)
        except Exception as error:  # a bug: hand it to the caller rather than lose it
            self._report(None, error, future)

    def _report(
        self, result: Any, error: BaseException | None, future: asyncio.Future[Any]
    ) -> None:
        with contextlib.suppress(RuntimeError):  # the asyncio loop is already closed
            self.loop.call_soon_threadsafe(_settle, future, result, error)

    def _supervise(self) -> None:
        """Connect, subscribe, wait for the connection to end; again, with doubling backoff."""
        low, high = self.client.backoff
        delay = low
        was_connected = False
        while not self._stopping.is_set():
            self._set_state("connecting")
            try:
                self.connection = self._connect()
            except Exception as error:
                self._set_state(f"down: {_describe(error)}", error=_describe(error))
                self._stopping.wait(delay)
                delay = min(high, delay * 2)
                continue
            delay = low
            self._set_state("connected", reconnect=was_connected)
            was_connected = True
            self.connection.closed.wait()
            self.connection.abort()
            self.connection = None
            self._set_state("down: connection lost", error="connection lost")
            self._stopping.wait(low)

    def _connect(self) -> _Connection:
        client = self.client
        connection = _Connection(
            client.host, client.port, client._password, client.connect_timeout, client.name,
            self._publish,
        )  # fmt: skip
        try:
            with gevent.Timeout(client.connect_timeout, SwitchUnavailable("connect timed out")):
                connection.connect()
                if not connection.connected:
                    reason = connection.reject_reason or "closed before the greeting"
                    raise SwitchUnavailable(f"{client.name} refused the connection: {reason}")
            reply = connection.command(
                "event plain " + " ".join(client.events), client.call_timeout
            )
            text = reply.headers.get("Reply-Text", "")
            if not text.startswith("+OK"):
                raise SwitchError(text, f"{client.name}: subscribing failed: {text}")
        except BaseException:
            connection.abort()
            raise
        return connection

    def _publish(self, event: EslEvent) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.client._publish, event)

    def _set_state(self, state: str, *, error: str | None = None, reconnect: bool = False) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.client._set_state, state, error, reconnect)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return text


class EslClient:
    """One FreeSWITCH host. Calls are coroutines; the socket lives in the client's thread."""

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        password: str,
        events: Sequence[str] = DEFAULT_EVENTS,
        call_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._password = password
        self.events = tuple(events)
        self.call_timeout = call_timeout
        self.connect_timeout = connect_timeout
        self.backoff = backoff
        self._health = _Health()
        self._announced_down = False
        self._streams: set[EventStream] = set()
        self._thread: _EslThread | None = None
        self._connected: asyncio.Event | None = None
        self._ready: asyncio.Future[None]

    async def start(self) -> None:
        """Start the ESL thread; it connects (and keeps reconnecting) in the background."""
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        self._connected = asyncio.Event()
        self._ready = loop.create_future()
        self._thread = _EslThread(self, loop)
        self._thread.thread.start()
        await self._ready

    async def wait_connected(self, timeout: float) -> bool:  # noqa: ASYNC109
        """True once connected and subscribed; False if that did not happen within timeout."""
        if self._connected is None:
            return False
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Send ``exit``, close the socket and join the thread; streams end."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.request_stop()
        await asyncio.to_thread(thread.thread.join)
        await asyncio.sleep(0)  # let the last state callbacks from the thread run
        for stream in list(self._streams):
            stream.close()

    async def api(self, command: str, *, timeout: float | None = None) -> str:  # noqa: ASYNC109
        """Run ``api COMMAND``; the body without its last newline, or SwitchError on -ERR."""
        limit = self.call_timeout if timeout is None else timeout
        return await self._call(lambda conn: _api(conn, command, limit), limit)

    async def bgapi(self, command: str, *, timeout: float | None = None) -> str:  # noqa: ASYNC109
        """Run ``bgapi COMMAND`` and wait for its BACKGROUND_JOB (matched by Job-UUID).

        The timeout covers both the reply and the job; an originate waits for the answer.
        """
        limit = self.call_timeout if timeout is None else timeout
        return await self._call(lambda conn: _bgapi(conn, command, limit), limit)

    def subscribe(self, maxsize: int = 10000) -> EventStream:
        stream = EventStream(maxsize)
        stream._attach(self)
        return stream

    @property
    def state(self) -> str:
        return self._health.state

    def health(self) -> dict[str, str | int | float | None]:
        health = self._health
        return {
            "state": health.state,
            "host": self.host,
            "port": self.port,
            "since": health.since,
            "reconnects": health.reconnects,
            "last_error": health.last_error,
        }

    # -- plumbing ----------------------------------------------------------------------------
    async def _call(self, work: Callable[[_Connection], T], limit: float) -> T:
        thread = self._thread
        if thread is None:
            raise SwitchUnavailable(f"{self.name}: client is not started")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        thread.submit(work, future)
        try:
            # The thread enforces the limit; this margin only guards against a stuck thread.
            async with asyncio.timeout(limit + 2.0):
                return await future
        except TimeoutError:
            raise SwitchUnavailable(f"{self.name}: no answer within {limit:g} s") from None

    def _publish(self, event: EslEvent) -> None:
        for stream in list(self._streams):
            stream._put(event)

    def _set_state(self, state: str, error: str | None, reconnect: bool) -> None:
        health = self._health
        if state != health.state:
            # Once per change, not per retry: an operator sees the switch go and come back.
            if state == "connected":
                log.info("FreeSWITCH %s (%s:%s) connected", self.name, self.host, self.port)
                self._announced_down = False
            elif state.startswith("down") and not self._announced_down:
                self._announced_down = True
                log.warning(
                    "FreeSWITCH %s (%s:%s) is %s; faxes wait in the database, retrying",
                    self.name, self.host, self.port, state,
                )  # fmt: skip
            health.state = state
            health.since = time.time()
        if error is not None:
            health.last_error = error
        if reconnect:
            health.reconnects += 1
        if self._connected is not None:
            if state == "connected":
                self._connected.set()
            else:
                self._connected.clear()


def _check(body: str) -> str:
    text = body.removesuffix("\n")
    if text.startswith(("-ERR", "-USAGE")):
        raise SwitchError(text.strip())
    return text


def _api(connection: _Connection, command: str, timeout: float) -> str:
    reply = connection.command(f"api {command}", timeout)
    return _check(reply.body)


def _bgapi(connection: _Connection, command: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    job = gevent.event.AsyncResult()
    reply = connection.command(f"bgapi {command}", timeout, job=job)
    text = reply.headers.get("Reply-Text", "")
    job_uuid = reply.headers.get("Job-UUID", "")
    if not text.startswith("+OK") or not job_uuid:
        raise SwitchError(text, f"{connection.name}: bgapi refused: {text}")
    try:
        event: EslEvent = job.get(timeout=max(0.0, deadline - time.monotonic()))
    except gevent.Timeout:
        raise SwitchUnavailable(
            f"{connection.name}: no result for job {job_uuid} within {timeout:g} s"
        ) from None
    finally:
        connection.forget_job(job_uuid)
    return _check(event.body)


class SwitchPool:
    """Several FreeSWITCH hosts by name; the first one is the default."""

    def __init__(self, clients: Sequence[EslClient]) -> None:
        if not clients:
            raise ValueError("a switch pool needs at least one client")
        self.clients: dict[str, EslClient] = {}
        for client in clients:
            if client.name in self.clients:
                raise ValueError(f"two switches are named {client.name!r}")
            self.clients[client.name] = client
        self.default = clients[0].name

    def get(self, name: str | None = None) -> EslClient:
        """The named switch (None: the default); an unknown name is a SwitchError."""
        client = self.clients.get(self.default if name is None else name)
        if client is None:
            known = ", ".join(self.clients)
            raise SwitchError("", f"no switch named {name!r} (known: {known})")
        return client

    async def start(self) -> None:
        for client in self.clients.values():
            await client.start()

    async def stop(self) -> None:
        await asyncio.gather(*(client.stop() for client in self.clients.values()))

    def health(self) -> dict[str, dict[str, str | int | float | None]]:
        return {name: client.health() for name, client in self.clients.items()}

    def subscribe(self, maxsize: int = 10000) -> EventStream:
        """One stream of every host's events; ``event.host`` tells them apart."""
        stream = EventStream(maxsize)
        for client in self.clients.values():
            stream._attach(client)
        return stream


def pool_from_settings(settings: Settings, **options: Any) -> SwitchPool:
    """C2_ESL_HOST/PORT/PASSWORD is the host "default"; C2_ESL_HOSTS adds named ones.

    A host in C2_ESL_HOSTS without its own password uses C2_ESL_PASSWORD. ``options`` go to
    every EslClient (timeouts, backoff, events).
    """
    password = settings.esl_password.get_secret_value()
    clients = [
        EslClient(
            name="default", host=settings.esl_host, port=settings.esl_port, password=password,
            **options,
        )
    ]  # fmt: skip
    for name, host, port, own_password in parse_esl_hosts(settings.esl_hosts or ""):
        clients.append(
            EslClient(name=name, host=host, port=port, password=own_password or password, **options)
        )
    return SwitchPool(clients)
