"""Engine, sessions and migrations: one async engine per process, Alembic to shape the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).parent / "migrations"

SessionFactory = async_sessionmaker[AsyncSession]


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout, and its folder."""
    if not is_sqlite(url):
        options.setdefault("pool_pre_ping", True)
        options.setdefault("pool_size", 10)
        return create_async_engine(*libpq_options(url, options), **options)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    options.setdefault("connect_args", {"timeout": 30})
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def libpq_options(url: str, options: dict[str, Any]) -> tuple[URL]:
    """Honour libpq's `options=-csetting=value` (e.g. a search_path), which asyncpg lacks."""
    parsed = make_url(url)
    raw = parsed.query.get("options")
    if raw is None:
        return (parsed,)
    settings: dict[str, str] = {}
    for part in (raw if isinstance(raw, str) else " ".join(raw)).split():
        name, _, value = part.removeprefix("-c").partition("=")
        settings[name] = value
    connect_args = options.setdefault("connect_args", {})
    connect_args.setdefault("server_settings", {}).update(settings)
    return (parsed.difference_update_query(["options"]),)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (runs inside the event loop, no nested loop needed)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
