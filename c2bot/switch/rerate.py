"""Re-rating a period after a rate change (`c2bot rerate --from ... --to ... [--account N]`).

Every stored call that started in [start, end) (UTC) is rated again with the rates as they are
now, by the same rule as the intake (c2bot.switch.cdr.charge_call: outbound calls by
rating.rate_call, the account's number translation applied, the trunk the call went by). A call
whose figures change is updated; balances are corrected by the difference (the account by its
debit's, its reseller by its cost's: what the intake moved is taken back and the new figures
moved instead), and the rollups of the hours the period touches are rebuilt from the calls
(storage.calls.rebuild_rollups). All of it is one transaction: a re-rate that fails leaves
records, balances and rollups as they were. Calls without an account are left alone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from c2bot.storage.calls import rebuild_rollups
from c2bot.storage.db import SessionFactory
from c2bot.storage.models import Account, CallRecord, utcnow
from c2bot.switch import lookups
from c2bot.switch.cdr import MOVE_BALANCE, charge_call, rated_number

PAGE = 1000
# The columns re-rating may change.
FIGURES = (
    "code",
    "destination",
    "country",
    "rate_group_id",
    "debit",
    "cost",
    "carrier_debit",
    "carrier_cost",
    "rating_note",
    "reseller_id",
)


class UnknownAccount(LookupError):
    pass


@dataclass
class RerateSummary:
    calls: int = 0
    changed: int = 0
    # new minus old, summed over the changed calls
    debit: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    carrier_debit: Decimal = Decimal(0)
    carrier_cost: Decimal = Decimal(0)
    balances: dict[int, Decimal] = field(default_factory=dict)


async def rerate(
    sessions: SessionFactory, start: datetime, end: datetime, account: str | None = None
) -> RerateSummary:
    """Re-rate the calls that started in [start, end), of one account number if given."""
    summary = RerateSummary()
    owed: dict[int, Decimal] = defaultdict(Decimal)
    async with sessions.begin() as session:
        accounts = {
            row.id: row
            for row in (
                await session.execute(
                    select(Account.id, Account.number, Account.number_translation)
                )
            ).all()
        }
        only: int | None = None
        if account is not None:
            only = next((i for i, row in accounts.items() if row.number == account), None)
            if only is None:
                raise UnknownAccount(f"there is no account {account}")
        read = lookups.session_reader(session)
        last = 0
        while True:
            query = (
                select(CallRecord)
                .where(
                    CallRecord.started_at >= start,
                    CallRecord.started_at < end,
                    CallRecord.account_id.is_not(None),
                    CallRecord.id > last,
                )
                .order_by(CallRecord.id)
                .limit(PAGE)
            )
            if only is not None:
                query = query.where(CallRecord.account_id == only)
            page = list((await session.scalars(query)).all())
            if not page:
                break
            last = page[-1].id
            changes: list[dict[str, Any]] = []
            for record in page:
                summary.calls += 1
                assert record.account_id is not None
                owner = accounts.get(record.account_id)
                figures = await charge_call(
                    read,
                    account_id=record.account_id,
                    reseller_id=record.reseller_id,
                    direction=record.direction,
                    call_type=record.call_type,
                    number=rated_number(
                        record.called_number, owner.number_translation if owner else ""
                    ),
                    billsec=record.billsec,
                    trunk_id=record.trunk_id,
                )
                figures.pop("trunk_id")
                if all(getattr(record, name) == figures[name] for name in FIGURES):
                    continue
                summary.changed += 1
                for name in ("debit", "cost", "carrier_debit", "carrier_cost"):
                    difference = figures[name] - getattr(record, name)
                    setattr(summary, name, getattr(summary, name) + difference)
                # Take back what the intake moved, move the new figures.
                owed[record.account_id] += figures["debit"] - record.debit
                if record.reseller_id is not None:
                    owed[record.reseller_id] -= record.cost
                if figures["reseller_id"] is not None:
                    owed[figures["reseller_id"]] += figures["cost"]
                changes.append({"id": record.id, "rated_at": utcnow(), **figures})
            session.expunge_all()
            if changes:
                await session.execute(update(CallRecord), changes)
        summary.balances = {k: -v for k, v in sorted(owed.items()) if v}
        moves = [{"b_account": k, "b_amount": v} for k, v in sorted(owed.items()) if v]
        if moves:
            await session.execute(MOVE_BALANCE, moves)
        await rebuild_rollups(session, start, end)
    return summary
