"""Mail2Fax by IMAP: watch one fax mailbox and hand each new message to intake, exactly once.

The poller holds the mailbox's advisory lock (one poller per mailbox across all processes),
logs in, selects the folder and, round after round: searches UNSEEN, fetches each message with
`BODY.PEEK[]` (which leaves it unseen), hands the raw bytes to `deliver`, and only after
`deliver` returned (the fax job or refusal is committed) sets `\\Seen`. Between rounds it IDLEs:
a new message (EXISTS/RECENT) starts the next round at once, otherwise IDLE is re-issued after
`idle_seconds`. A crash between commit and `\\Seen` delivers the message again; intake makes one
job per Message-ID, so that costs nothing.

Trouble never ends the poller: a refused login, a dropped connection or a restarted server
puts it in state `down: <why>` and it reconnects with exponential backoff. A message whose
delivery fails stays unseen and is tried again on a later round, with backoff of its own, and
its failure is logged once, not on every try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import aioimaplib
from sqlalchemy.ext.asyncio import AsyncEngine

from c2bot.storage.locks import HeldLock, advisory_lock

log = logging.getLogger(__name__)

Deliver = Callable[[bytes], Awaitable[None]]
T = TypeVar("T")

COMMAND_TIMEOUT = 30.0
LOCK_RETRY_SECONDS = 5.0
LOCK_CHECK_SECONDS = 10.0
STOP_GRACE_SECONDS = 10.0
CLOSE_TIMEOUT = 2.0
_LITERAL = re.compile(rb"BODY\[\] \{(\d+)\}$")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")


@dataclass(frozen=True)
class Mailbox:
    """One fax mailbox to poll; `key` names its lock and its log lines."""

    key: str
    host: str
    port: int
    user: str
    password: str
    tls: bool
    folder: str = "INBOX"

    def __repr__(self) -> str:  # never show the password in logs or tracebacks
        return f"Mailbox({self.key!r}, {self.user}@{self.host}:{self.port}/{self.folder})"


class MailboxDown(Exception):
    """The server refused us or the connection broke; the message says why, in words."""


@dataclass
class _Retry:
    """A message whose delivery failed: when to try again and how often it failed."""

    failures: int
    due: float


class _Link:
    """One IMAP connection and the event that says the server hung up on it."""

    def __init__(self, mailbox: Mailbox, ssl_context: ssl.SSLContext | None, timeout: float):
        self.lost = asyncio.Event()
        self._done_sent = False
        context = (ssl_context or ssl.create_default_context()) if mailbox.tls else None
        self.client: Any = aioimaplib.IMAP4(
            host=mailbox.host,
            port=mailbox.port,
            timeout=timeout,
            conn_lost_cb=self._on_lost,
            ssl_context=context,
        )

    def _on_lost(self, _error: Exception | None) -> None:
        self.lost.set()

    async def start_idle(self, seconds: float) -> asyncio.Future[Any]:
        """Enter IDLE for at most `seconds`; the returned future completes when the server
        ends it (after DONE)."""
        self._done_sent = False
        idle: asyncio.Future[Any] = await self.call(self.client.idle_start(timeout=seconds), "IDLE")
        return idle

    def end_idle(self) -> None:
        """Send DONE, once: a second DONE would reach the server as a bogus command."""
        if not self._done_sent and not self.lost.is_set() and self.client.has_pending_idle():
            self._done_sent = True
            self.client.idle_done()

    async def call(self, command: Awaitable[T], what: str) -> T:
        """Await an IMAP command, but give up at once if the connection drops meanwhile
        (aioimaplib would otherwise wait for its timeout, or forever in IDLE)."""
        task = asyncio.ensure_future(command)
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if task.cancelled():
            raise MailboxDown(f"connection lost during {what}")
        try:
            return task.result()
        except TimeoutError as error:
            raise MailboxDown(f"no answer to {what} within the timeout") from error
        except aioimaplib.AioImapException as error:
            raise MailboxDown(f"{what} failed: {error}") from error

    async def close(self) -> None:
        """Log out if we still can, close the socket and wait until it is really closed, and
        reap aioimaplib's helper tasks, so nothing is left for the garbage collector to warn of."""
        client = self.client
        waiter = getattr(client, "_idle_waiter", None)
        if waiter is not None:
            waiter.cancel()
        if not self.lost.is_set() and client.get_state() in ("NONAUTH", "AUTH", "SELECTED"):
            self.end_idle()  # LOGOUT would otherwise queue behind an unfinished IDLE
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self.call(client.protocol.logout(), "LOGOUT")
        transport = client.protocol.transport
        if transport is not None and not self.lost.is_set():
            transport.close()
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self.lost.wait()
            except TimeoutError:
                transport.abort()
        await _reap({*client.tasks, *client.protocol.tasks, client._client_task})


async def _reap(tasks: set[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class MailboxPoller:
    """Polls one mailbox until `stop()`; see the module docstring for the protocol."""

    def __init__(
        self,
        mailbox: Mailbox,
        deliver: Deliver,
        *,
        engine: AsyncEngine,
        idle_seconds: float = 300.0,
        backoff: tuple[float, float] = (1.0, 60.0),
        ssl_context: ssl.SSLContext | None = None,
        lock_retry_seconds: float = LOCK_RETRY_SECONDS,
        lock_check_seconds: float = LOCK_CHECK_SECONDS,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self.mailbox = mailbox
        self._deliver = deliver
        self._engine = engine
        self._idle_seconds = idle_seconds
        self._backoff = backoff
        self._ssl_context = ssl_context
        self._lock_retry = lock_retry_seconds
        self._lock_check = lock_check_seconds
        self._command_timeout = command_timeout
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._state = "waiting for lock"
        self._last_error: str | None = None
        self._delivered = 0
        self._failures = 0
        self._retries: dict[int, _Retry] = {}
        self._uidvalidity: bytes | None = None

    # -- public ----------------------------------------------------------------------------
    @property
    def lock_key(self) -> str:
        """The advisory lock's name: the mailbox key, in the `imap:` namespace of duties."""
        return f"imap:{self.mailbox.key}"

    def health(self) -> dict[str, str | int | None]:
        return {
            "mailbox": self.mailbox.key,
            "state": self._state,
            "last_error": self._last_error,
            "delivered": self._delivered,
        }

    async def run(self) -> None:
        """Take the mailbox's lock (waiting for it while another process has it) and poll."""
        self._runner = asyncio.current_task()
        while not self._stopping.is_set():
            try:
                async with advisory_lock(self._engine, self.lock_key) as held:
                    if held:
                        await self._poll_while_held(held)
                    else:
                        self._state = "waiting for lock"
            except Exception as error:  # the database is away: wait for it like for the lock
                self._state = "waiting for lock"
                self._note_error(f"cannot take the mailbox lock: {error}")
            await self._sleep(self._lock_retry)
        self._state = "stopped"

    async def stop(self) -> None:
        """Stop promptly: leave IDLE (DONE), log out, release the lock. A delivery under way
        is allowed to finish (up to a grace period) so its message can still be marked seen."""
        self._stopping.set()
        runner = self._runner
        if runner is None or runner.done() or runner is asyncio.current_task():
            return
        await asyncio.wait({runner}, timeout=STOP_GRACE_SECONDS)
        if not runner.done():
            runner.cancel()
            await asyncio.wait({runner})

    # -- lock ------------------------------------------------------------------------------
    async def _poll_while_held(self, held: HeldLock) -> None:
        """Poll while the lock is ours; if it is lost, stop polling at once, since another
        process may already have taken over."""
        sessions = asyncio.create_task(self._sessions())
        watchdog = asyncio.create_task(self._watch_lock(held))
        try:
            await asyncio.wait({sessions, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _reap({sessions, watchdog})

    async def _watch_lock(self, held: HeldLock) -> None:
        """Return only when the lock is lost (on stop() the polling ends by itself and this
        watch is cancelled; returning then would cut a clean logout short)."""
        while True:
            await asyncio.sleep(self._lock_check)
            if not await held.still_held():
                self._note_error("lost the mailbox lock (database connection gone)")
                self._state = "waiting for lock"
                return

    # -- connection ------------------------------------------------------------------------
    async def _sessions(self) -> None:
        """Connect and poll, again and again, backing off while the server is unreachable."""
        while not self._stopping.is_set():
            try:
                await self._session()
            except MailboxDown as error:
                self._down(str(error))
            except (OSError, TimeoutError) as error:
                where = f"{self.mailbox.host}:{self.mailbox.port}"
                self._down(f"cannot connect to {where}: {_why(error)}")
            except Exception as error:  # a bug must not end polling; say it loudly, once
                if self._last_error != f"unexpected error: {error!r}":
                    log.exception("fax mailbox %s: unexpected error", self.mailbox.key)
                self._down(f"unexpected error: {error!r}")
            if not self._stopping.is_set():
                self._failures += 1
                await self._sleep(self._backoff_delay(self._failures))

    async def _session(self) -> None:
        link = _Link(self.mailbox, self._ssl_context, self._command_timeout)
        try:
            await link.call(link.client.wait_hello_from_server(), "the server greeting")
            await self._login(link)
            await self._select(link)
            if self._failures:
                log.info("fax mailbox %s: connected again", self.mailbox.key)
            self._failures = 0
            while not self._stopping.is_set():
                await self._deliver_unseen(link)
                if not self._stopping.is_set():
                    await self._idle(link)
        finally:
            await link.close()

    async def _login(self, link: _Link) -> None:
        mailbox = self.mailbox
        response = await link.call(link.client.login(mailbox.user, mailbox.password), "LOGIN")
        if response.result != "OK":
            raise MailboxDown(
                f"login refused for {mailbox.user} at {mailbox.host}:{mailbox.port}: "
                f"{_text(response)}"
            )

    async def _select(self, link: _Link) -> None:
        response = await link.call(link.client.select(self.mailbox.folder), "SELECT")
        if response.result != "OK":
            raise MailboxDown(f"cannot open folder {self.mailbox.folder}: {_text(response)}")
        validity = next(
            (m.group(1) for line in response.lines if (m := _UIDVALIDITY.search(bytes(line)))),
            None,
        )
        if validity != self._uidvalidity:  # UIDs were renumbered: old retry plans mean nothing
            self._retries.clear()
            self._uidvalidity = validity

    # -- a round ---------------------------------------------------------------------------
    async def _deliver_unseen(self, link: _Link) -> None:
        self._state = "fetching"
        response = await link.call(link.client.uid_search("UNSEEN", charset=None), "SEARCH")
        if response.result != "OK":
            raise MailboxDown(f"SEARCH UNSEEN failed: {_text(response)}")
        unseen = _search_uids(response.lines)
        self._retries = {uid: retry for uid, retry in self._retries.items() if uid in unseen}
        for uid in unseen:
            if self._stopping.is_set():
                return
            retry = self._retries.get(uid)
            if retry is not None and retry.due > time.monotonic():
                continue
            raw = await self._fetch(link, uid)
            if raw is not None and await self._hand_over(uid, raw):
                await self._mark_seen(link, uid)

    async def _fetch(self, link: _Link, uid: int) -> bytes | None:
        """The whole message, without setting \\Seen; None if it vanished meanwhile."""
        response = await link.call(link.client.uid("fetch", str(uid), "BODY.PEEK[]"), "FETCH")
        if response.result != "OK":
            raise MailboxDown(f"FETCH of message UID {uid} failed: {_text(response)}")
        lines = response.lines
        for index, line in enumerate(lines[:-1]):
            match = _LITERAL.search(bytes(line))
            if match and isinstance(lines[index + 1], bytes | bytearray):
                return bytes(lines[index + 1])
        return None

    async def _hand_over(self, uid: int, raw: bytes) -> bool:
        """Deliver one message; on failure plan a retry and log the failure the first time."""
        try:
            await self._deliver(raw)
        except Exception as error:
            retry = self._retries.get(uid) or _Retry(failures=0, due=0.0)
            retry.failures += 1
            retry.due = time.monotonic() + self._backoff_delay(retry.failures)
            self._retries[uid] = retry
            self._last_error = f"delivery of message UID {uid} failed: {error!r}"
            if retry.failures == 1:
                log.warning(
                    "fax mailbox %s: delivery of message UID %s failed; it stays unseen and "
                    "will be tried again",
                    self.mailbox.key,
                    uid,
                    exc_info=True,
                )
            return False
        self._retries.pop(uid, None)
        self._delivered += 1
        return True

    async def _mark_seen(self, link: _Link, uid: int) -> None:
        response = await link.call(
            link.client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)"), "STORE"
        )
        if response.result != "OK":
            raise MailboxDown(f"could not mark message UID {uid} seen: {_text(response)}")

    # -- idle ------------------------------------------------------------------------------
    async def _idle(self, link: _Link) -> None:
        """Wait for new mail (IDLE push), the IDLE timeout, a due retry, or stop()."""
        self._state = "idle"
        timeout = self._idle_timeout()
        client = link.client
        if not client.has_capability("IDLE"):
            await self._sleep(timeout)
            return
        idle = await link.start_idle(timeout)
        try:
            await self._await_push(link)
        finally:
            if not link.lost.is_set():
                link.end_idle()
                await link.call(_within(idle, self._command_timeout), "IDLE DONE")

    async def _await_push(self, link: _Link) -> None:
        queue = link.client.protocol.idle_queue
        while not self._stopping.is_set():
            push = await self._race(queue.get(), link)
            if push is None or push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                return
            lines = [bytes(line) for line in push]
            if any(line.startswith(b"BYE") for line in lines):
                raise MailboxDown(f"server closed the connection: {_text_lines(lines)}")
            if any(line.endswith((b"EXISTS", b"RECENT")) for line in lines):
                return

    async def _race(self, get: Coroutine[Any, Any, T], link: _Link) -> T | None:
        """The queue item, or None once stop() was called; MailboxDown if the link drops."""
        item = asyncio.ensure_future(get)
        stopping = asyncio.ensure_future(self._stopping.wait())
        lost = asyncio.ensure_future(link.lost.wait())
        try:
            await asyncio.wait({item, stopping, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _reap({task for task in (item, stopping, lost) if not task.done()})
        if item.done() and not item.cancelled():
            return item.result()
        if link.lost.is_set():
            raise MailboxDown("connection lost while idle")
        return None

    def _idle_timeout(self) -> float:
        """IDLE no longer than idle_seconds, and no longer than until the next retry is due."""
        timeout = self._idle_seconds
        if self._retries:
            next_due = min(retry.due for retry in self._retries.values())
            timeout = min(timeout, max(next_due - time.monotonic(), 0.01))
        return timeout

    # -- helpers ---------------------------------------------------------------------------
    def _down(self, why: str) -> None:
        self._state = f"down: {why}"
        self._note_error(why)

    def _note_error(self, why: str) -> None:
        """Remember the error; log it when it is new, not on every retry."""
        if why != self._last_error:
            log.warning("fax mailbox %s: %s", self.mailbox.key, why)
        self._last_error = why

    def _backoff_delay(self, failures: int) -> float:
        first, longest = self._backoff
        delay = min(longest, first * 2.0 ** min(failures - 1, 30))
        return delay * random.uniform(0.8, 1.0)  # spread reconnects of many pollers

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on stop()."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()


async def _within(future: Awaitable[T], seconds: float) -> T:
    async with asyncio.timeout(seconds):
        return await future


def _search_uids(lines: list[bytes]) -> list[int]:
    """UIDs from a UID SEARCH response: aioimaplib strips the `SEARCH` word from its data
    lines, and the last line is the tagged status text."""
    return [int(word) for line in lines[:-1] for word in bytes(line).split() if word.isdigit()]


def _text(response: Any) -> str:
    return _text_lines([bytes(line) for line in response.lines])


def _text_lines(lines: list[bytes]) -> str:
    return " ".join(line.decode("utf-8", "replace") for line in lines).strip() or "(no text)"


def _why(error: BaseException) -> str:
    return str(error) or type(error).__name__
