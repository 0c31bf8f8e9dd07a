"""The call rollup: figures added call by call equal figures rebuilt from the calls."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, type_coerce

from c2bot.bot.services import Services
from c2bot.storage.calls import MONEY, add_to_rollups, hour_of, rebuild_rollups
from c2bot.storage.models import (
    Account,
    CallRecord,
    CallRollup,
    CallRollupDaily,
    CallRollupTotal,
    Fixed,
    exact,
)
from tests.conftest import World

START = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def _calls(accounts: dict[str, int], count: int, seed: int) -> list[CallRecord]:
    rng = random.Random(seed)
    calls = []
    for n in range(count):
        number = rng.choice(sorted(accounts))
        billsec = 0 if rng.random() < 0.35 else rng.randint(1, 900)
        debit = exact(Decimal(billsec) * Decimal("0.0123")) if billsec else Decimal(0)
        calls.append(
            CallRecord(
                uuid=f"call-{seed}-{n}",
                account_id=accounts[number],
                reseller_id=None,
                started_at=START + timedelta(seconds=rng.randint(0, 4 * 3600)),
                direction=rng.choice(["outbound", "inbound"]),
                call_type=rng.choice(["STANDARD", "STANDARD", "FREE", "DID"]),
                billsec=billsec,
                duration=billsec + 5,
                code=rng.choice(["31", "3120", "44"]),
                destination="somewhere",
                trunk_id=None,
                debit=debit,
                cost=exact(debit * Decimal("0.8")),
                carrier_debit=exact(debit * Decimal("0.8")),
                carrier_cost=exact(debit * Decimal("0.5")),
            )
        )
    return calls


async def _coarse(services: Services) -> tuple[list[Any], list[Any]]:
    """The daily and carrier-wide rollups, as comparable tuples."""
    figures = ("attempted", "completed", "duration", "billable", "longest", *MONEY)
    async with services.sessions() as session:
        daily = [
            (r.day, r.account_id, r.direction, r.call_type, *(getattr(r, f) for f in figures))
            for (r,) in await session.execute(
                select(CallRollupDaily).order_by(*CallRollupDaily.__table__.primary_key)
            )
        ]
        total = [
            (r.hour, r.direction, r.call_type, *(getattr(r, f) for f in figures))
            for (r,) in await session.execute(
                select(CallRollupTotal).order_by(*CallRollupTotal.__table__.primary_key)
            )
        ]
    return daily, total


async def _rollup(services: Services) -> list[tuple[Any, ...]]:
    async with services.sessions() as session:
        rows = await session.execute(select(CallRollup).order_by(*CallRollup.__table__.primary_key))
        return [
            (
                r.account_id,
                r.hour,
                r.code,
                r.trunk_id,
                r.direction,
                r.call_type,
                r.attempted,
                r.completed,
                r.duration,
                r.billable,
                r.longest,
                r.debit,
                r.cost,
                r.carrier_debit,
                r.carrier_cost,
            )
            for (r,) in rows
        ]


async def test_rollup_added_in_batches_equals_rollup_rebuilt(
    services: Services, world: World
) -> None:
    async with services.sessions() as session:
        accounts = {n: i for n, i in await session.execute(select(Account.number, Account.id))}
    calls = _calls(accounts, 400, seed=7)
    for batch in (calls[:1], calls[1:150], calls[150:]):
        async with services.sessions.begin() as session:
            session.add_all(batch)
            await session.flush()
            await add_to_rollups(session, batch)
    added = await _rollup(services)
    coarse = await _coarse(services)
    async with services.sessions.begin() as session:
        await rebuild_rollups(session, START, START + timedelta(hours=5))
    rebuilt = await _rollup(services)
    assert added == rebuilt
    assert await _coarse(services) == coarse
    daily, total = coarse
    # The calls span two UTC days; the coarser rollups hold the same totals.
    assert {row[0] for row in daily} == {date(2026, 11, 30), date(2026, 12, 1)}
    assert sum(row[4] for row in daily) == sum(row[3] for row in total) == 400
    assert sum((row[9] for row in daily), Decimal(0)) == sum((row[8] for row in total), Decimal(0))
    assert sum(row[6] for row in added) == 400
    # The figures are those of the calls themselves.
    total_debit = sum((c.debit for c in calls), Decimal(0))
    assert sum((row[11] for row in added), Decimal(0)) == total_debit
    assert max(row[10] for row in added) == max(c.billsec for c in calls)
    free = sum(c.billsec for c in calls if c.call_type == "FREE")
    assert sum(row[9] for row in added) == sum(c.billsec for c in calls) - free
    assert {row[1] for row in added} == {hour_of(c.started_at) for c in calls}
    async with services.sessions() as session:
        summed = await session.scalar(select(type_coerce(func.sum(CallRollup.debit), Fixed)))
    assert summed == total_debit


async def test_rebuild_touches_only_its_hours(services: Services, world: World) -> None:
    async with services.sessions() as session:
        accounts = {n: i for n, i in await session.execute(select(Account.number, Account.id))}
    calls = _calls(accounts, 120, seed=3)
    async with services.sessions.begin() as session:
        session.add_all(calls)
        await session.flush()
        await add_to_rollups(session, calls)
    before = await _rollup(services)
    # Change the calls of the first hour behind the rollup's back, then rebuild that hour only.
    first_hour = [c for c in calls if hour_of(c.started_at) == START]
    async with services.sessions.begin() as session:
        for call in first_hour:
            record = await session.get(CallRecord, call.id)
            assert record is not None
            record.debit = record.debit + Decimal(1)
        await rebuild_rollups(session, START + timedelta(minutes=10), START + timedelta(minutes=20))
    after = await _rollup(services)
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert changed and all(a[1] == START for _, a in changed)
    assert sum((a[11] for a in after), Decimal(0)) == sum(
        (b[11] for b in before), Decimal(0)
    ) + len(first_hour)
