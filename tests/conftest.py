"""Shared fixtures: a migrated database (SQLite and PostgreSQL), settings, services, a world.

Every database test runs twice, once per backend. PostgreSQL is the one on 127.0.0.1:5432
(trust auth, database `test`); each test gets its own schema. Without it the PostgreSQL half
skips, except with CI=true, where a missing server fails the run.

Running the migrations for every test cost a second or two each, so each test starts from a
schema made once: a migrated SQLite file copied, and on PostgreSQL the DDL of the models plus the
Alembic stamp. `tests/storage/test_migrations.py` proves the migrations build exactly that schema.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from c2bot.bot.services import Services
from c2bot.config.settings import Settings, load_settings
from c2bot.handlers.context import Actor
from c2bot.storage.db import alembic_config, create_engine, upgrade
from c2bot.storage.models import Account, Base, Contact, Person, Role

PG_DSN = os.environ.get("C2_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing_server(what: str) -> None:
    """Skip a test whose server is missing, or fail it under CI=true."""
    if IN_CI:
        pytest.fail(f"{what} is not available, and CI=true requires it")
    pytest.skip(f"{what} is not available")


@pytest.fixture(autouse=True)
def _no_machine_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings in tests come from the test, not from the machine's c2bot.toml."""
    monkeypatch.setenv("C2_CONFIG", str(tmp_path / "absent.toml"))


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "c2bot.db"

    async def build() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def postgres_ddl() -> str:
    """The models' tables and indexes as one PostgreSQL script, stamped at the head revision."""
    dialect = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]
    statements = []
    for table in Base.metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        statements += [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
    statements.append(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    statements.append(f"INSERT INTO alembic_version (version_num) VALUES ('{_head()}')")
    return ";\n".join(statements)


async def new_postgres_schema(ddl: str | None) -> tuple[asyncpg.Connection, str]:
    """A fresh schema (with the models' tables when `ddl` is given) and the connection that made
    it, for dropping it after."""
    schema = f"t_{secrets.token_hex(6)}"
    try:
        connection = await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        missing_server(f"PostgreSQL at {PG_DSN} ({error})")
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    if ddl is not None:
        await connection.execute(f'SET search_path TO "{schema}";\n{ddl}')
        await connection.execute("RESET search_path")
    return connection, schema


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, postgres_ddl: str
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        shutil.copyfile(sqlite_template, tmp_path / "c2bot.db")
        yield f"sqlite+aiosqlite:///{tmp_path / 'c2bot.db'}"
        return
    connection, schema = await new_postgres_schema(postgres_ddl)
    try:
        url = PG_DSN.replace("postgresql://", "postgresql+asyncpg://")
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await connection.close()


def test_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "C2_DATABASE_URL": database_url,
        "C2_MAIL_DOMAIN": "c2.test",
        "C2_SUPPORT_CHANNEL": "CSUPPORT",
        "C2_SECRET_KEY": "test-secret-key",
        "C2_HTTP_PORT": 0,
        "C2_SMTP_PORT": 0,
    }
    values.update(overrides)
    return load_settings(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return test_settings(database_url)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    engine = create_engine(settings.database_url)  # the schema is there: see database_url
    try:
        yield Services(settings=settings, engine=engine)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class World:
    """Accounts and people most scenarios need.

    carrier staff `USTAFF` and admin `UADMIN`; reseller R100 (person `URES`) with customers 1001
    (person `UCUST`, jan@acme.nl) and 1002; reseller R200 (person `URES2`) with customer 2001
    (person `UOTHER`, piet@other.nl). Mail contacts: jan@acme.nl and boss@acme.nl on 1001.
    """

    staff: Actor
    admin: Actor
    reseller: Actor
    reseller2: Actor
    customer: Actor
    other: Actor


async def _account(
    services: Services, number: str, company: str, email: str, reseller: int | None = None
) -> int:
    async with services.sessions.begin() as session:
        account = Account(number=number, company=company, email=email, reseller_id=reseller)
        session.add(account)
        await session.flush()
        return account.id


async def _person(
    services: Services, slack: str, role: Role, account: int | None, email: str, name: str
) -> Actor:
    async with services.sessions.begin() as session:
        person = Person(slack_user_id=slack, role=role, account_id=account, email=email, name=name)
        session.add(person)
        await session.flush()
        return Actor.of(person)


@pytest.fixture
async def world(services: Services) -> World:
    r100 = await _account(services, "R100", "Resell BV", "info@resell.nl")
    r200 = await _account(services, "R200", "Other Reseller BV", "info@other-res.nl")
    a1001 = await _account(services, "1001", "Acme BV", "office@acme.nl", r100)
    await _account(services, "1002", "Beta BV", "office@beta.nl", r100)
    a2001 = await _account(services, "2001", "Other BV", "office@other.nl", r200)
    async with services.sessions.begin() as session:
        session.add_all(
            [
                Contact(account_id=a1001, name="Jan Jansen", email="jan@acme.nl"),
                Contact(
                    account_id=a1001, name="Boss Acme", email="boss@acme.nl", prefers_email=True
                ),
                Contact(account_id=a2001, name="Piet Other", email="piet@other.nl"),
            ]
        )
    return World(
        staff=await _person(services, "USTAFF", Role.STAFF, None, "sam@carrier.nl", "Sam Staff"),
        admin=await _person(services, "UADMIN", Role.ADMIN, None, "ada@carrier.nl", "Ada Admin"),
        reseller=await _person(services, "URES", Role.RESELLER, r100, "rita@resell.nl", "Rita"),
        reseller2=await _person(services, "URES2", Role.RESELLER, r200, "rob@other-res.nl", "Rob"),
        customer=await _person(
            services, "UCUST", Role.CUSTOMER, a1001, "jan@acme.nl", "Jan Jansen"
        ),
        other=await _person(
            services, "UOTHER", Role.CUSTOMER, a2001, "piet@other.nl", "Piet Other"
        ),
    )
