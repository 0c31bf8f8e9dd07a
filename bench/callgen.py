"""Make a database of call records for the report benchmark, and keep it for the next run.

500 accounts (10 resellers with 40 customers each, 90 direct customers) share the calls
unevenly (Zipf-like weights, shuffled), over the 90 days before 1 December 2026 with a working
day's hours busier than the night; 35% are not answered; 70% go out (40 destination codes, the
first few much more often, each code mostly by one of 5 trunks), 25% come in on a DID, 5% are
local. Money is rated per code and level (customer, reseller, carrier, trunk).

Loading bypasses the ORM: PostgreSQL takes the rows by COPY, SQLite by executemany with its
journal off (and its call_records indexes dropped during the load and made again after); then
`rebuild_rollups` builds the rollups (hourly, daily and carrier-wide), as `c2bot rerate`
would, and every table is analyzed. The result is kept (SQLite: a file under ./var/bench/;
PostgreSQL: a schema named after the record count) and reused while the generator's VERSION
is the same, so a second `make bench` starts at once (VERSION 3: the daily and carrier-wide
rollups).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

VERSION = 3
SEED = 20261201
END = datetime(2026, 12, 1, tzinfo=UTC)
DAYS = 90
START = END - timedelta(days=DAYS)
RESELLERS, PER_RESELLER, DIRECT = 10, 40, 90
CODES = 40
TRUNKS = 5
UNANSWERED = 0.35
BATCH = 50_000
# Share of a day's calls per hour (local business hours busier).
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 16, 15, 12, 14, 16, 16, 14, 10, 7, 5, 4, 3, 2, 1]
COLUMNS = (
    "id", "uuid", "account_id", "reseller_id", "started_at", "answered_at", "ended_at",
    "caller_id_number", "caller_id_name", "called_number", "sip_user", "direction",
    "call_type", "duration", "billsec", "hangup_cause", "hangup_cause_q850", "code",
    "destination", "country", "trunk_id", "rate_group_id", "debit", "cost", "carrier_debit",
    "carrier_cost", "rating_note", "recording", "rated_at",
)  # fmt: skip
FAILURES = (
    ("NO_ANSWER", 19),
    ("USER_BUSY", 17),
    ("CALL_REJECTED", 21),
    ("NO_ROUTE_DESTINATION", 3),
)


@dataclass(frozen=True)
class Plan:
    """Accounts (id, number, reseller id) and their shares of the calls."""

    accounts: list[tuple[int, str, int | None]]
    weights: list[float]

    @property
    def busiest(self) -> str:
        top = max(range(len(self.weights)), key=self.weights.__getitem__)
        return self.accounts[top][1]


def plan(rng: random.Random) -> Plan:
    accounts: list[tuple[int, str, int | None]] = []
    for r in range(RESELLERS):
        reseller_id = len(accounts) + 1
        accounts.append((reseller_id, f"R{r + 1:03d}", None))
        for c in range(PER_RESELLER):
            accounts.append((len(accounts) + 1, f"{r + 1:02d}{c + 1:03d}", reseller_id))
    for d in range(DIRECT):
        accounts.append((len(accounts) + 1, f"D{d + 1:03d}", None))
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(accounts))]
    rng.shuffle(weights)
    return Plan(accounts, weights)


def _money(per_minute_millionths: int, billsec: int) -> int:
    return per_minute_millionths * billsec // 60


def calls(
    count: int, rng: random.Random, layout: Plan, for_postgres: bool
) -> Iterator[tuple[Any, ...]]:
    """`count` call rows in COLUMNS order (money as integer millionths, as `Fixed` stores it)."""
    code_weights = [1 / (rank + 1) for rank in range(CODES)]
    codes = [f"{31 + rank}{rank % 10}" for rank in range(CODES)]
    prices = [2000 + 1500 * (rank % 9) for rank in range(CODES)]  # per minute, millionths
    picked = rng.choices(range(len(layout.accounts)), layout.weights, k=count)
    hours = rng.choices(range(24), HOUR_WEIGHTS, k=count)
    for number, (index, hour) in enumerate(zip(picked, hours, strict=True), start=1):
        account_id, account, reseller_id = layout.accounts[index]
        started = START + timedelta(
            days=rng.randrange(DAYS), hours=hour, seconds=rng.randrange(3600)
        )
        answered = rng.random() >= UNANSWERED
        billsec = min(int(rng.expovariate(1 / 120)) + 1, 3600) if answered else 0
        kind = rng.random()
        direction = "outbound" if kind < 0.70 else "inbound" if kind < 0.95 else "local"
        call_type = {"inbound": "DID", "local": "LOCAL"}.get(direction, "STANDARD")
        code = destination = ""
        trunk_id = None
        debit = cost = carrier_debit = carrier_cost = 0
        if direction == "outbound":
            c = rng.choices(range(CODES), code_weights)[0]
            code, destination = codes[c], f"Destination {codes[c]}"
            trunk_id = (c % TRUNKS) + 1 if rng.random() < 0.9 else ((c + 1) % TRUNKS) + 1
            if rng.random() < 0.03:
                call_type = "FREE"
            else:
                price = prices[c]
                carrier_debit = _money(price, billsec)
                carrier_cost = _money(price * 6 // 10, billsec)
                debit = _money(price * 13 // 10, billsec) if reseller_id else carrier_debit
                cost = carrier_debit if reseller_id else carrier_cost
        cause, q850 = ("NORMAL_CLEARING", 16) if answered else rng.choice(FAILURES)
        stamp: Any = started if for_postgres else _sqlite_time(started)
        ended = started + timedelta(seconds=billsec + 5)
        yield (
            number, str(uuid.UUID(int=rng.getrandbits(128), version=4)), account_id, reseller_id,
            stamp, stamp if answered else None, ended if for_postgres else _sqlite_time(ended),
            f"31{rng.randrange(10**8, 10**9)}", "", f"{code or '3120'}{rng.randrange(10**7)}",
            f"{account}-{100 + rng.randrange(4)}", direction, call_type, billsec + 5, billsec,
            cause, q850, code, destination, "NL", trunk_id, None, debit, cost, carrier_debit,
            carrier_cost, "", "", None,
        )  # fmt: skip


def _sqlite_time(moment: datetime) -> str:
    """A UTC time as SQLAlchemy stores it in SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


# --- SQLite ------------------------------------------------------------------------------------


async def sqlite_database(count: int, folder: Path) -> tuple[str, Plan, float | None]:
    """The cached SQLite file's URL (made if missing), its plan, and seconds spent making it."""
    from c2bot.storage.db import create_engine, upgrade

    layout = plan(random.Random(SEED))
    path = folder / f"calls-{count}-v{VERSION}.db"
    url = f"sqlite+aiosqlite:///{path}"
    if path.exists():
        return url, layout, None
    partial = _fresh(path.with_suffix(".partial"))
    started = time.perf_counter()
    engine = create_engine(f"sqlite+aiosqlite:///{partial}")
    await upgrade(engine)
    await engine.dispose()
    await asyncio.to_thread(_load_sqlite, partial, count, layout)
    await _rollups(f"sqlite+aiosqlite:///{partial}")
    await asyncio.to_thread(_analyze_sqlite, partial)
    await asyncio.to_thread(partial.rename, path)
    return url, layout, time.perf_counter() - started


def _fresh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


def _load_sqlite(path: Path, count: int, layout: Plan) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    indexes = [
        (name, sql)
        for name, sql in db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='call_records' "
            "AND sql IS NOT NULL"
        )
    ]
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    _accounts_sqlite(db, layout)
    marks = ",".join("?" * len(COLUMNS))
    insert = f"INSERT INTO call_records ({','.join(COLUMNS)}) VALUES ({marks})"
    rows = calls(count, random.Random(SEED + 1), layout, for_postgres=False)
    while batch := [row for _, row in zip(range(BATCH), rows, strict=False)]:
        db.executemany(insert, batch)
    for _, sql in indexes:
        db.execute(sql)
    db.commit()
    db.execute("ANALYZE")
    db.close()


def _analyze_sqlite(path: Path) -> None:
    """Statistics of every table, the rollups included (the planner picks their indexes)."""
    db = sqlite3.connect(path)
    db.execute("ANALYZE")
    db.close()


def _accounts_sqlite(db: sqlite3.Connection, layout: Plan) -> None:
    for table, columns, rows in _fixed_rows(layout, _sqlite_time(START)):
        marks = ",".join("?" * len(columns))
        db.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)


ACCOUNT_COLUMNS = (
    "id", "number", "company", "email", "timezone", "reseller_id", "created_at", "status",
    "first_name", "last_name", "phone", "mobile", "address", "city", "province", "zip_code",
    "billing", "balance", "credit_limit", "max_channels", "cps", "number_translation",
    "out_callerid_translation", "in_callerid_translation",
)  # fmt: skip
TRUNK_COLUMNS = (
    "id", "name", "provider", "gateway", "failover_gateways", "max_channels", "precedence",
    "status", "created_at",
)  # fmt: skip


def _fixed_rows(
    layout: Plan, stamp: Any
) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
    """The accounts and trunks the calls name, every column given (defaults are Python's)."""
    accounts = [
        (i, n, f"Company {n}", f"{n}@bench.test", "Europe/Amsterdam", r, stamp, "active",
         "", "", "", "", "", "", "", "", "prepaid", 0, 0, 0, 0, "", "", "")
        for i, n, r in layout.accounts
    ]  # fmt: skip
    trunks = [
        (t, f"trunk{t}", "", f"gw{t}", "", 0, 0, "active", stamp) for t in range(1, TRUNKS + 1)
    ]
    return [("accounts", ACCOUNT_COLUMNS, accounts), ("trunks", TRUNK_COLUMNS, trunks)]


# --- PostgreSQL --------------------------------------------------------------------------------


async def postgres_database(count: int, dsn: str) -> tuple[str, Plan, float | None] | None:
    """The kept PostgreSQL schema's URL (made if missing), or None without a server."""
    import asyncpg

    from c2bot.storage.db import create_engine, upgrade

    layout = plan(random.Random(SEED))
    schema = f"bench_calls_{count}_v{VERSION}"
    try:
        connection = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return None
    url = (
        dsn.replace("postgresql://", "postgresql+asyncpg://") + f"?options=-csearch_path%3D{schema}"
    )
    try:
        done = await connection.fetchval(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1",
            schema,
        )
        if done == "complete":
            return url, layout, None
        started = time.perf_counter()
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.execute(f'CREATE SCHEMA "{schema}"')
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()
        await _load_postgres(connection, schema, count, layout)
        await _rollups(url)
        for table in ("call_records", "call_rollups", "call_rollups_daily", "call_rollups_total"):
            await connection.execute(f'ANALYZE "{schema}".{table}')
        await connection.execute(f"COMMENT ON SCHEMA \"{schema}\" IS 'complete'")
        return url, layout, time.perf_counter() - started
    finally:
        await connection.close()


async def _load_postgres(connection: Any, schema: str, count: int, layout: Plan) -> None:
    for table, columns, records in _fixed_rows(layout, START):
        await connection.copy_records_to_table(
            table, schema_name=schema, columns=list(columns), records=records
        )
    rows = calls(count, random.Random(SEED + 1), layout, for_postgres=True)
    while batch := [row for _, row in zip(range(BATCH), rows, strict=False)]:
        await connection.copy_records_to_table(
            "call_records", schema_name=schema, columns=list(COLUMNS), records=batch
        )
    await connection.execute(
        f"SELECT setval(pg_get_serial_sequence('\"{schema}\".call_records', 'id'), {count})"
    )


async def _rollups(url: str) -> None:
    from c2bot.storage.calls import rebuild_rollups
    from c2bot.storage.db import create_engine, session_factory

    engine = create_engine(url)
    try:
        # A day at a time: the rollup's rows then lie in time order, as they do when calls are
        # added as they come in (one bulk rebuild would write them account by account).
        for day in range(DAYS):
            async with session_factory(engine).begin() as session:
                first = START + timedelta(days=day)
                await rebuild_rollups(session, first, first + timedelta(days=1))
    finally:
        await engine.dispose()
