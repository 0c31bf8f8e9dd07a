"""Call reports: the CDR list (paged by index), the summary (summed in SQL from the rollup), CSV
exports, the chart's figures and call recordings, each narrowed to what the asker may see.

Who sees which money (DESIGN.md "Who is who"): a customer its own account's debit only; a
reseller its own and its customers' calls, Debit being what the customer pays and Cost what the
call cost the reseller (its own calls: what it pays, so no profit); staff any account with the
carrier's figures (`carrier_debit` against the trunk's `carrier_cost`).

Periods are local days in the asker's account's time zone (staff: `account:`'s, else
Europe/Amsterdam). Summaries read the rollups (c2bot/storage/calls.py), never the calls, unless
a filter needs them (see `_parts`): per account, the daily rollup for the period's whole UTC
days plus the hourly rollup for the edge hours of a zone that is not UTC; carrier-wide time
series from the carrier-wide hourly rollup. The rollups keep UTC hours and days, so time groups
(hour, day, month) are summed in SQL per UTC hour first, then those hours are labelled with
their local time and summed again, still in SQL (PostgreSQL converts with the zone; SQLite is
given the zone's offsets).
"""

from __future__ import annotations

import asyncio
import csv
import enum
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.permissions import may_act_on, visible_accounts
from c2bot.handlers.replies import Reply, ReplyFile, Table
from c2bot.storage.models import (
    Account,
    CallRecord,
    CallRollup,
    CallRollupDaily,
    CallRollupTotal,
    CallType,
    Fixed,
    RateGroup,
    Role,
    Trunk,
)

PERIODS = ("today", "yesterday", "week", "month", "year")
GROUPS = ("account", "destination", "trunk", "sipuser", "direction", "hour", "day", "month")
TIME_GROUPS = frozenset({"hour", "day", "month"})
DEFAULT_ZONE = "Europe/Amsterdam"
PAGE_SIZE = 20
SUMMARY_ROWS_SHOWN = 100
EXPORT_LIMIT = 500_000
RECORDING_LIMIT = 50 * 1024 * 1024
EXPORT_BATCH = 2000
CENT = Decimal("0.0001")
ZERO = Decimal(0)


class View(enum.Enum):
    """Whose money a report shows."""

    CUSTOMER = "customer"
    RESELLER = "reseller"
    CARRIER = "carrier"


@dataclass(frozen=True)
class CallFilter:
    """What narrows a report: the words after `report cdr|summary|chart`."""

    period: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    account: str | None = None
    direction: str | None = None
    call_type: str | None = None
    disposition: str | None = None
    prefix: str | None = None

    @property
    def needs_records(self) -> bool:
        """Filters the rollup has no column for: those reports read the call records."""
        return bool(self.disposition or self.prefix)


@dataclass(frozen=True)
class Period:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    zone: ZoneInfo
    label: str

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


@dataclass(frozen=True)
class Scope:
    """The accounts a report covers and how their money is shown."""

    view: View
    account_ids: frozenset[int] | None  # None: every account (staff)
    own_account: int | None  # a reseller's own account: its calls cost what they debit
    zone: ZoneInfo
    label: str


# --- who, when ---------------------------------------------------------------------------------


def view_of(actor: Actor) -> View:
    if actor.is_staff:
        return View.CARRIER
    return View.RESELLER if actor.role is Role.RESELLER else View.CUSTOMER


async def resolve_scope(session: AsyncSession, ctx: Context, number: str | None) -> Scope:
    actor = ctx.actor
    own = await session.get(Account, actor.account_id) if actor.account_id else None
    if own is None and not actor.is_staff:
        raise Invalid("You are not linked to an account, so there are no calls to show.")
    target = None
    if number:
        # Unknown and not yours read the same, so nobody learns which accounts exist.
        target = await session.scalar(select(Account).where(Account.number == number))
        if target is None and actor.is_staff:
            raise NotFound(f"There is no account {number}.")
        if target is None or not await may_act_on(session, actor, target.id):
            raise NotAllowed(_refusal(actor, own, number))
    if actor.is_staff or own is None:
        zone_name = target.timezone if target else DEFAULT_ZONE
    else:
        zone_name = own.timezone
    if target is not None:
        subtree = Actor(label="", role=Role.RESELLER, account_id=target.id)
        ids = await visible_accounts(session, subtree)
        label = f"account {target.number}"
    else:
        ids = await visible_accounts(session, actor)
        label = "all accounts" if ids is None else f"account {own.number if own else ''}"
        if ids is not None and len(ids) > 1:
            label += " and its customers"
    return Scope(
        view=view_of(actor),
        account_ids=frozenset(ids) if ids is not None else None,
        own_account=actor.account_id if actor.role is Role.RESELLER else None,
        zone=_zone(zone_name),
        label=label,
    )


def _refusal(actor: Actor, own: Account | None, number: str) -> str:
    if actor.role is Role.CUSTOMER and own is not None:
        return (
            f"You can see the calls of your own account ({own.number}) only; "
            f"account {number} is not yours."
        )
    return f"Account {number} is not yours or one of your customers', so its calls are not shown."


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return ZoneInfo(DEFAULT_ZONE)


def period_of(request: CallFilter, zone: ZoneInfo, now: datetime) -> Period:
    """The period's local days as a UTC range; today when nothing is said."""
    today = now.astimezone(zone).date()
    if request.date_from or request.date_to:
        if request.period:
            raise Invalid("Give a period word (today, week, ...) or from:/to:, not both.")
        if not request.date_from:
            raise Invalid("Give the first day too: from:YYYY-MM-DD.", {"from": "missing"})
        first = _day(request.date_from, "from")
        last = _day(request.date_to, "to") if request.date_to else today
        if last < first:
            raise Invalid(f"to: ({last}) is before from: ({first}).", {"to": "before from"})
        return _span(first, last + timedelta(days=1), zone, f"{first} to {last}")
    word = request.period or "today"
    if word == "today":
        return _span(today, today + timedelta(days=1), zone, f"today ({today})")
    if word == "yesterday":
        day = today - timedelta(days=1)
        return _span(day, today, zone, f"yesterday ({day})")
    if word == "week":
        monday = today - timedelta(days=today.weekday())
        return _span(monday, monday + timedelta(days=7), zone, f"week of {monday}")
    if word == "month":
        first = today.replace(day=1)
        return _span(first, _next_month(first), zone, first.strftime("%B %Y"))
    if word == "year":
        first = today.replace(month=1, day=1)
        return _span(first, first.replace(year=first.year + 1), zone, str(first.year))
    raise Invalid(f"{word!r} is not a period; use one of {', '.join(PERIODS)}.")


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(
            f"{name}: {text!r} is not a date (YYYY-MM-DD).", {name: "not a date"}
        ) from None


def _next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def _span(first: date, after: date, zone: ZoneInfo, label: str) -> Period:
    start = datetime.combine(first, time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(after, time(), tzinfo=zone).astimezone(UTC)
    return Period(start, end, zone, label)


# --- formatting --------------------------------------------------------------------------------


def mmss(seconds: int) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes:02d}:{rest:02d}"


def money(value: Decimal) -> str:
    """Money as shown in a table (four places); CSV files keep all six."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def disposition(cause: str, q850: int | None) -> str:
    if not cause:
        return ""
    return f"{cause} [{q850}]" if q850 is not None else cause


def _csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode()


# --- summary figures ---------------------------------------------------------------------------


@dataclass
class Figures:
    """Summary figures that compose: counts and sums add up, the longest is a maximum."""

    attempted: int = 0
    completed: int = 0
    duration: int = 0
    billable: int = 0
    longest: int = 0
    debit: Decimal = ZERO
    cost: Decimal = ZERO

    def add(self, other: Figures) -> None:
        self.attempted += other.attempted
        self.completed += other.completed
        self.duration += other.duration
        self.billable += other.billable
        self.longest = max(self.longest, other.longest)
        self.debit += other.debit
        self.cost += other.cost

    @property
    def asr(self) -> Decimal:
        if not self.attempted:
            return Decimal("0.00")
        ratio = Decimal(self.completed * 100) / Decimal(self.attempted)
        return ratio.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    @property
    def acd(self) -> int:
        if not self.completed:
            return 0
        return int((Decimal(self.duration) / self.completed).quantize(Decimal(1), ROUND_HALF_UP))

    @property
    def profit(self) -> Decimal:
        return self.debit - self.cost


FIGURE_COLUMNS = ("Attempted Calls", "Completed Calls", "Duration", "ASR", "ACD", "MCD", "Billable")


def figure_columns(view: View) -> tuple[str, ...]:
    money_columns = ("Debit",) if view is View.CUSTOMER else ("Debit", "Cost", "Profit")
    return FIGURE_COLUMNS + money_columns


def figure_cells(figures: Figures, view: View, exact: bool) -> tuple[str, ...]:
    show = str if exact else money
    cells = (
        str(figures.attempted),
        str(figures.completed),
        mmss(figures.duration),
        str(figures.asr),
        mmss(figures.acd),
        mmss(figures.longest),
        mmss(figures.billable),
        show(figures.debit),
    )
    if view is View.CUSTOMER:
        return cells
    return (*cells, show(figures.cost), show(figures.profit))


@dataclass(frozen=True)
class _Source:
    """Per-row expressions of the rollup or of the call records, summed alike."""

    account: Any
    started: Any
    code: Any
    destination: Any
    trunk: Any
    direction: Any
    call_type: Any
    attempted: Any
    completed: Any
    duration: Any
    billable: Any
    longest: Any
    debit: Any
    cost: Any
    carrier_debit: Any
    carrier_cost: Any
    sip_user: Any = None
    records: bool = False
    days: bool = False  # `started` is a UTC day (the daily rollup), not a moment


def _hourly_source() -> _Source:
    r = CallRollup
    return _Source(
        r.account_id, r.hour, r.code, r.destination, r.trunk_id, r.direction, r.call_type,
        r.attempted, r.completed, r.duration, r.billable, r.longest,
        r.debit, r.cost, r.carrier_debit, r.carrier_cost,
    )  # fmt: skip


def _daily_source() -> _Source:
    """Per account and UTC day: `started` is a date; no code or trunk."""
    r = CallRollupDaily
    return _Source(
        r.account_id, r.day, None, None, None, r.direction, r.call_type,
        r.attempted, r.completed, r.duration, r.billable, r.longest,
        r.debit, r.cost, r.carrier_debit, r.carrier_cost, days=True,
    )  # fmt: skip


def _total_source() -> _Source:
    """Carrier-wide per UTC hour: no account, so only for the carrier's view of every account."""
    r = CallRollupTotal
    return _Source(
        None, r.hour, None, None, None, r.direction, r.call_type,
        r.attempted, r.completed, r.duration, r.billable, r.longest,
        r.debit, r.cost, r.carrier_debit, r.carrier_cost,
    )  # fmt: skip


def _record_source() -> _Source:
    c = CallRecord
    return _Source(
        c.account_id, c.started_at, c.code, c.destination, func.coalesce(c.trunk_id, 0),
        c.direction, c.call_type, literal(1), case((c.billsec > 0, 1), else_=0), c.billsec,
        case((c.call_type == CallType.FREE.value, 0), else_=c.billsec), c.billsec,
        c.debit, c.cost, c.carrier_debit, c.carrier_cost,
        c.sip_user, True,
    )  # fmt: skip


def _money_columns(source: _Source, scope: Scope) -> tuple[Any, Any]:
    if scope.view is View.CARRIER:
        return source.carrier_debit, source.carrier_cost
    if scope.view is View.RESELLER:
        own_cost = case((source.account == scope.own_account, source.debit), else_=source.cost)
        return source.debit, own_cost
    return source.debit, literal(0)


def _where(source: _Source, scope: Scope, since: Any, until: Any, request: CallFilter) -> list[Any]:
    """The conditions of a report's rows: `since` <= time < `until` (the source's time: a
    call's start, a rollup's hour or day), the accounts and the filters."""
    conditions: list[Any] = [source.started >= since, source.started < until]
    if scope.account_ids is not None:
        conditions.append(_account_condition(source.account, scope.account_ids))
    elif source.account is not None:
        conditions.append(source.account.is_not(None))
    if request.direction:
        conditions.append(source.direction == request.direction.lower())
    if request.call_type:
        conditions.append(source.call_type == request.call_type.upper())
    if request.disposition:
        conditions.append(_disposition_condition(request.disposition))
    if request.prefix:
        conditions.append(CallRecord.called_number.startswith(request.prefix, autoescape=True))
    return conditions


def _account_condition(column: Any, ids: frozenset[int]) -> ColumnElement[bool]:
    if len(ids) == 1:
        return column == next(iter(ids))  # type: ignore[no-any-return]
    return column.in_(sorted(ids))  # type: ignore[no-any-return]


def _disposition_condition(value: str) -> ColumnElement[bool]:
    if value.isdigit():
        return CallRecord.hangup_cause_q850 == int(value)
    return CallRecord.hangup_cause == value.upper()


FIGURE_NAMES = ("attempted", "completed", "duration", "billable", "longest", "debit", "cost")


def _aggregates(source: _Source, scope: Scope) -> list[Any]:
    debit, cost = _money_columns(source, scope)
    sums = [
        func.sum(source.attempted),
        func.sum(source.completed),
        func.sum(source.duration),
        func.sum(source.billable),
        func.max(source.longest),
        type_coerce(func.sum(debit), Fixed()),
        type_coerce(func.sum(cost), Fixed()),
    ]
    return [value.label(name) for value, name in zip(sums, FIGURE_NAMES, strict=True)]


def _aggregates_again(figures: Any) -> list[Any]:
    """The same figures summed once more over a subquery's groups (the longest: a maximum)."""
    return [
        type_coerce(func.sum(figures[name]), Fixed()) if name in ("debit", "cost")
        else func.max(figures[name]) if name == "longest"
        else func.sum(figures[name])
        for name in FIGURE_NAMES
    ]  # fmt: skip


def _figures(values: Sequence[Any]) -> Figures:
    return Figures(
        attempted=int(values[0] or 0),
        completed=int(values[1] or 0),
        duration=int(values[2] or 0),
        billable=int(values[3] or 0),
        longest=int(values[4] or 0),
        debit=values[5] if values[5] is not None else ZERO,
        cost=values[6] if values[6] is not None else ZERO,
    )


@dataclass(frozen=True)
class _Part:
    """One source read over [since, until) of its own time column."""

    source: _Source
    since: Any
    until: Any


def _utc_days(period: Period) -> tuple[datetime, datetime] | None:
    """The whole UTC days inside the period, as (first midnight, last midnight), if any."""
    start = period.start.astimezone(UTC)
    first = datetime.combine(start.date(), time(), UTC)
    if first < start:
        first += timedelta(days=1)
    end = period.end.astimezone(UTC)
    last = datetime.combine(end.date(), time(), UTC)
    return (first, last) if first < last else None


def _parts(
    scope: Scope, period: Period, request: CallFilter, group: str, coarse: bool = True
) -> list[_Part]:
    """Where a summary's figures come from (each call counted once, every rollup exact):

    - filters or groups the rollups lack (disposition, prefix, SIP user): the call records;
    - the carrier's view of every account by direction or by time: the carrier-wide hourly
      rollup (a few rows per hour, whatever the number of accounts);
    - by account or direction: the daily rollup for the period's whole UTC days, and the hourly
      rollup for the edge hours (a local day in another zone starts and ends inside UTC days);
    - by day or month: the daily rollup only where the zone's offset is 0 over the whole period
      (a UTC day then is a local day); elsewhere a UTC day straddles two local days, so hours;
    - by destination or trunk, and by hour: the hourly rollup.

    `coarse=False` reads the hourly rollup wherever the rollups serve (the reference path)."""
    period_part = _Part(_hourly_source(), period.start, period.end)
    if request.needs_records or group == "sipuser":
        return [_Part(_record_source(), period.start, period.end)]
    if not coarse or group in ("destination", "trunk"):
        return [period_part]
    carrier_wide = scope.account_ids is None and scope.view is View.CARRIER
    if carrier_wide and (group == "direction" or group in LOCAL_FORMATS):
        return [_Part(_total_source(), period.start, period.end)]
    days = _utc_days(period)
    if days is None:
        return [period_part]
    first, last = days
    daily = _Part(_daily_source(), first.date(), last.date())
    if group in LOCAL_FORMATS:
        in_utc = _offsets(period) == [(period.start, 0)]
        whole = (first, last) == (period.start, period.end)
        return [daily] if group in ("day", "month") and in_utc and whole else [period_part]
    parts = [daily]
    if period.start < first:
        parts.append(_Part(_hourly_source(), period.start, first))
    if last < period.end:
        parts.append(_Part(_hourly_source(), last, period.end))
    return parts


# Local time labels, as strftime (SQLite) and to_char (PostgreSQL) write them.
LOCAL_FORMATS = {
    "hour": ("%H:00", "HH24:00"),
    "day": ("%Y-%m-%d", "YYYY-MM-DD"),
    "month": ("%Y-%m", "YYYY-MM"),
    "dayhour": ("%Y-%m-%d %H:00", "YYYY-MM-DD HH24:00"),
}


def _offsets(period: Period) -> list[tuple[datetime, int]]:
    """(UTC moment, offset in seconds from then on) over the period: one per DST change."""
    found: list[tuple[datetime, int]] = []
    moment = period.start
    while moment < period.end:
        offset = period.zone.utcoffset(moment.astimezone(period.zone).replace(tzinfo=None))
        seconds = int(offset.total_seconds()) if offset is not None else 0
        if not found or found[-1][1] != seconds:
            found.append((moment, seconds))
        moment += timedelta(hours=1)
    return found or [(period.start, 0)]


def _local_label(moment: Any, kind: str, period: Period, dialect: str) -> Any:
    """A call's (or rollup hour's) local time label, computed in SQL so local days, hours and
    months are grouped by the database: PostgreSQL knows the zone, SQLite is given its offsets
    over the period."""
    sqlite_format, pg_format = LOCAL_FORMATS[kind]
    if dialect == "postgresql":
        local = func.timezone(literal(period.zone.key, literal_execute=True), moment)
        return func.to_char(local, literal(pg_format, literal_execute=True))
    offsets = _offsets(period)
    shift: Any = literal(f"{offsets[-1][1]:+d} seconds")
    if len(offsets) > 1:
        shift = case(
            *((moment < later, f"{seconds:+d} seconds")
              for (_, seconds), (later, _) in pairwise(offsets)),
            else_=f"{offsets[-1][1]:+d} seconds",
        )  # fmt: skip
    return func.strftime(sqlite_format, moment, shift)


def _group_keys(source: _Source, group: str) -> list[Any]:
    keys: dict[str, list[Any]] = {
        "account": [source.account],
        "destination": [source.code],
        "trunk": [source.trunk],
        "sipuser": [source.sip_user],
        "direction": [source.direction],
    }
    return keys[group]


async def grouped_figures(
    session: AsyncSession,
    scope: Scope,
    period: Period,
    request: CallFilter,
    group: str,
    *,
    coarse: bool = True,
) -> list[tuple[tuple[Any, ...], Figures]]:
    """Figures per group key, summed in the database (time groups per local hour, day or month
    of the period's time zone), from the sources `_parts` picks."""
    parts = _parts(scope, period, request, group, coarse)
    dialect = session.get_bind().dialect.name
    query: Select[Any]
    if group in LOCAL_FORMATS:
        (part,) = parts
        query = _by_local_time(part, scope, period, request, group, dialect)
        width = 1
    else:
        query, width = _by_key(parts, scope, request, group)
    rows = (await session.execute(query)).all()
    return [(tuple(row[:width]), _figures(row[width:])) for row in rows]


def _by_key(
    parts: Sequence[_Part], scope: Scope, request: CallFilter, group: str
) -> tuple[Select[Any], int]:
    """Sum per group key in each part; several parts (whole days and edge hours) are summed
    once more over their union, still in SQL."""
    selects = []
    for part in parts:
        source = part.source
        keys = _group_keys(source, group)
        labelled = [key.label(f"key{i}") for i, key in enumerate(keys)]
        extra = [func.max(source.destination).label("extra")] if group == "destination" else []
        where = _where(source, scope, part.since, part.until, request)
        selects.append(
            select(*labelled, *extra, *_aggregates(source, scope)).where(*where).group_by(*keys)
        )
    width = len(selects[0].selected_columns) - len(FIGURE_NAMES)
    if len(selects) == 1:
        return selects[0], width
    both = union_all(*selects).subquery()
    columns = [both.c[name] for name in both.c.keys()[:width]]
    keys = [column for column in columns if column.name != "extra"]
    again = [func.max(column) if column.name == "extra" else column for column in columns]
    return select(*again, *_aggregates_again(both.c)).group_by(*keys), width


def _by_local_time(
    part: _Part, scope: Scope, period: Period, request: CallFilter, kind: str, dialect: str
) -> Select[Any]:
    """Sum per rollup hour (or UTC day) first, then label those few thousand hours with their
    local time and sum again: the zone's arithmetic is done per hour, not per call."""
    source = part.source
    where = _where(source, scope, part.since, part.until, request)
    if source.records:
        label = _local_label(source.started, kind, period, dialect).label("bucket")
        return select(label, *_aggregates(source, scope)).where(*where).group_by(label)
    per_moment = (
        select(source.started.label("moment"), *_aggregates(source, scope))
        .where(*where)
        .group_by(source.started)
        .subquery()
    )
    if source.days:
        label = _day_label(per_moment.c.moment, kind, dialect).label("bucket")
    else:
        label = _local_label(per_moment.c.moment, kind, period, dialect).label("bucket")
    return select(label, *_aggregates_again(per_moment.c)).group_by(label)


def _day_label(day: Any, kind: str, dialect: str) -> Any:
    """A UTC day's label (used where the zone's offset is 0, so the day is the local day)."""
    sqlite_format, pg_format = LOCAL_FORMATS[kind]
    if dialect == "postgresql":
        return func.to_char(day, literal(pg_format, literal_execute=True))
    return func.strftime(sqlite_format, day)


# --- the summary ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryRequest:
    filter: CallFilter = field(default_factory=CallFilter)
    group: str = "account"
    export: bool = False


@dataclass(frozen=True)
class SummaryTable:
    """A summary's rows (labels, figures), its total, and what it covers."""

    label_columns: tuple[str, ...]
    rows: list[tuple[tuple[str, ...], Figures]]
    total: Figures
    scope: Scope
    period: Period
    group: str


async def summary_table(ctx: Context, request: SummaryRequest) -> SummaryTable:
    if request.group not in GROUPS:
        raise Invalid(f"group: must be one of {', '.join(GROUPS)}.", {"group": "unknown"})
    async with ctx.sessions() as session:
        scope = await resolve_scope(session, ctx, request.filter.account)
        if request.group == "trunk" and scope.view is not View.CARRIER:
            raise NotAllowed("Trunks are the carrier's: only carrier staff can group by trunk.")
        period = period_of(request.filter, scope.zone, ctx.clock())
        found = await grouped_figures(session, scope, period, request.filter, request.group)
        columns, rows = await _labelled(session, request.group, found)
    total = Figures()
    for _, figures in rows:
        total.add(figures)
    return SummaryTable(columns, rows, total, scope, period, request.group)


async def _labelled(
    session: AsyncSession, group: str, found: list[tuple[tuple[Any, ...], Figures]]
) -> tuple[tuple[str, ...], list[tuple[tuple[str, ...], Figures]]]:
    if group in TIME_GROUPS:
        return _time_buckets(group, found)
    if group == "account":
        names = await _account_names(session, [key[0] for key, _ in found])
        labelled = [((names.get(key[0], str(key[0])),), f) for key, f in found]
        return ("Account",), _by_size(labelled)
    if group == "trunk":
        trunks = await _trunk_names(session, [key[0] for key, _ in found])
        labelled = [((trunks.get(key[0], "(none)"),), f) for key, f in found]
        return ("Trunk",), _by_size(labelled)
    if group == "destination":
        codes = [((str(key[0] or "(none)"), str(key[1] or "")), f) for key, f in found]
        return ("Code", "Destination"), _by_size(codes)
    column = {"sipuser": "SIP User", "direction": "Direction"}[group]
    return (column,), _by_size([((str(key[0] or "(none)"),), f) for key, f in found])


Labelled = list[tuple[tuple[str, ...], Figures]]


def _by_size(rows: Sequence[tuple[tuple[str, ...], Figures]]) -> Labelled:
    return sorted(rows, key=lambda row: (-row[1].attempted, row[0]))


def _time_buckets(
    group: str, found: list[tuple[tuple[Any, ...], Figures]]
) -> tuple[tuple[str, ...], list[tuple[tuple[str, ...], Figures]]]:
    column = {"hour": "Hour", "day": "Day", "month": "Month"}[group]
    return (column,), sorted(((str(key[0]),), figures) for key, figures in found)


async def _account_names(session: AsyncSession, ids: Sequence[Any]) -> dict[Any, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Account.id, Account.number, Account.company).where(Account.id.in_(set(ids)))
    )
    return {row.id: f"{row.number} {row.company}" for row in rows}


async def _trunk_names(session: AsyncSession, ids: Sequence[Any]) -> dict[Any, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = await session.execute(select(Trunk.id, Trunk.name).where(Trunk.id.in_(wanted)))
    return {row.id: row.name for row in rows}


def summary_csv(table: SummaryTable) -> bytes:
    """The whole summary with exact money and a Total row, as CSV."""
    view = table.scope.view
    rows = [(*labels, *figure_cells(f, view, exact=True)) for labels, f in table.rows]
    blanks = ("",) * (len(table.label_columns) - 1)
    total = ("Total", *blanks, *figure_cells(table.total, view, exact=True))
    return _csv_bytes((*table.label_columns, *figure_columns(view)), [*rows, total])


async def summary(ctx: Context, request: SummaryRequest) -> Reply:
    table = await summary_table(ctx, request)
    view = table.scope.view
    shown = table.rows[:SUMMARY_ROWS_SHOWN]
    rows = [(*labels, *figure_cells(f, view, exact=False)) for labels, f in shown]
    blanks = ("",) * (len(table.label_columns) - 1)
    rows.append(("Total", *blanks, *figure_cells(table.total, view, exact=False)))
    notes = [f"Times in {table.period.zone.key}."]
    if len(table.rows) > len(shown):
        notes.append(f"The {len(table.rows) - len(shown)} smallest rows are left out; add export.")
    files: tuple[ReplyFile, ...] = ()
    if request.export:
        name = f"summary-{table.group}-{table.period.start.astimezone(table.period.zone):%Y%m%d}"
        files = (ReplyFile(f"{name}.csv", "text/csv", summary_csv(table), "Call summary"),)
    return Reply(
        title=f"Call summary of {table.scope.label}, {table.period.label}, by {table.group}",
        text=" ".join(notes),
        table=Table((*table.label_columns, *figure_columns(view)), tuple(rows)),
        files=files,
    )


# --- the CDR list --------------------------------------------------------------------------------

CDR_COLUMNS = (
    "Date", "Caller ID", "Called Number", "SIP User", "Code", "Destination", "Duration",
    "Debit", "Cost", "Disposition", "Account", "Country", "Trunk", "Rate Group", "Call Type",
    "Direction", "Recording",
)  # fmt: skip
HIDDEN = {View.CUSTOMER: {"Cost", "Trunk"}, View.RESELLER: {"Trunk"}, View.CARRIER: set()}


def cdr_columns(view: View) -> tuple[str, ...]:
    return tuple(c for c in CDR_COLUMNS if c not in HIDDEN[view])


@dataclass(frozen=True)
class CdrRequest:
    filter: CallFilter = field(default_factory=CallFilter)
    page: str | None = None
    export: bool = False


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last row's (started_at, id), and the page's number."""

    page: int
    started: datetime
    id: int

    def token(self) -> str:
        micros = (self.started - EPOCH) // timedelta(microseconds=1)
        return f"{self.page}.{micros}.{self.id}"

    @classmethod
    def parse(cls, token: str) -> Cursor:
        parts = token.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise Invalid(f"page:{token} is not a page of this list; ask for the list again.")
        started = EPOCH + timedelta(microseconds=int(parts[1]))
        return cls(int(parts[0]), started, int(parts[2]))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CdrPage(Reply):
    """One page of the CDR list; `next_page` is the cursor token of the next, if any."""

    next_page: str | None = None


def _cdr_query(scope: Scope, period: Period, request: CallFilter) -> Select[Any]:
    source = _record_source()
    debit, cost = _money_columns(source, scope)
    c = CallRecord
    columns = (
        c.id, c.started_at, c.caller_id_name, c.caller_id_number, c.called_number,
        c.sip_user, c.code, c.destination, c.billsec, debit.label("shown_debit"),
        cost.label("shown_cost"), c.hangup_cause, c.hangup_cause_q850, Account.number,
        c.country, Trunk.name.label("trunk"), RateGroup.name.label("rate_group"),
        c.call_type, c.direction, c.recording,
    )  # fmt: skip
    return (
        select(*columns)
        .outerjoin(Account, Account.id == c.account_id)
        .outerjoin(Trunk, Trunk.id == c.trunk_id)
        .outerjoin(RateGroup, RateGroup.id == c.rate_group_id)
        .where(*_where(source, scope, period.start, period.end, request))
        .order_by(c.started_at.desc(), c.id.desc())
    )


def _cdr_cells(row: Any, view: View, zone: ZoneInfo, exact: bool) -> tuple[str, ...]:
    show = str if exact else money
    caller = row.caller_id_number
    if row.caller_id_name and row.caller_id_name != row.caller_id_number:
        caller = f'"{row.caller_id_name}" <{row.caller_id_number}>'
    cells = {
        "Date": row.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        "Caller ID": caller,
        "Called Number": row.called_number,
        "SIP User": row.sip_user,
        "Code": row.code,
        "Destination": row.destination,
        "Duration": mmss(row.billsec),
        "Debit": show(row.shown_debit),
        "Cost": show(row.shown_cost),
        "Disposition": disposition(row.hangup_cause, row.hangup_cause_q850),
        "Account": row.number or "",
        "Country": row.country,
        "Trunk": row.trunk or "",
        "Rate Group": row.rate_group or "",
        "Call Type": row.call_type,
        "Direction": row.direction,
        "Recording": "yes" if row.recording else "",
    }
    return tuple(cells[column] for column in cdr_columns(view))


async def cdr(ctx: Context, request: CdrRequest) -> Reply:
    """A page of calls, newest first (keyset on (started_at, id)), or the whole list as CSV."""
    async with ctx.sessions() as session:
        scope = await resolve_scope(session, ctx, request.filter.account)
        period = period_of(request.filter, scope.zone, ctx.clock())
        if request.export:
            data, count = await _export(session, scope, period, request.filter)
            name = f"cdr-{period.start.astimezone(period.zone):%Y%m%d}.csv"
            return Reply(
                title=f"{count} call(s) of {scope.label}, {period.label}: CSV attached.",
                files=(ReplyFile(name, "text/csv", data, "Call detail records"),),
            )
        return await _page(session, scope, period, request)


async def _page(
    session: AsyncSession, scope: Scope, period: Period, request: CdrRequest
) -> CdrPage:
    cursor = Cursor.parse(request.page) if request.page else None
    query = _cdr_query(scope, period, request.filter).limit(PAGE_SIZE + 1)
    if cursor is not None:
        query = query.where(
            or_(
                CallRecord.started_at < cursor.started,
                and_(CallRecord.started_at == cursor.started, CallRecord.id < cursor.id),
            )
        )
    rows = (await session.execute(query)).all()
    shown, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    number = cursor.page + 1 if cursor else 1
    next_page = Cursor(number, shown[-1].started_at, shown[-1].id).token() if more else None
    cells = tuple(_cdr_cells(row, scope.view, period.zone, exact=False) for row in shown)
    title = f"Calls of {scope.label}, {period.label}, page {number}"
    if not shown:
        title = f"No calls of {scope.label}, {period.label}"
        title += f", page {number}" if cursor else ""
    return CdrPage(
        title=title,
        text=f"Newest first, times in {period.zone.key}.",
        table=Table(cdr_columns(scope.view), cells) if shown else None,
        next_page=next_page,
    )


async def _export(
    session: AsyncSession,
    scope: Scope,
    period: Period,
    request: CallFilter,
    columns_of: View | None = None,
) -> tuple[bytes, int]:
    """Every filtered call as CSV with a grand total row, read in batches from the database.
    The money is the scope's view's; the columns are `columns_of`'s (default: the same view)."""
    view, zone = columns_of or scope.view, period.zone
    columns = cdr_columns(view)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    count, seconds, debit, cost = 0, 0, ZERO, ZERO
    result = await session.stream(_cdr_query(scope, period, request).limit(EXPORT_LIMIT + 1))
    async for batch in result.partitions(EXPORT_BATCH):
        for row in batch:
            count += 1
            if count > EXPORT_LIMIT:
                raise Invalid(
                    f"More than {EXPORT_LIMIT} calls match; narrow the period or the filters."
                )
            seconds += row.billsec
            debit += row.shown_debit
            cost += row.shown_cost
            writer.writerow(_cdr_cells(row, view, zone, exact=True))
    totals = {"Date": "Total", "Caller ID": f"{count} calls", "Duration": mmss(seconds)}
    totals |= {"Debit": str(debit), "Cost": str(cost)}
    writer.writerow([totals.get(column, "") for column in columns])
    return out.getvalue().encode(), count


async def cdr_csv(
    session: AsyncSession,
    account_ids: Sequence[int],
    start: datetime,
    end: datetime,
    timezone: str = DEFAULT_ZONE,
    view: View = View.CUSTOMER,
) -> bytes:
    """The CDR CSV of the accounts' calls in the UTC period [start, end), with a grand total
    row: an invoice's month of calls. `view` says whose money Debit is, as in the reports:
    CUSTOMER (and RESELLER) the price the account's reseller set (`debit`), CARRIER what the
    carrier charges (`carrier_debit`: a carrier-issued invoice of a reseller and its customers
    or of the carrier's own customer). The columns are always the invoiced party's: Debit, no
    Cost and no Trunk (what a call cost the seller is not on the buyer's invoice)."""
    zone = _zone(timezone)
    scope = Scope(view, frozenset(account_ids), None, zone, "")
    period = Period(start.astimezone(UTC), end.astimezone(UTC), zone, "")
    data, _ = await _export(session, scope, period, CallFilter(), View.CUSTOMER)
    return data


# --- the chart's figures -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChartData:
    title: str
    bucket: str  # hour, day or month
    labels: tuple[str, ...]
    attempted: tuple[int, ...]
    completed: tuple[int, ...]
    asr: tuple[float, ...]


def chart_bucket(period: Period) -> str:
    if period.days <= 2:
        return "hour"
    return "day" if period.days <= 92 else "month"


async def chart_data(ctx: Context, request: CallFilter) -> ChartData:
    async with ctx.sessions() as session:
        scope = await resolve_scope(session, ctx, request.account)
        period = period_of(request, scope.zone, ctx.clock())
        bucket = chart_bucket(period)
        kind = "dayhour" if bucket == "hour" else bucket
        found = await grouped_figures(session, scope, period, request, kind)
    sums: dict[str, Figures] = {label: Figures() for label in _all_buckets(kind, period)}
    for key, figures in found:
        sums.setdefault(str(key[0]), Figures()).add(figures)
    ordered = sorted(sums)
    return ChartData(
        title=f"Calls and ASR of {scope.label}, {period.label} ({period.zone.key})",
        bucket=bucket,
        labels=tuple(ordered),
        attempted=tuple(sums[label].attempted for label in ordered),
        completed=tuple(sums[label].completed for label in ordered),
        asr=tuple(float(sums[label].asr) for label in ordered),
    )


def _all_buckets(kind: str, period: Period) -> list[str]:
    """Every bucket of the period, so quiet hours or days show as empty, not missing."""
    step = timedelta(hours=1) if kind == "dayhour" else timedelta(days=1)
    labels: set[str] = set()
    moment = period.start
    while moment < period.end:
        labels.add(moment.astimezone(period.zone).strftime(LOCAL_FORMATS[kind][0]))
        moment += step
    return sorted(labels)


# --- recordings --------------------------------------------------------------------------------


async def recording(ctx: Context, call_uuid: str) -> Reply:
    """A call's recording as a WAV file, for those who may see the call."""
    async with ctx.sessions() as session:
        found = (
            await session.execute(
                select(CallRecord.account_id, CallRecord.recording).where(
                    CallRecord.uuid == call_uuid
                )
            )
        ).first()
        allowed = found is not None and found.account_id is not None
        if allowed and found is not None:
            allowed = await may_act_on(session, ctx.actor, found.account_id)
    if found is None or not allowed:
        raise NotFound(f"There is no call {call_uuid} among the calls you may see.")
    path = _recording_path(ctx, call_uuid, found.recording)
    data = await asyncio.to_thread(_read_recording, path)
    if data is None:
        raise NotFound(f"Call {call_uuid} has no recording.")
    return Reply(
        title=f"Recording of call {call_uuid}.",
        files=(ReplyFile(f"{call_uuid}.wav", "audio/wav", data, f"Call {call_uuid}"),),
    )


def _recording_path(ctx: Context, call_uuid: str, stored: str) -> Path:
    root = ctx.settings.recordings_dir.resolve()
    path = Path(stored) if stored else root / f"{call_uuid}.wav"
    if not path.is_absolute():
        path = root / path
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise NotFound(f"The recording of call {call_uuid} is not in the recordings folder.")
    return resolved


def _read_recording(path: Path) -> bytes | None:
    try:
        if path.stat().st_size > RECORDING_LIMIT:
            raise Invalid(f"The recording is larger than {RECORDING_LIMIT // 2**20} MB.")
        return path.read_bytes()
    except FileNotFoundError:
        return None


__all__ = [
    "GROUPS",
    "PERIODS",
    "CallFilter",
    "CdrPage",
    "CdrRequest",
    "ChartData",
    "SummaryRequest",
    "View",
    "cdr",
    "cdr_csv",
    "chart_data",
    "recording",
    "summary",
]
