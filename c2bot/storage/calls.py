"""The summary rollup of call records: what makes a report cost accounts x hours, not calls.

Every summary figure composes: counts and sums add up, the longest call is a maximum. So each
rated call is added to one row per (account, UTC hour, rate code, trunk, direction, call type),
in the same transaction that stores the call, and a report sums those rows. Re-rating a period
rebuilds its rows from the calls (a maximum cannot be taken back, so rows are recomputed, not
corrected).

Calls without an account (a record naming no account we know) are kept but belong to no
account's summary. Hours are UTC; a report in a time zone with a whole-hour offset reads whole
rows (zones with half-hour offsets see their day boundaries rounded to the hour).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Table, case, delete, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.storage.models import CallRecord, CallRollup, CallType

ROLLUP: Table = CallRollup.__table__  # type: ignore[assignment]
KEY = ("account_id", "hour", "code", "trunk_id", "direction", "call_type")
SUMS = ("attempted", "completed", "duration", "billable")
MONEY = ("debit", "cost", "carrier_debit", "carrier_cost")
HOUR = timedelta(hours=1)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _rows(records: Sequence[CallRecord]) -> list[dict[str, Any]]:
    """The records' figures summed per rollup key (a batch of calls may share rows)."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in records:
        if record.account_id is None:
            continue
        key = (
            record.account_id,
            hour_of(record.started_at),
            record.code or "",
            record.trunk_id or 0,
            record.direction,
            record.call_type,
        )
        row = rows.get(key)
        if row is None:
            row = rows[key] = dict(zip(KEY, key, strict=True))
            row.update(
                reseller_id=record.reseller_id,
                destination=record.destination or "",
                longest=0,
                **dict.fromkeys(SUMS, 0),
                **dict.fromkeys(MONEY, Decimal(0)),
            )
        billsec = record.billsec or 0
        row["attempted"] += 1
        row["completed"] += 1 if billsec > 0 else 0
        row["duration"] += billsec
        row["billable"] += 0 if record.call_type == CallType.FREE else billsec
        row["longest"] = max(row["longest"], billsec)
        for name in MONEY:
            row[name] += getattr(record, name) or Decimal(0)
    return list(rows.values())


async def add_to_rollups(session: AsyncSession, records: Sequence[CallRecord]) -> None:
    """Add rated records to the rollup (an upsert per key); same transaction as the records."""
    rows = _rows(records)
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ROLLUP)
    larger = func.greatest if dialect == "postgresql" else func.max
    excluded = stmt.excluded
    updates: dict[str, Any] = {name: ROLLUP.c[name] + excluded[name] for name in SUMS + MONEY}
    updates["longest"] = larger(ROLLUP.c.longest, excluded.longest)
    updates["reseller_id"] = excluded.reseller_id
    upsert = stmt.on_conflict_do_update(index_elements=list(KEY), set_=updates)
    await session.execute(upsert, rows)


def _hour_expression(dialect: str) -> ColumnElement[Any]:
    started = CallRecord.__table__.c.started_at
    if dialect == "postgresql":
        # date_trunc on a timestamptz follows the session's zone: truncate the UTC wall time.
        return func.timezone("UTC", func.date_trunc("hour", func.timezone("UTC", started)))
    # SQLite keeps UTC times as text in SQLAlchemy's format; the hour keeps that format.
    return func.strftime(literal_column("'%Y-%m-%d %H:00:00.000000'"), started)


async def rebuild_rollups(session: AsyncSession, start: datetime, end: datetime) -> None:
    """Recompute the rollup rows of every hour touching [start, end) from the call records."""
    first = hour_of(start)
    last = hour_of(end)
    if last < end.astimezone(UTC):
        last += HOUR
    await session.execute(
        delete(CallRollup).where(CallRollup.hour >= first, CallRollup.hour < last)
    )
    calls = CallRecord.__table__.c
    hour = _hour_expression(session.get_bind().dialect.name)
    trunk = func.coalesce(calls.trunk_id, 0)
    answered = case((calls.billsec > 0, 1), else_=0)
    billable = case((calls.call_type == CallType.FREE.value, 0), else_=calls.billsec)
    figures = (
        select(
            calls.account_id,
            hour,
            calls.code,
            trunk,
            calls.direction,
            calls.call_type,
            func.max(calls.reseller_id),
            func.max(calls.destination),
            func.count(),
            func.sum(answered),
            func.sum(calls.billsec),
            func.sum(billable),
            func.max(calls.billsec),
            *(func.sum(calls[name]) for name in MONEY),
        )
        .where(
            calls.started_at >= first,
            calls.started_at < last,
            calls.account_id.is_not(None),
        )
        .group_by(calls.account_id, hour, calls.code, trunk, calls.direction, calls.call_type)
    )
    columns = [
        *KEY,
        "reseller_id",
        "destination",
        *SUMS,
        "longest",
        *MONEY,
    ]
    await session.execute(ROLLUP.insert().from_select(columns, figures))
