"""Rate groups, trunks and their rates: CSV import, add/list/show/edit, and rate look-ups.

Who may do what (DESIGN.md "Who is who"): staff manage the carrier's rate groups and every
trunk; a reseller manages its own rate groups (the prices its customers buy at) and never
trunks. Anyone may look at the group its own account buys at.

CSV import (`import_rates`): the platform's columns, matched by name in any order, ignoring
case and spaces: Code, Destination, Connection Cost, Grace Time, Cost / Min, Initial
Increment, Increment, and for a trunk's termination rates also Strip and Prepend. Code and
Cost / Min are required. The whole file is checked first; any bad row and nothing is written,
and every problem is listed by line and column. Existing codes are updated, new ones added
(one bulk upsert per few thousand rows), codes missing from the file are left as they are.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Dialect, Select, bindparam, column, delete, func, select
from sqlalchemy import Table as SqlTable
from sqlalchemy import table as sql_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers import audit
from c2bot.handlers.accounts import account_by_number
from c2bot.handlers.amounts import parse_amount, parse_count
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import check_name
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.permissions import check_account
from c2bot.handlers.replies import Reply, Table
from c2bot.storage.models import (
    Account,
    AccountStatus,
    OriginationRate,
    RateGroup,
    RateGroupTrunk,
    Role,
    TerminationRate,
    Trunk,
    exact,
)
from c2bot.switch import lookups, rating

# field -> the platform's header
COLUMNS = {
    "code": "Code",
    "destination": "Destination",
    "connection_cost": "Connection Cost",
    "grace_time": "Grace Time",
    "cost_per_minute": "Cost / Min",
    "initial_increment": "Initial Increment",
    "increment": "Increment",
}
TERMINATION_COLUMNS = {**COLUMNS, "strip": "Strip", "prepend": "Prepend"}
REQUIRED = ("code", "cost_per_minute")
# Other spellings seen in exports, after lower-casing and dropping spaces and underscores.
ALIASES = {"costpermin": "cost_per_minute", "costperminute": "cost_per_minute"}
CHUNK = 5000
SHOWN_ERRORS = 50
SHOWN_RATES = 10
LISTED_RATES = 50
MONEY_MAX = Decimal(1_000_000)
SECONDS_MAX = 86_400
ZERO = exact(0)
# What a column absent from the file stands for (a new rate; updates leave such fields alone).
DEFAULTS: dict[str, Any] = {
    "destination": "",
    "connection_cost": ZERO,
    "grace_time": 0,
    "initial_increment": None,
    "increment": None,
    "strip": "",
    "prepend": "",
}
_CODE = re.compile(r"^[0-9]{1,32}$")
_DIALLED = re.compile(r"^[0-9+*#]{0,32}$")
_GATEWAY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


# --- reading a rate file ----------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """One problem in a rate file: its line (1 is the header), the column as written, why."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ParsedRates:
    """The rows of a rate file as column values, or the problems that stop it."""

    rows: list[dict[str, Any]]
    errors: list[RowError]
    ignored: tuple[str, ...] = ()
    # The fields the file has columns for (an update sets only these).
    columns: frozenset[str] = frozenset()


def _key(header: str) -> str:
    return re.sub(r"[\s_]+", "", header.strip().lower())


def _columns_of(headers: Sequence[str], termination: bool) -> tuple[dict[int, str], list[RowError]]:
    """Which field each column holds, and the header's problems."""
    wanted = TERMINATION_COLUMNS if termination else COLUMNS
    known = {_key(header): name for name, header in wanted.items()} | ALIASES
    positions: dict[int, str] = {}
    errors: list[RowError] = []
    for index, header in enumerate(headers):
        name = known.get(_key(header))
        if name is None:
            continue
        if name in positions.values():
            errors.append(RowError(1, header, "the same column twice"))
        positions[index] = name
    for name in REQUIRED:
        if name not in positions.values():
            errors.append(RowError(1, wanted[name], "missing required column"))
    return positions, errors


def parse_rates(text: str, *, termination: bool) -> ParsedRates:
    """Every row of a rate file checked (nothing written): values, or every problem."""
    reader = csv.reader(io.StringIO(text))
    headers = next(reader, None)
    if not headers or not any(h.strip() for h in headers):
        return ParsedRates([], [RowError(1, "", "the file is empty: no header line")])
    positions, errors = _columns_of(headers, termination)
    ignored = tuple(h for i, h in enumerate(headers) if i not in positions and h.strip())
    if errors:
        return ParsedRates([], errors, ignored)
    plan = [(index, name, PARSERS[name], headers[index]) for index, name in positions.items()]
    code_header = next(header for _, name, _, header in plan if name == "code")
    rows: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    line = reader.line_num
    for values in reader:
        start, line = line + 1, reader.line_num
        row = _parse_row(start, len(headers), plan, values, errors)
        if row is None:
            continue
        seen = first_line.setdefault(row["code"], start)
        if seen != start:
            errors.append(RowError(start, code_header, f"duplicate code (line {seen})"))
            continue
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(2, "", "no rates: the file has a header only"))
    return ParsedRates(rows, errors, ignored, frozenset(positions.values()))


Plan = list[tuple[int, str, Callable[[str], Any], str]]


def _parse_row(
    line: int, width: int, plan: Plan, values: Sequence[str], errors: list[RowError]
) -> dict[str, Any] | None:
    """One row's values by field (absent columns at their defaults), or None: blank or bad."""
    if len(values) > width and any(v.strip() for v in values[width:]):
        errors.append(RowError(line, "", f"{len(values)} values for {width} columns"))
        return None
    if not any(values):
        return None
    row = dict(DEFAULTS)
    bad = False
    for index, name, parse, header in plan:
        try:
            row[name] = parse(values[index].strip() if index < len(values) else "")
        except ValueError as problem:
            errors.append(RowError(line, header, str(problem)))
            bad = True
    return None if bad else row


def _code(text: str) -> str:
    if not text:
        raise ValueError("missing value (a required column)")
    code = text.removeprefix("+")
    if not _CODE.match(code):
        raise ValueError(f"bad code {text!r}: 1 to 32 digits")
    return code


def _destination(text: str) -> str:
    if len(text) > 100:
        raise ValueError("longer than 100 characters")
    return text


def _money(text: str, *, required: bool = False) -> Decimal:
    if not text:
        if required:
            raise ValueError("missing value (a required column)")
        return ZERO
    return parse_amount(text, maximum=MONEY_MAX)


def _seconds(text: str, *, least: int = 0) -> int:
    if text.startswith("-") and text[1:].isdigit():
        raise ValueError(f"negative ({text})")
    if not text.isdigit():
        raise ValueError(f"bad number {text!r}: whole seconds")
    value = int(text)
    if value < least or value > SECONDS_MAX:
        raise ValueError(f"must be {least} to {SECONDS_MAX} seconds (got {text})")
    return value


def _optional_seconds(least: int) -> Callable[[str], int | None]:
    return lambda text: _seconds(text, least=least) if text else None


def _dialled(text: str) -> str:
    if not _DIALLED.match(text):
        raise ValueError(f"bad digits {text!r}: up to 32 of 0-9 + * #")
    return text


PARSERS: dict[str, Callable[[str], Any]] = {
    "code": _code,
    "destination": _destination,
    "connection_cost": _money,
    "grace_time": lambda text: _seconds(text) if text else 0,
    "cost_per_minute": lambda text: _money(text, required=True),
    "initial_increment": _optional_seconds(0),
    "increment": _optional_seconds(1),
    "strip": _dialled,
    "prepend": _dialled,
}


def decode(data: bytes) -> str:
    """A CSV file's text (UTF-8, with or without a byte-order mark)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Invalid(f"The file is not UTF-8 text (byte {error.start}).") from None


# --- importing ------------------------------------------------------------------------------------


Progress = Callable[[int], None]


@dataclass(frozen=True)
class RateImport:
    """A rate file for a rate group (origination) or a trunk (termination)."""

    data: bytes
    filename: str = "rates.csv"
    group: str | None = None
    trunk: str | None = None
    # Called with the number of rows just written, chunk by chunk (the CLI's progress bar).
    progress: Progress | None = field(default=None, compare=False)


async def import_rates(ctx: Context, request: RateImport) -> Reply:
    """Check the whole file, then upsert its rates in bulk; refuse with every bad row."""
    if bool(request.group) == bool(request.trunk):
        raise Invalid("Name either a rate group or a trunk to import the rates into.")
    termination = request.trunk is not None
    parsed = parse_rates(decode(request.data), termination=termination)
    if parsed.errors:
        raise Invalid(_error_report(request.filename, parsed.errors))
    async with ctx.sessions.begin() as session:
        if request.trunk:
            trunk = await _trunk_to_manage(session, ctx, request.trunk)
            target: Any = TerminationRate
            owner_id, what, audit_account = trunk.id, f"trunk {trunk.name}", None
        else:
            group = await _group_to_manage(session, ctx, request.group or "")
            target = OriginationRate
            owner_id, what, audit_account = group.id, f"rate group {group.name}", group.account_id
        added, updated = await _upsert(session, target, owner_id, parsed, request.progress)
        audit.record(
            session,
            ctx,
            "import",
            "rates",
            what,
            audit_account,
            file=request.filename,
            added=added,
            updated=updated,
        )
    fields: tuple[tuple[str, str], ...] = ()
    if parsed.ignored:
        fields = (("Ignored columns", ", ".join(parsed.ignored)),)
    return Reply(
        title=f"Imported {len(parsed.rows)} rate(s) into {what}: {added} added, {updated} updated.",
        fields=fields,
    )


def _error_report(filename: str, errors: list[RowError]) -> str:
    lines = [f"{len(errors)} problem(s) in {filename}; nothing was imported:"]
    lines += [str(error) for error in errors[:SHOWN_ERRORS]]
    if len(errors) > SHOWN_ERRORS:
        lines.append(f"... and {len(errors) - SHOWN_ERRORS} more.")
    return "\n".join(lines)


async def _upsert(
    session: AsyncSession,
    target: Any,
    owner_id: int,
    parsed: ParsedRates,
    progress: Progress | None,
) -> tuple[int, int]:
    """Insert new codes and update existing ones (the file's columns only), a chunk per
    statement; (added, updated).

    The rows go straight to the driver on the session's own connection (same transaction):
    SQLite's executemany, PostgreSQL's COPY. Through the ORM's bulk insert 100 000 rows took
    about three times as long; money goes in as the `Fixed` columns store it (millionths)."""
    rows = parsed.rows
    owner = target.trunk_id if target is TerminationRate else target.rate_group_id
    existing = set(await session.scalars(select(target.code).where(owner == owner_id)))
    fields = list(TERMINATION_COLUMNS if target is TerminationRate else COLUMNS)
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    present = parsed.columns - {"code"}
    order = (owner.key, *fields)
    if connection.dialect.name == "postgresql":
        values = (_driver_values(row, order, (owner.key, owner_id)) for row in rows)
        await _copy_upsert(
            driver, connection.dialect, target.__table__, order, present, values, progress
        )
    else:
        sql, positions = _upsert_sql(connection.dialect, target.__table__, order, present)
        values = (_driver_values(row, positions, (owner.key, owner_id)) for row in rows)
        for chunk in _chunks(list(values), CHUNK):
            await driver.executemany(sql, chunk)
            if progress is not None:
                progress(len(chunk))
    updated = sum(1 for row in rows if row["code"] in existing)
    return len(rows) - updated, updated


def _upsert_sql(
    dialect: Dialect,
    table: SqlTable,
    order: tuple[str, ...],
    present: frozenset[str],
    source: str | None = None,
) -> tuple[str, tuple[str, ...]]:
    """INSERT ... ON CONFLICT (owner, code) DO UPDATE of the file's columns, with positional
    parameters (and their order), or (`source`) from a table of that name with columns
    `order`."""
    make = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    if source is None:
        statement = make(table).values({name: bindparam(name) for name in order})
    else:
        copied = sql_table(source, *(column(name) for name in order))
        statement = make(table).from_select(list(order), select(copied))
    statement = statement.on_conflict_do_update(
        index_elements=[order[0], "code"],
        set_={name: statement.excluded[name] for name in order if name in present},
    )
    compiled = statement.compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup or ())


async def _copy_upsert(
    driver: Any,
    dialect: Dialect,
    table: SqlTable,
    order: tuple[str, ...],
    present: frozenset[str],
    values: Iterable[tuple[Any, ...]],
    progress: Progress | None,
) -> None:
    """PostgreSQL: COPY the rows into a temporary table, then one INSERT ... SELECT ... ON
    CONFLICT (executemany of 100 000 upserts took several times longer)."""
    staging = f"c2_import_{table.name}"
    await driver.execute(
        f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS "
        f"SELECT {', '.join(order)} FROM {table.name} WITH NO DATA"
    )
    for chunk in _chunks(list(values), CHUNK):
        await driver.copy_records_to_table(staging, records=chunk, columns=list(order))
        if progress is not None:
            progress(len(chunk))
    await driver.execute(_upsert_sql(dialect, table, order, present, staging)[0])


T = TypeVar("T")
_MONEY_FIELDS = frozenset({"connection_cost", "cost_per_minute"})


def _driver_values(
    row: dict[str, Any], order: tuple[str, ...], owner: tuple[str, int]
) -> tuple[Any, ...]:
    """A row as the driver takes it, with its owner (group or trunk) column: money as whole
    millionths (the `Fixed` column's form)."""
    values = []
    for name in order:
        value = owner[1] if name == owner[0] else row[name]
        if name in _MONEY_FIELDS:
            value = int(exact(value).scaleb(6))
        values.append(value)
    return tuple(values)


def _chunks(rows: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# --- who may touch a group or trunk -------------------------------------------------------------


async def _group(session: AsyncSession, name: str) -> RateGroup:
    group = await session.scalar(select(RateGroup).where(RateGroup.name == name))
    if group is None:
        raise NotFound(f"There is no rate group {name!r}. Add it with `/c2 rategroup add {name}`.")
    return group


async def _group_to_manage(session: AsyncSession, ctx: Context, name: str) -> RateGroup:
    """A group the actor may change: staff any, a reseller its own."""
    _check_may_manage_groups(ctx)
    group = await _group(session, name)
    if not ctx.actor.is_staff and group.account_id != ctx.actor.account_id:
        raise NotAllowed(
            f"Rate group {name} is not one of yours: a reseller manages only its own rate groups."
        )
    return group


async def _group_to_see(session: AsyncSession, ctx: Context, name: str) -> RateGroup:
    """A group the actor may look at: its own ones, or the one its account buys at."""
    group = await _group(session, name)
    mine = ctx.actor.account_id
    if ctx.actor.is_staff or (mine is not None and group.account_id == mine):
        return group
    if (
        mine is not None
        and await session.scalar(select(Account.rate_group_id).where(Account.id == mine))
        == group.id
    ):
        return group
    raise NotFound(f"There is no rate group {name!r} you may see.")


def _check_may_manage_groups(ctx: Context) -> None:
    if not ctx.actor.is_staff and not (ctx.actor.role is Role.RESELLER and ctx.actor.account_id):
        raise NotAllowed("Only support staff and resellers manage rate groups.")


def _check_trunks(ctx: Context) -> None:
    if not ctx.actor.is_staff:
        raise NotAllowed("Trunks are the carrier's: only support staff manage or see them.")


async def _trunk_to_manage(session: AsyncSession, ctx: Context, name: str) -> Trunk:
    _check_trunks(ctx)
    trunk = await session.scalar(select(Trunk).where(Trunk.name == name))
    if trunk is None:
        raise NotFound(
            f"There is no trunk {name!r}. Add it with `/c2 trunk add {name} gateway:GW`."
        )
    return trunk


# --- rate groups --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupChanges:
    """What `rategroup add|edit` sets; None leaves a setting as it is."""

    markup: str | None = None
    initial_increment: str | None = None
    increment: str | None = None
    description: str | None = None
    trunks: str | None = None

    def named(self) -> bool:
        return any(value is not None for value in vars(self).values())


async def add_group(
    ctx: Context, name: str, changes: GroupChanges, account: str | None = None
) -> Reply:
    """A carrier group (staff), or a reseller's own group (a reseller; staff with account:)."""
    _check_may_manage_groups(ctx)
    check_name(name, "rate group")
    async with ctx.sessions.begin() as session:
        owner = await _owner_for(session, ctx, account)
        if await session.scalar(select(RateGroup.id).where(RateGroup.name == name)):
            raise Invalid(f"There is already a rate group {name}.", {"name": "already taken"})
        group = RateGroup(name=name, account_id=owner.id if owner else None)
        session.add(group)
        await _apply(session, ctx, group, changes)
        await session.flush()
        audit.record(session, ctx, "add", "rate_group", name, group.account_id, **_audit(changes))
    whose = f" for reseller {owner.number}" if owner else " (the carrier's)"
    return Reply(title=f"Rate group {name} added{whose}.")


async def edit_group(ctx: Context, name: str, changes: GroupChanges) -> Reply:
    if not changes.named():
        raise Invalid(f"Say what to change, e.g. `/c2 rategroup edit {name} markup:10`.")
    async with ctx.sessions.begin() as session:
        group = await _group_to_manage(session, ctx, name)
        await _apply(session, ctx, group, changes)
        audit.record(session, ctx, "edit", "rate_group", name, group.account_id, **_audit(changes))
    return Reply(title=f"Rate group {name} changed.")


def _audit(changes: GroupChanges | TrunkChanges) -> dict[str, str]:
    return {key: value for key, value in vars(changes).items() if value is not None}


async def _owner_for(session: AsyncSession, ctx: Context, account: str | None) -> Account | None:
    if not ctx.actor.is_staff:
        own = await session.get(Account, ctx.actor.account_id)
        if own is None or (account and account != own.number):
            raise NotAllowed("A reseller adds rate groups for itself only.")
        return own
    return await account_by_number(session, account) if account else None


async def _apply(
    session: AsyncSession, ctx: Context, group: RateGroup, changes: GroupChanges
) -> None:
    problems: dict[str, str] = {}
    if changes.markup is not None:
        group.markup = _field(problems, "markup", changes.markup, _percent)
    if changes.initial_increment is not None:
        value = _field(problems, "initial-increment", changes.initial_increment, _seconds)
        group.initial_increment = value
    if changes.increment is not None:
        group.increment = _field(
            problems, "increment", changes.increment, lambda t: _seconds(t, least=1)
        )
    if changes.description is not None:
        group.description = _field(problems, "description", changes.description, _text200)
    if problems:
        raise Invalid(" ".join(f"{k}: {v}." for k, v in problems.items()), problems)
    if changes.trunks is not None:
        await _set_trunks(session, ctx, group, changes.trunks)


def _field(problems: dict[str, str], name: str, text: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(text.strip())
    except ValueError as problem:
        problems[name] = str(problem)
        return None


def _percent(text: str) -> Decimal:
    value = _money(text.removesuffix("%"), required=True)
    if value > 1000:
        raise ValueError("at most 1000 percent")
    return value


def _text200(text: str) -> str:
    if len(text) > 200:
        raise ValueError("at most 200 characters")
    return text


async def _set_trunks(session: AsyncSession, ctx: Context, group: RateGroup, text: str) -> None:
    if not ctx.actor.is_staff:
        raise NotAllowed("Trunks are the carrier's: only support staff attach them to groups.")
    if group.account_id is not None:
        raise Invalid(
            f"Rate group {group.name} is a reseller's: its calls leave by the trunks of the "
            "reseller's own group, so it has none of its own.",
            {"trunks": "only carrier groups have trunks"},
        )
    names = [n.strip() for n in text.split(",") if n.strip() and n.strip().lower() != "none"]
    found = {
        t.name: t.id for t in await session.scalars(select(Trunk).where(Trunk.name.in_(names)))
    }
    missing = [n for n in names if n not in found]
    if missing:
        raise Invalid(f"There is no trunk {', '.join(missing)}.", {"trunks": "unknown trunk"})
    await session.flush()
    await session.execute(delete(RateGroupTrunk).where(RateGroupTrunk.rate_group_id == group.id))
    session.add_all(
        RateGroupTrunk(rate_group_id=group.id, trunk_id=found[n]) for n in dict.fromkeys(names)
    )
    await session.flush()
    session.expire(group, ["trunks"])


async def list_groups(ctx: Context) -> Reply:
    async with ctx.sessions() as session:
        stmt = select(RateGroup).order_by(RateGroup.name)
        if not ctx.actor.is_staff:
            mine = (
                await session.get(Account, ctx.actor.account_id) if ctx.actor.account_id else None
            )
            stmt = stmt.where(
                (RateGroup.account_id == ctx.actor.account_id)
                | (RateGroup.id == (mine.rate_group_id if mine else None))
            )
        groups = list(await session.scalars(stmt))
        counts = await _rate_counts(session, [g.id for g in groups])
    if not groups:
        return Reply(title="No rate groups. Add one with `/c2 rategroup add NAME`.")
    rows = tuple(
        (
            g.name,
            g.owner.number if g.owner else "carrier",
            f"{g.markup.normalize():f}%",
            f"{g.initial_increment}/{g.increment}",
            str(counts.get(g.id, 0)),
            g.description or "-",
        )
        for g in groups
    )
    columns = ("Name", "Owner", "Markup", "Increments", "Rates", "Description")
    return Reply(title=f"{len(rows)} rate group(s)", table=Table(columns, rows))


async def _rate_counts(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await session.execute(
        select(OriginationRate.rate_group_id, func.count())
        .where(OriginationRate.rate_group_id.in_(ids))
        .group_by(OriginationRate.rate_group_id)
    )
    return {group_id: count for group_id, count in rows.all() if group_id is not None}


async def show_group(ctx: Context, name: str) -> Reply:
    async with ctx.sessions() as session:
        group = await _group_to_see(session, ctx, name)
        count = (await _rate_counts(session, [group.id])).get(group.id, 0)
        buyers = await session.scalar(
            select(func.count()).select_from(Account).where(Account.rate_group_id == group.id)
        )
        first = list(
            await session.scalars(
                select(OriginationRate)
                .where(OriginationRate.rate_group_id == group.id)
                .order_by(OriginationRate.code)
                .limit(SHOWN_RATES)
            )
        )
        trunks = [t.name for t in group.trunks]
    fields = [
        ("Owner", f"reseller {group.owner.number}" if group.owner else "the carrier"),
        ("Markup", f"{group.markup.normalize():f}%"),
        ("Default increments", f"initial {group.initial_increment} s, then {group.increment} s"),
        ("Description", group.description or "-"),
        ("Rates", str(count)),
    ]
    if ctx.actor.is_staff or group.account_id == ctx.actor.account_id:
        fields.append(("Accounts buying at it", str(buyers or 0)))
    if ctx.actor.is_staff and group.account_id is None:
        fields.append(("Trunks", ", ".join(trunks) or "none"))
    shown = f" (first {len(first)})" if count > len(first) else ""
    return Reply(
        title=f"Rate group {group.name}",
        text=f"Rates{shown}:"
        if first
        else f"No rates yet: `c2bot import rates FILE.csv --group {group.name}`.",
        fields=tuple(fields),
        table=_rate_table(first, group.markup) if first else None,
    )


# --- trunks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrunkChanges:
    gateway: str | None = None
    failover: str | None = None
    channels: str | None = None
    precedence: str | None = None
    status: str | None = None
    provider: str | None = None

    def named(self) -> bool:
        return any(value is not None for value in vars(self).values())


async def add_trunk(ctx: Context, name: str, changes: TrunkChanges) -> Reply:
    _check_trunks(ctx)
    check_name(name, "trunk")
    if not changes.gateway:
        raise Invalid(
            f"A trunk needs its FreeSWITCH gateway: `/c2 trunk add {name} gateway:NAME`.",
            {"gateway": "required"},
        )
    async with ctx.sessions.begin() as session:
        if await session.scalar(select(Trunk.id).where(Trunk.name == name)):
            raise Invalid(f"There is already a trunk {name}.", {"name": "already taken"})
        trunk = Trunk(name=name, gateway="")
        _apply_trunk(trunk, changes)
        session.add(trunk)
        audit.record(session, ctx, "add", "trunk", name, None, **_audit(changes))
    return Reply(title=f"Trunk {name} added (gateway {trunk.gateway}, {trunk.status}).")


async def edit_trunk(ctx: Context, name: str, changes: TrunkChanges) -> Reply:
    if not changes.named():
        raise Invalid(f"Say what to change, e.g. `/c2 trunk edit {name} status:inactive`.")
    async with ctx.sessions.begin() as session:
        trunk = await _trunk_to_manage(session, ctx, name)
        _apply_trunk(trunk, changes)
        audit.record(session, ctx, "edit", "trunk", name, None, **_audit(changes))
    return Reply(title=f"Trunk {name} changed.")


def _apply_trunk(trunk: Trunk, changes: TrunkChanges) -> None:
    problems: dict[str, str] = {}
    if changes.gateway is not None:
        trunk.gateway = _field(problems, "gateway", changes.gateway, _gateway)
    if changes.failover is not None:
        trunk.failover_gateways = _field(problems, "failover", changes.failover, _failovers)
    if changes.channels is not None:
        trunk.max_channels = _field(problems, "channels", changes.channels, parse_count)
    if changes.precedence is not None:
        trunk.precedence = _field(problems, "precedence", changes.precedence, parse_count)
    if changes.status is not None:
        trunk.status = _field(problems, "status", changes.status, _status)
    if changes.provider is not None:
        trunk.provider = _field(problems, "provider", changes.provider, _text100)
    if problems:
        raise Invalid(" ".join(f"{k}: {v}." for k, v in problems.items()), problems)


def _gateway(text: str) -> str:
    if not _GATEWAY.match(text):
        raise ValueError(f"{text!r} is not a gateway name (letters, digits, - _ .)")
    return text


def _failovers(text: str) -> str:
    names = [n.strip() for n in text.split(",") if n.strip() and n.strip().lower() != "none"]
    joined = ",".join(_gateway(n) for n in names)
    if len(joined) > 500:
        raise ValueError("at most 500 characters in all")
    return joined


def _status(text: str) -> str:
    value = text.lower()
    if value not in (AccountStatus.ACTIVE.value, "inactive"):
        raise ValueError("active or inactive")
    return value


def _text100(text: str) -> str:
    if len(text) > 100:
        raise ValueError("at most 100 characters")
    return text


async def list_trunks(ctx: Context) -> Reply:
    _check_trunks(ctx)
    async with ctx.sessions() as session:
        trunks = list(await session.scalars(select(Trunk).order_by(Trunk.precedence, Trunk.name)))
        counted = await session.execute(
            select(TerminationRate.trunk_id, func.count()).group_by(TerminationRate.trunk_id)
        )
        counts = {trunk_id: count for trunk_id, count in counted.all()}
    if not trunks:
        return Reply(title="No trunks. Add one with `/c2 trunk add NAME gateway:GW`.")
    rows = tuple(
        (
            t.name,
            t.gateway + (f" (+{t.failover_gateways})" if t.failover_gateways else ""),
            t.status,
            str(t.precedence),
            str(t.max_channels or "no limit"),
            str(counts.get(t.id, 0)),
            t.provider or "-",
        )
        for t in trunks
    )
    columns = ("Name", "Gateway", "Status", "Precedence", "Channels", "Rates", "Provider")
    return Reply(title=f"{len(rows)} trunk(s)", table=Table(columns, rows))


async def show_trunk(ctx: Context, name: str) -> Reply:
    async with ctx.sessions() as session:
        trunk = await _trunk_to_manage(session, ctx, name)
        count = await session.scalar(
            select(func.count())
            .select_from(TerminationRate)
            .where(TerminationRate.trunk_id == trunk.id)
        )
        first = list(
            await session.scalars(
                select(TerminationRate)
                .where(TerminationRate.trunk_id == trunk.id)
                .order_by(TerminationRate.code)
                .limit(SHOWN_RATES)
            )
        )
        groups = list(
            await session.scalars(
                select(RateGroup.name)
                .join(RateGroupTrunk, RateGroupTrunk.rate_group_id == RateGroup.id)
                .where(RateGroupTrunk.trunk_id == trunk.id)
                .order_by(RateGroup.name)
            )
        )
    fields = (
        ("Gateway", trunk.gateway),
        ("Failover gateways", trunk.failover_gateways.replace(",", ", ") or "none"),
        ("Status", trunk.status),
        ("Precedence", str(trunk.precedence)),
        ("Max channels", str(trunk.max_channels or "no limit")),
        ("Provider", trunk.provider or "-"),
        ("Rate groups", ", ".join(groups) or "none"),
        ("Rates", str(count or 0)),
    )
    shown = f" (first {len(first)})" if (count or 0) > len(first) else ""
    return Reply(
        title=f"Trunk {trunk.name}",
        text=f"Termination rates{shown}:"
        if first
        else f"No termination rates yet: `c2bot import rates FILE.csv --trunk {trunk.name}`.",
        fields=fields,
        table=_rate_table(first, Decimal(0), termination=True) if first else None,
    )


# --- looking rates up -----------------------------------------------------------------------------


def price(value: Decimal) -> str:
    """A rate as shown: at least four decimals, all six only when they are there."""
    text = f"{value.normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(4, '0')}"


def _rate_table(
    rates: Sequence[OriginationRate | TerminationRate],
    markup: Decimal,
    termination: bool = False,
) -> Table:
    columns = ["Code", "Destination", "Connection", "Grace", "Per min", "Initial", "Increment"]
    if markup:
        columns.insert(5, f"With {markup.normalize():f}%")
    if termination:
        columns += ["Strip", "Prepend"]
    rows = []
    for r in rates:
        row = [
            r.code,
            r.destination or "-",
            price(r.connection_cost),
            f"{r.grace_time} s",
            price(r.cost_per_minute),
            "group" if r.initial_increment is None else f"{r.initial_increment} s",
            "group" if r.increment is None else f"{r.increment} s",
        ]
        if termination:
            row[5:7] = [f"{r.initial_increment or 1} s", f"{r.increment or 1} s"]
        if markup:
            row.insert(5, price(rating.with_markup(r.cost_per_minute, markup)))
        if isinstance(r, TerminationRate):
            row += [r.strip or "-", r.prepend or "-"]
        rows.append(tuple(row))
    return Table(tuple(columns), tuple(rows))


@dataclass(frozen=True)
class _Owner:
    """Whose rates a command is about: a rate group's, an account's own, or a trunk's."""

    model: Any
    column: Any
    owner_id: int
    label: str
    markup: Decimal = Decimal(0)
    audit_account: int | None = None
    group_id: int | None = None
    account_id: int | None = None

    @property
    def termination(self) -> bool:
        return self.model is TerminationRate


async def _rates_owner(
    session: AsyncSession,
    ctx: Context,
    *,
    group: str | None,
    account: str | None,
    trunk: str | None,
    change: bool,
) -> _Owner:
    if sum(1 for name in (group, account, trunk) if name) != 1:
        raise Invalid(
            "Name whose rates: a rate group (GROUP or group:NAME), an account's own "
            "(account:N) or a trunk's (trunk:NAME)."
        )
    if trunk:
        found = await _trunk_to_manage(session, ctx, trunk)
        return _Owner(TerminationRate, TerminationRate.trunk_id, found.id, f"trunk {trunk}")
    if account:
        buyer = await _account_rates(session, ctx, account, change)
        return _Owner(
            OriginationRate,
            OriginationRate.account_id,
            buyer.id,
            f"account {buyer.number}'s own rates",
            audit_account=buyer.id,
            group_id=buyer.rate_group_id,
            account_id=buyer.id,
        )
    pick = _group_to_manage if change else _group_to_see
    chosen = await pick(session, ctx, group or "")
    return _Owner(
        OriginationRate,
        OriginationRate.rate_group_id,
        chosen.id,
        f"rate group {chosen.name}",
        markup=chosen.markup,
        audit_account=chosen.account_id,
        group_id=chosen.id,
    )


async def _account_rates(session: AsyncSession, ctx: Context, number: str, change: bool) -> Account:
    """An account whose own rates are looked at (anyone who may act on it) or set (its
    seller: its reseller, or staff)."""
    buyer = await account_by_number(session, number)
    await check_account(session, ctx.actor, buyer.id)
    if change and not ctx.actor.is_staff and buyer.reseller_id != ctx.actor.account_id:
        raise NotAllowed(
            f"Only the seller of account {number} (its reseller, or support staff) sets its "
            "own rates."
        )
    return buyer


async def list_rates(
    ctx: Context,
    group: str | None,
    *,
    prefix: str | None = None,
    number: str | None = None,
    trunk: str | None = None,
    account: str | None = None,
) -> Reply:
    """A group's, an account's own or (staff) a trunk's rates, all or those whose code starts
    with `prefix`; with `number`, the one rate that applies to that number."""
    digits = rating.international_digits(prefix or "") if prefix else ""
    if prefix and not digits:
        raise Invalid(f"prefix {prefix!r} is not digits.", {"prefix": "digits only"})
    async with ctx.sessions() as session:
        owner = await _rates_owner(
            session, ctx, group=group, account=account, trunk=trunk, change=False
        )
        if number is not None:
            return await _rate_for(session, owner, number)
        target = owner.model
        stmt: Select[Any] = select(target).where(owner.column == owner.owner_id)
        if digits:
            stmt = stmt.where(target.code.startswith(digits, autoescape=True))
        total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
        rates = list(await session.scalars(stmt.order_by(target.code).limit(LISTED_RATES)))
    what = owner.label
    starting = f" starting with {digits}" if digits else ""
    if not rates:
        return Reply(title=f"No rates of {what}{starting}.")
    shown = f", first {len(rates)} shown" if (total or 0) > len(rates) else ""
    return Reply(
        title=f"{total} rate(s) of {what}{starting}{shown}",
        table=_rate_table(rates, owner.markup, termination=owner.termination),
    )


@dataclass(frozen=True)
class RateChange:
    """One rate by message: what `rate set` gives (None: as it is, or the default when new)."""

    code: str
    per_minute: str | None = None
    destination: str | None = None
    connection: str | None = None
    grace: str | None = None
    initial: str | None = None
    increment: str | None = None
    strip: str | None = None
    prepend: str | None = None


_CHANGE_FIELDS = {
    "per_minute": "cost_per_minute",
    "destination": "destination",
    "connection": "connection_cost",
    "grace": "grace_time",
    "initial": "initial_increment",
    "increment": "increment",
    "strip": "strip",
    "prepend": "prepend",
}


async def set_rate(
    ctx: Context,
    change: RateChange,
    *,
    group: str | None = None,
    account: str | None = None,
    trunk: str | None = None,
) -> Reply:
    """Add or change one rate (the same checks as a rate file's rows)."""
    values = _change_values(change)
    async with ctx.sessions.begin() as session:
        owner = await _rates_owner(
            session, ctx, group=group, account=account, trunk=trunk, change=True
        )
        if not owner.termination and ({"strip", "prepend"} & values.keys()):
            raise Invalid("strip: and prepend: belong to a trunk's rates (trunk:NAME).")
        code = values.pop("code")
        rate = await session.scalar(
            select(owner.model).where(owner.column == owner.owner_id, owner.model.code == code)
        )
        if rate is None:
            if "cost_per_minute" not in values:
                raise Invalid(
                    f"A new rate needs its price: per-minute:0.0100 (code {code}).",
                    {"per-minute": "required"},
                )
            rate = owner.model(code=code, **{owner.column.key: owner.owner_id})
            session.add(rate)
        for name, value in values.items():
            setattr(rate, name, value)
        await session.flush()
        audit.record(
            session,
            ctx,
            "set",
            "rate",
            f"{owner.label} {code}",
            owner.audit_account,
            **_text(change),
        )
    return Reply(
        title=f"Rate {code} of {owner.label} set: {price(rate.cost_per_minute)} per minute."
    )


def _change_values(change: RateChange) -> dict[str, Any]:
    problems: dict[str, str] = {}
    values: dict[str, Any] = {"code": _field(problems, "code", change.code, _code)}
    for given, name in _CHANGE_FIELDS.items():
        text = getattr(change, given)
        if text is None:
            continue
        if name in ("initial_increment", "increment") and text.lower() == "default":
            values[name] = None
            continue
        values[name] = _field(problems, given.replace("_", "-"), text, PARSERS[name])
    if problems:
        raise Invalid(" ".join(f"{k}: {v}." for k, v in problems.items()), problems)
    return values


def _text(change: RateChange) -> dict[str, str]:
    return {key: value for key, value in vars(change).items() if value is not None}


async def remove_rate(
    ctx: Context,
    code: str,
    *,
    group: str | None = None,
    account: str | None = None,
    trunk: str | None = None,
) -> Reply:
    async with ctx.sessions.begin() as session:
        owner = await _rates_owner(
            session, ctx, group=group, account=account, trunk=trunk, change=True
        )
        done = await session.execute(
            delete(owner.model).where(owner.column == owner.owner_id, owner.model.code == code)
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"There is no rate {code} of {owner.label}.")
        audit.record(session, ctx, "remove", "rate", f"{owner.label} {code}", owner.audit_account)
    return Reply(title=f"Rate {code} of {owner.label} removed.")


async def _rate_for(session: AsyncSession, owner: _Owner, number: str) -> Reply:
    """The rate that applies to a number: longest prefix, an account's own rates before its
    group's, the group's markup and defaults applied."""
    read = lookups.session_reader(session)
    digits = rating.international_digits(number)
    if not digits:
        raise Invalid(f"{number!r} is not a phone number.", {"number": "not a number"})
    what = owner.label
    if owner.termination:
        rate = await rating.trunk_rate(read, trunk_id=owner.owner_id, number=digits)
    else:
        rate = await rating.origination_rate(
            read, account_id=owner.account_id, rate_group_id=owner.group_id, number=digits
        )
    if rate is None:
        return Reply(title=f"No rate of {what} for {digits}.")
    example = rating.charge(rate, 60)
    fields = (
        ("Code", rate.code),
        ("Destination", rate.destination or "-"),
        ("Connection cost", price(rate.connection_cost)),
        ("Per minute", price(rate.cost_per_minute)),
        ("Grace time", f"{rate.grace_time} s"),
        ("Increments", f"initial {rate.initial_increment} s, then {rate.increment} s"),
        ("A 60 s call", price(example)),
    )
    return Reply(
        title=f"Rate of {what} for {digits}: {rate.code} {rate.destination}".strip(), fields=fields
    )
