"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL.

The test fixtures start each test from the models' schema instead of running the migrations
(much faster); this test is what makes that honest.
"""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from c2bot.storage.db import create_engine, upgrade
from c2bot.storage.models import Base
from tests.conftest import PG_DSN, new_postgres_schema


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _check(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            version = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert version.scalar_one() is not None
    finally:
        await engine.dispose()


async def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")


async def test_migrations_match_the_models_on_postgresql() -> None:
    connection, schema = await new_postgres_schema(None)
    try:
        url = PG_DSN.replace("postgresql://", "postgresql+asyncpg://")
        await _check(f"{url}?options=-csearch_path%3D{schema}")
    finally:
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await connection.close()
