"""Advisory locks: at most one holder of a named duty (such as polling one mailbox) at a time.

Several `c2bot serve` processes may run the same duty; the lock says which one does it. On
PostgreSQL it is a session-level `pg_try_advisory_lock` on a connection of its own, so the server
frees it when that connection ends, however the holder died. On SQLite (one machine) it is an
`flock` on a file next to the database; the kernel frees it when the process dies. An in-memory
SQLite database lives in one process, so there the lock is process-local.

Taking the lock never waits: `held.acquired` says whether we got it, and the caller decides when
to try again. `held.still_held()` says whether the lock is still ours (a PostgreSQL connection can
be cut under us).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

PROBE_TIMEOUT = 5.0
_LOCAL_KEYS: set[str] = set()
_LOCAL_GUARD = threading.Lock()


@dataclass(frozen=True)
class HeldLock:
    """The outcome of one attempt to take a lock; true when we hold it."""

    key: str
    acquired: bool
    _probe: Callable[[], Awaitable[bool]]

    def __bool__(self) -> bool:
        return self.acquired

    async def still_held(self) -> bool:
        """Whether the lock is still ours (false once its database connection is gone)."""
        return self.acquired and await self._probe()


def lock_id(key: str) -> int:
    """A stable signed 64-bit number for `key` (PostgreSQL advisory locks take a bigint).

    Stable across processes, machines and Python versions (unlike `hash()`), and namespaced so
    our locks do not collide with another application's on the same database.
    """
    digest = hashlib.blake2b(f"c2bot:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@asynccontextmanager
async def advisory_lock(engine: AsyncEngine, key: str) -> AsyncIterator[HeldLock]:
    """Try once to take the lock named `key`; release it when the block ends."""
    if engine.dialect.name == "postgresql":
        async with _postgres_lock(engine, key) as held:
            yield held
        return
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        with _local_lock(key) as held:
            yield held
        return
    with _file_lock(Path(database), key) as held:
        yield held


@asynccontextmanager
async def _postgres_lock(engine: AsyncEngine, key: str) -> AsyncIterator[HeldLock]:
    connection = await engine.connect()
    try:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        result = await connection.execute(
            text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id(key)}
        )
        acquired = bool(result.scalar())
        yield HeldLock(key, acquired, lambda: _connection_alive(connection))
    finally:
        # Ending the session is what frees a session-level advisory lock, and it works even
        # when the connection is already broken; never hand a locked session back to the pool.
        await connection.invalidate()
        await connection.close()


async def _connection_alive(connection: AsyncConnection) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure (broken socket, timeout, server gone) means: not held
        return False
    return True


class _Held:
    """A context manager over an already-decided acquisition and its release."""

    def __init__(self, held: HeldLock, release: Callable[[], None]) -> None:
        self.held = held
        self.release = release

    def __enter__(self) -> HeldLock:
        return self.held

    def __exit__(self, *_exc: object) -> None:
        self.release()


async def _always_held() -> bool:
    return True


def _file_lock(database: Path, key: str) -> _Held:
    """`flock` (not `lockf`): it belongs to the open file, so two holders in one process exclude
    each other too, and the kernel releases it when the process dies."""
    path = lock_file_path(database, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return _Held(HeldLock(key, False, _always_held), lambda: None)
    except BaseException:
        os.close(fd)
        raise
    return _Held(HeldLock(key, True, _always_held), lambda: os.close(fd))


def lock_file_path(database: Path, key: str) -> Path:
    """`<database>.lock-<readable key>-<hash>`: readable for an operator, unique per key."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:40]
    return database.with_name(f"{database.name}.lock-{readable}-{lock_id(key) & 0xFFFFFFFF:08x}")


def _local_lock(key: str) -> _Held:
    with _LOCAL_GUARD:
        if key in _LOCAL_KEYS:
            return _Held(HeldLock(key, False, _always_held), lambda: None)
        _LOCAL_KEYS.add(key)

    def release() -> None:
        with _LOCAL_GUARD:
            _LOCAL_KEYS.discard(key)

    return _Held(HeldLock(key, True, _always_held), release)
