"""The fax mailbox poller against a real dovecot, with its lock on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from c2bot.faxgw.imap import Mailbox, MailboxPoller
from c2bot.storage.db import create_engine
from c2bot.storage.locks import advisory_lock, lock_id
from tests.conftest import missing_server
from tests.support.imap import Dovecot, dovecot_available, running_dovecot

SEEN = "\\Seen"


def message(number: int) -> bytes:
    return (
        f"From: sender@acme.nl\r\nTo: fax@c2.test\r\nSubject: +31201234567\r\n"
        f"Message-ID: <m{number}@acme.nl>\r\n\r\nfax body {number}\r\n"
    ).encode()


@pytest.fixture
async def imap(tmp_path: Path) -> AsyncIterator[Dovecot]:
    if not dovecot_available():
        missing_server("dovecot (/usr/sbin/dovecot)")
    async with running_dovecot(tmp_path) as server:
        server.add_user("fax", "fax-secret")
        yield server


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """SQLite for the tests that are not about the lock."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'c2bot.db'}")
    try:
        yield engine
    finally:
        await engine.dispose()


def mailbox(imap: Dovecot, password: str = "fax-secret", tls: bool = False) -> Mailbox:
    port = imap.tls_port if tls else imap.port
    return Mailbox("global", "127.0.0.1", port, "fax", password, tls)


def make_poller(
    imap: Dovecot,
    deliver: Callable[[bytes], Awaitable[None]],
    engine: AsyncEngine,
    *,
    password: str = "fax-secret",
    tls: bool = False,
    idle_seconds: float = 300.0,
    ssl_context: ssl.SSLContext | None = None,
) -> MailboxPoller:
    """A poller with short backoff and lock retry, so trouble and takeover happen quickly."""
    return MailboxPoller(
        mailbox(imap, password, tls),
        deliver,
        engine=engine,
        idle_seconds=idle_seconds,
        backoff=(0.05, 0.3),
        ssl_context=ssl_context,
        lock_retry_seconds=0.1,
        lock_check_seconds=0.2,
    )


class Recorder:
    """A deliver callback that keeps what it got; `fail` makes the next calls raise."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.fail = 0

    async def __call__(self, raw: bytes) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("database unavailable")
        self.received.append(raw)


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def polling(poller: MailboxPoller) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(poller.run())
    try:
        yield task
    finally:
        await poller.stop()
        await task


async def all_seen(imap: Dovecot) -> bool:
    return all(SEEN in flags for flags in (await imap.flags("fax")).values())


async def test_existing_unseen_messages_are_delivered_once_and_then_seen(
    imap: Dovecot, engine: AsyncEngine
) -> None:
    """Unseen mail is delivered byte for byte once, marked seen; seen mail is left alone."""
    await imap.append("fax", message(1))
    await imap.append("fax", message(2), flags=SEEN)
    await imap.append("fax", message(3))
    recorder = Recorder()
    poller = make_poller(imap, recorder, engine)
    async with polling(poller):
        await eventually(lambda: poller.health()["state"] == "idle")
        assert recorder.received == [message(1), message(3)]
        assert await all_seen(imap)
        assert poller.health()["delivered"] == 2
    again = make_poller(imap, recorder, engine)
    async with polling(again):
        await eventually(lambda: again.health()["state"] == "idle")
    assert len(recorder.received) == 2


async def test_mail_arriving_while_idle_is_pushed_not_polled(
    imap: Dovecot, engine: AsyncEngine
) -> None:
    """With a 5-minute IDLE timeout, a new message still arrives at once: IDLE push works."""
    recorder = Recorder()
    poller = make_poller(imap, recorder, engine)
    async with polling(poller):
        await eventually(lambda: poller.health()["state"] == "idle")
        for number in (1, 2):
            await imap.append("fax", message(number))
            await eventually(lambda n=number: len(recorder.received) == n)  # type: ignore[misc]
        assert recorder.received == [message(1), message(2)]
        await eventually(lambda: all_seen(imap))


async def test_a_failed_delivery_stays_unseen_and_is_retried_and_logged_once(
    imap: Dovecot, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """deliver raising leaves the message unseen; a later round delivers it; one log line."""
    caplog.set_level(logging.WARNING, logger="c2bot.faxgw.imap")
    recorder = Recorder()
    recorder.fail = 3
    uid = await imap.append("fax", message(1))
    poller = make_poller(imap, recorder, engine)
    async with polling(poller):
        await eventually(lambda: "database unavailable" in str(poller.health()["last_error"]))
        assert SEEN not in (await imap.flags("fax"))[uid]
        await eventually(lambda: recorder.received == [message(1)])
        await eventually(lambda: all_seen(imap))
    failures = [r for r in caplog.records if "delivery of message" in r.getMessage()]
    assert len(failures) == 1
    assert recorder.fail == 0


async def test_a_refused_login_is_reported_and_retried_without_crashing(
    imap: Dovecot, engine: AsyncEngine
) -> None:
    """Wrong password: state says the login was refused; the poller keeps trying and recovers."""
    await imap.append("fax", message(1))
    recorder = Recorder()
    poller = make_poller(imap, recorder, engine, password="new-secret")
    async with polling(poller) as task:
        await eventually(lambda: str(poller.health()["state"]).startswith("down: login refused"))
        assert "AUTHENTICATIONFAILED" in str(poller.health()["state"])
        await eventually(lambda: imap.log_text().count("auth failed") >= 2)
        assert not task.done()
        assert recorder.received == []
        imap.add_user("fax", "new-secret")  # the operator fixes the password on the server
        await eventually(lambda: recorder.received == [message(1)])
        await eventually(lambda: poller.health()["state"] == "idle")
        assert "login refused" in str(poller.health()["last_error"])


async def test_a_dovecot_restart_is_survived(imap: Dovecot, engine: AsyncEngine) -> None:
    """The server restarts under an idling poller: it reconnects and goes on delivering."""
    recorder = Recorder()
    poller = make_poller(imap, recorder, engine)
    async with polling(poller):
        await imap.append("fax", message(1))
        await eventually(lambda: len(recorder.received) == 1)
        await eventually(lambda: poller.health()["state"] == "idle")
        await imap.restart()
        await imap.append("fax", message(2))
        await eventually(lambda: recorder.received == [message(1), message(2)])
        assert poller.health()["last_error"] is not None
        await eventually(lambda: all_seen(imap))


async def test_two_pollers_one_mailbox_only_one_delivers_then_the_other_takes_over(
    imap: Dovecot, database_url: str
) -> None:
    """Two processes' pollers on one mailbox: one holds the lock; when it stops, the other works."""
    engines = [create_engine(database_url), create_engine(database_url)]
    first, second = Recorder(), Recorder()
    one = make_poller(imap, first, engines[0])
    two = make_poller(imap, second, engines[1])
    try:
        async with polling(one):
            await eventually(lambda: one.health()["state"] == "idle")
            async with polling(two):
                for number in (1, 2, 3):
                    await imap.append("fax", message(number))
                await eventually(lambda: len(first.received) == 3)
                assert two.health()["state"] == "waiting for lock"
                await one.stop()
                await eventually(lambda: two.health()["state"] == "idle")
                await imap.append("fax", message(4))
                await eventually(lambda: second.received == [message(4)])
        assert first.received == [message(1), message(2), message(3)]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_stop_during_idle_is_prompt_and_logs_out(imap: Dovecot, engine: AsyncEngine) -> None:
    """stop() while idling: DONE and LOGOUT (dovecot logs a clean logout), lock released."""
    poller = make_poller(imap, Recorder(), engine)
    task = asyncio.create_task(poller.run())
    await eventually(lambda: poller.health()["state"] == "idle")
    await asyncio.wait_for(poller.stop(), timeout=5)
    assert task.done()
    await task
    await eventually(lambda: "Disconnected: Logged out" in imap.log_text())
    async with advisory_lock(engine, poller.lock_key) as held:
        assert held


async def test_imaps_with_a_trusted_certificate_and_refusal_of_an_unknown_one(
    imap: Dovecot, engine: AsyncEngine
) -> None:
    """tls=True speaks IMAPS and verifies the certificate by default."""
    await imap.append("fax", message(1))
    recorder = Recorder()
    strict = make_poller(imap, recorder, engine, tls=True)
    async with polling(strict):
        await eventually(lambda: "CERTIFICATE_VERIFY_FAILED" in str(strict.health()["state"]))
    assert recorder.received == []
    trusting = make_poller(imap, recorder, engine, tls=True, ssl_context=imap.client_ssl)
    async with polling(trusting):
        await eventually(lambda: recorder.received == [message(1)])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_poller_whose_lock_connection_is_cut_stops_and_takes_the_lock_again(
    imap: Dovecot, database_url: str
) -> None:
    """PostgreSQL ends the lock's session: the poller stops polling at once, then re-locks."""
    engine = create_engine(database_url)
    recorder = Recorder()
    poller = make_poller(imap, recorder, engine)
    try:
        async with polling(poller):
            await eventually(lambda: poller.health()["state"] == "idle")
            await cut_lock_connection(engine, poller.lock_key)
            await eventually(lambda: "lost the mailbox lock" in str(poller.health()["last_error"]))
            await imap.append("fax", message(1))
            await eventually(lambda: recorder.received == [message(1)])
            assert poller.health()["state"] in ("idle", "fetching")
    finally:
        await engine.dispose()


async def cut_lock_connection(engine: AsyncEngine, key: str) -> None:
    """Terminate the PostgreSQL session holding advisory lock `key`, as a network cut would."""
    unsigned = lock_id(key) & 0xFFFF_FFFF_FFFF_FFFF
    async with engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
            ),
            {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF},
        )
        assert result.scalars().all() == [True]


async def test_advisory_locks_exclude_across_engines_and_not_across_keys(
    database_url: str, tmp_path: Path
) -> None:
    """One holder per key, whichever engine (process) asks; other keys are independent."""
    engines = [create_engine(database_url), create_engine(database_url)]
    try:
        async with advisory_lock(engines[0], "imap:global") as first:
            assert first and await first.still_held()
            async with advisory_lock(engines[1], "imap:global") as second:
                assert not second
            async with advisory_lock(engines[1], "imap:account:100") as other:
                assert other
        async with advisory_lock(engines[1], "imap:global") as after:
            assert after
    finally:
        for engine in engines:
            await engine.dispose()
    memory = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        async with (
            advisory_lock(memory, "imap:global") as first,
            advisory_lock(memory, "imap:global") as second,
        ):
            assert first and not second
    finally:
        await memory.dispose()
