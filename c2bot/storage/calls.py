"""The summary rollup of call records: what makes a report cost accounts x hours, not calls.

Every summary figure composes: counts and sums add up, the longest call is a maximum. So each
rated call is added to one row per (account, UTC hour, rate code, trunk, direction, call type),
in the same transaction that stores the call, and a report sums those rows. Two coarser
rollups come with it: per (account, UTC day, direction, call type), so a month of every
account reads accounts x days rows, and carrier-wide per (UTC hour, direction, call type).
Re-rating a period rebuilds its rows from the calls (a maximum cannot be taken back, so rows
are recomputed, not corrected).

Calls without an account (a record naming no account we know) are kept but belong to no
account's summary. Hours are UTC; a report in a time zone with a whole-hour offset reads whole
rows (zones with half-hour offsets see their day boundaries rounded to the hour).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Table, case, delete, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.storage.models import (
    CallRecord,
    CallRollup,
    CallRollupDaily,
    CallRollupTotal,
    CallType,
)

SUMS = ("attempted", "completed", "duration", "billable")
MONEY = ("debit", "cost", "carrier_debit", "carrier_cost")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> date:
    """The UTC day a moment falls in."""
    return moment.astimezone(UTC).date()


@dataclass(frozen=True)
class _Level:
    """One rollup: its table, its key columns, and what else a row carries."""

    table: Table
    key: tuple[str, ...]
    carries: tuple[str, ...]
    period: str  # the key column that is the time (hour or day)

    def key_of(self, record: CallRecord) -> tuple[Any, ...]:
        values = {
            "account_id": record.account_id,
            "hour": hour_of(record.started_at),
            "day": day_of(record.started_at),
            "code": record.code or "",
            "trunk_id": record.trunk_id or 0,
            "direction": record.direction,
            "call_type": record.call_type,
        }
        return tuple(values[name] for name in self.key)


HOURLY = _Level(
    CallRollup.__table__,  # type: ignore[arg-type]
    ("account_id", "hour", "code", "trunk_id", "direction", "call_type"),
    ("reseller_id", "destination"),
    "hour",
)
DAILY = _Level(
    CallRollupDaily.__table__,  # type: ignore[arg-type]
    ("day", "account_id", "direction", "call_type"),
    ("reseller_id",),
    "day",
)
TOTAL = _Level(
    CallRollupTotal.__table__,  # type: ignore[arg-type]
    ("hour", "direction", "call_type"),
    (),
    "hour",
)
LEVELS = (HOURLY, DAILY, TOTAL)


def _rows(level: _Level, records: Sequence[CallRecord]) -> list[dict[str, Any]]:
    """The records' figures summed per key of one rollup (a batch of calls may share rows)."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in records:
        if record.account_id is None:
            continue
        key = level.key_of(record)
        row = rows.get(key)
        if row is None:
            row = rows[key] = dict(zip(level.key, key, strict=True))
            carried = {"reseller_id": record.reseller_id, "destination": record.destination or ""}
            row.update({name: carried[name] for name in level.carries})
            row.update(longest=0, **dict.fromkeys(SUMS, 0), **dict.fromkeys(MONEY, Decimal(0)))
        billsec = record.billsec or 0
        row["attempted"] += 1
        row["completed"] += 1 if billsec > 0 else 0
        row["duration"] += billsec
        row["billable"] += 0 if record.call_type == CallType.FREE else billsec
        row["longest"] = max(row["longest"], billsec)
        for name in MONEY:
            row[name] += getattr(record, name) or Decimal(0)
    return list(rows.values())


@functools.cache
def _upsert(level: _Level, dialect: str) -> Any:
    """One rollup's upsert for a dialect (built once: building it costs more than a row)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    larger = func.greatest if dialect == "postgresql" else func.max
    stmt = insert(level.table)
    excluded = stmt.excluded
    table = level.table.c
    updates: dict[str, Any] = {name: table[name] + excluded[name] for name in SUMS + MONEY}
    updates["longest"] = larger(table.longest, excluded.longest)
    if "reseller_id" in level.carries:
        updates["reseller_id"] = excluded.reseller_id
    return stmt.on_conflict_do_update(index_elements=list(level.key), set_=updates)


def rollup_upserts(
    records: Sequence[CallRecord], dialect: str
) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Each rollup's upsert statement for `dialect` ("postgresql" or "sqlite") with its rows
    for the records (rollups no record touches are left out)."""
    out: list[tuple[Any, list[dict[str, Any]]]] = []
    for level in LEVELS:
        rows = _rows(level, records)
        if rows:
            out.append((_upsert(level, dialect), rows))
    return out


async def add_to_rollups(session: AsyncSession, records: Sequence[CallRecord]) -> None:
    """Add rated records to every rollup (an upsert per key); same transaction as the records."""
    dialect = session.get_bind().dialect.name
    for upsert, rows in rollup_upserts(records, dialect):
        await session.execute(upsert, rows)


def _hour_expression(dialect: str) -> ColumnElement[Any]:
    started = CallRecord.__table__.c.started_at
    if dialect == "postgresql":
        # date_trunc on a timestamptz follows the session's zone: truncate the UTC wall time.
        return func.timezone("UTC", func.date_trunc("hour", func.timezone("UTC", started)))
    # SQLite keeps UTC times as text in SQLAlchemy's format; the hour keeps that format.
    return func.strftime(literal_column("'%Y-%m-%d %H:00:00.000000'"), started)


def _day_expression(dialect: str) -> ColumnElement[Any]:
    started = CallRecord.__table__.c.started_at
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", started))
    return func.date(started)


def _figures(level: _Level, keys: dict[str, ColumnElement[Any]]) -> list[ColumnElement[Any]]:
    calls = CallRecord.__table__.c
    answered = case((calls.billsec > 0, 1), else_=0)
    billable = case((calls.call_type == CallType.FREE.value, 0), else_=calls.billsec)
    carried = {
        "reseller_id": func.max(calls.reseller_id),
        "destination": func.max(calls.destination),
    }
    return [
        *(keys[name] for name in level.key),
        *(carried[name] for name in level.carries),
        func.count(),
        func.sum(answered),
        func.sum(calls.billsec),
        func.sum(billable),
        func.max(calls.billsec),
        *(func.sum(calls[name]) for name in MONEY),
    ]


async def _rebuild(
    session: AsyncSession, level: _Level, since: Any, until: Any, start: datetime, end: datetime
) -> None:
    """Recompute one rollup's rows keyed in [since, until) from the calls in [start, end)."""
    dialect = session.get_bind().dialect.name
    calls = CallRecord.__table__.c
    keys: dict[str, ColumnElement[Any]] = {
        "account_id": calls.account_id,
        "hour": _hour_expression(dialect),
        "day": _day_expression(dialect),
        "code": calls.code,
        "trunk_id": func.coalesce(calls.trunk_id, 0),
        "direction": calls.direction,
        "call_type": calls.call_type,
    }
    period = level.table.c[level.period]
    await session.execute(delete(level.table).where(period >= since, period < until))
    figures = (
        select(*_figures(level, keys))
        .where(
            calls.started_at >= start,
            calls.started_at < end,
            calls.account_id.is_not(None),
        )
        .group_by(*(keys[name] for name in level.key))
    )
    columns = [*level.key, *level.carries, *SUMS, "longest", *MONEY]
    await session.execute(level.table.insert().from_select(columns, figures))


async def rebuild_rollups(session: AsyncSession, start: datetime, end: datetime) -> None:
    """Recompute every rollup's rows touching [start, end) from the call records: the hours
    (hourly and carrier-wide) and the whole UTC days (daily) that period touches."""
    first = hour_of(start)
    last = hour_of(end)
    if last < end.astimezone(UTC):
        last += HOUR
    await _rebuild(session, HOURLY, first, last, first, last)
    await _rebuild(session, TOTAL, first, last, first, last)
    first_day = first.date()
    last_day = (last - timedelta(microseconds=1)).date() + DAY
    day_start = datetime.combine(first_day, time(), UTC)
    day_end = datetime.combine(last_day, time(), UTC)
    await _rebuild(session, DAILY, first_day, last_day, day_start, day_end)
