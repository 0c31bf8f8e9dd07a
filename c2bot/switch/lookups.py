"""A few known selects, run as directly as each database allows: FreeSWITCH waits on them.

A call rings only once mod_xml_curl has our answer, so the dialplan's reads skip what an
ordinary handler pays for. Each `Query` is a Core select compiled once per dialect and sent
straight to the driver; rows come back as named tuples.

- PostgreSQL: a small asyncpg pool of our own next to the engine's. The engine's pool pings
  every connection it hands out (BEGIN, a query, ROLLBACK: three round trips, more than a
  lookup), and asyncpg's pool would reset every connection it takes back; lookups only read,
  so this pool does neither. asyncpg replaces a connection that died. The pool closes with the
  engine (`engine_disposed`).
- SQLite: a read-only connection of our own, queried on the event loop: a select on an index
  takes tens of microseconds, less than one hop to aiosqlite's thread (and each query makes
  several). WAL lets it read while others write.
- Anything else (sessions bound to another engine than C2_DATABASE_URL's, an in-memory
  database only its engine's connection can see): through a session, like any handler.

Nothing is cached but connections and compiled SQL: every read sees the latest commit.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import weakref
from collections import namedtuple
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Dialect, Select, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from c2bot.config.settings import Settings
from c2bot.storage.db import SessionFactory, libpq_options

LOOKUP_CONNECTIONS = 10


class Query:
    """A select, its SQL per dialect, and the named tuple its rows come back as."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self.row: Any = namedtuple("Row", list(statement.selected_columns.keys()))  # type: ignore[misc]
        self._sql: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    def bind(self, dialect: Dialect, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL text for `dialect` and its positional arguments (ours, or the statement's
        own, e.g. a LIMIT)."""
        found = self._sql.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            names = tuple(compiled.positiontup or ())
            found = self._sql[dialect.name] = (str(compiled), names, dict(compiled.params))
        sql, names, fixed = found
        return sql, [values[name] if name in values else fixed[name] for name in names]


Reader = Callable[[Query, Mapping[str, Any]], Awaitable[list[Any]]]
_PG_POOLS: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Task[Any]] = weakref.WeakKeyDictionary()
_SQLITE: weakref.WeakKeyDictionary[AsyncEngine, sqlite3.Connection] = weakref.WeakKeyDictionary()
_SAME: weakref.WeakKeyDictionary[AsyncEngine, tuple[str, bool]] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def reader(sessions: SessionFactory, settings: Settings) -> AsyncIterator[Reader]:
    """The quickest reader for the sessions' database, for the length of one lookup."""
    bind = sessions.kw.get("bind")
    engine = bind if isinstance(bind, AsyncEngine) and same_database(bind, settings) else None
    if engine is not None and engine.dialect.name == "postgresql":
        pool = await lookup_pool(engine, settings)
        async with pool.acquire() as driver:
            yield _asyncpg_reader(driver, engine.dialect)
    elif engine is not None and engine.url.database not in (None, "", ":memory:"):
        yield _sqlite_reader(engine)
    else:
        async with sessions() as session:
            yield session_reader(session)


def session_reader(session: AsyncSession) -> Reader:
    async def read(query: Query, values: Mapping[str, Any]) -> list[Any]:
        return list((await session.execute(query.statement, values)).all())

    return read


def _asyncpg_reader(driver: Any, dialect: Dialect) -> Reader:
    """Straight on the asyncpg connection (it prepares each statement once)."""

    async def read(query: Query, values: Mapping[str, Any]) -> list[Any]:
        sql, args = query.bind(dialect, values)
        records = await driver.fetch(sql, *args)
        return [query.row._make(record) for record in records]

    return read


def _sqlite_reader(engine: AsyncEngine) -> Reader:
    """A connection of our own, kept as long as the engine lives."""
    db = _SQLITE.get(engine)
    if db is None:
        path = os.path.abspath(engine.url.database or "")
        db = _SQLITE[engine] = sqlite3.connect(
            path, timeout=1.0, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA query_only=ON")
        weakref.finalize(engine, db.close)
    dialect = engine.dialect

    async def read(query: Query, values: Mapping[str, Any]) -> list[Any]:
        sql, args = query.bind(dialect, values)
        rows = db.execute(sql, args).fetchall()
        return [query.row._make(row) for row in rows]

    return read


def same_database(engine: AsyncEngine, settings: Settings) -> bool:
    """Whether the engine is C2_DATABASE_URL's (our own connections are made from that)."""
    known = _SAME.get(engine)
    if known is None or known[0] != settings.database_url:
        if engine.dialect.name == "postgresql":  # as storage.db made the engine's URL
            url = libpq_options(settings.database_url, {})[0]
        else:
            url = make_url(settings.database_url)
        same = url.render_as_string(hide_password=False) == engine.url.render_as_string(
            hide_password=False
        )
        known = _SAME[engine] = (settings.database_url, same)
    return known[1]


async def lookup_pool(engine: AsyncEngine, settings: Settings) -> Any:
    """The engine's lookup pool, opened on first use (once, however many calls wait for it)."""
    opening = _PG_POOLS.get(engine)
    if opening is None:
        opening = _PG_POOLS[engine] = asyncio.ensure_future(_open_pool(engine, settings))
    try:
        return await asyncio.shield(opening)
    except Exception:
        if _PG_POOLS.get(engine) is opening:
            del _PG_POOLS[engine]  # the next call tries again
        raise


async def _open_pool(engine: AsyncEngine, settings: Settings) -> Any:
    options: dict[str, Any] = {}
    (url,) = libpq_options(settings.database_url, options)  # as storage.db makes the engine
    _, params = engine.dialect.create_connect_args(url)
    pool = await asyncpg.create_pool(
        min_size=0,
        max_size=LOOKUP_CONNECTIONS,
        reset=_nothing_to_reset,
        **params,
        **options.get("connect_args", {}),
    )

    def close(_engine: Any) -> None:
        _PG_POOLS.pop(engine, None)
        pool.terminate()

    event.listen(engine.sync_engine, "engine_disposed", close)
    return pool


async def _nothing_to_reset(_connection: Any) -> None:
    """Lookups leave no state on a connection (no transaction, no settings)."""
