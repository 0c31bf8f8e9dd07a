"""Time conditions by message: rows of times that route calls, a failover, and the override.

A row is typed the same way everywhere (the command, the Slack form's lines):
`09:00-17:30 days:mon-fri priority:1 ringgroup sales`, `holiday country:NL priority:0 playback
closed-msg`. The words are checked by c2bot.switch.timeconditions (the code that routes calls),
so what is stored is what the switch reads. `/route tc force NAME open|closed|auto` overrides
the clock until lifted; every reply that shows a time condition shows the override with who set
it and since when.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers import destinations
from c2bot.handlers.accounts import scoped
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import Destination
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.recordings import (
    checked_destination,
    destination_words,
    find_owned,
    new_owner,
    whole_number,
    yes_no,
)
from c2bot.handlers.replies import Reply, Table
from c2bot.handlers.routing_changes import remember_object, snapshot
from c2bot.storage.models import Account, Did, TimeCondition, TimeConditionRow
from c2bot.switch import timeconditions as rules

FORCES = rules.FORCES
ROW_KEYS = {
    "days": "weekdays",
    "weekdays": "weekdays",
    "monthdays": "monthdays",
    "months": "months",
    "years": "years",
    "country": "holiday_country",
    "time": "time",
    "priority": "priority",
}
ROW_USAGE = (
    "[HH:MM-HH:MM] [holiday country:NL] [days:mon-fri] [monthdays:1-15] [months:jan-mar] "
    "[years:2026] [priority:N] TYPE DESTINATION"
)
_RANGE = re.compile(r"^\d{1,2}(?::?\d{2})?-\d{1,2}(?::?\d{2})?$")
_KEY = re.compile(r"^([a-z]+):(.*)$", re.DOTALL)


@dataclass(frozen=True)
class TcChanges:
    """Settings as typed; None leaves one as it is. `rows` (lines, one row each) replaces all."""

    failover: str | None = None
    status: str | None = None
    rows: str | None = None

    def named(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class RowSpec:
    fields: rules.RowFields
    priority: int | None
    dest: Destination


@dataclass(frozen=True)
class _Ordered:
    """A condition with its rows in their numbered order (priority, then age)."""

    force: str
    rows: Sequence[TimeConditionRow]


def ordered_rows(tc: TimeCondition) -> list[TimeConditionRow]:
    return sorted(tc.rows, key=lambda r: (r.priority, r.id or 0))


def _origin(tc: TimeCondition) -> Destination:
    return Destination("timecondition", tc.name)


# --- reading rows as people type them -------------------------------------------------------------


def parse_row(text: str, field: str = "row") -> RowSpec:
    """One row's words -> the row as stored, or a refusal saying which word does not fit."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split, lexer.commenters, lexer.quotes = True, "", '"'  # as the grammar
    try:
        words = list(lexer)
    except ValueError:
        raise Invalid("A double quote is not closed in the row.", {field: "open quote"}) from None
    typed: dict[str, str] = {"kind": "time"}
    rest: list[str] = []
    for word in words:
        key = _KEY.match(word)
        if key and key[1] in ROW_KEYS:
            typed[ROW_KEYS[key[1]]] = key[2]
        elif word.lower() in ("holiday", "holidays") and not rest:
            typed["kind"] = "holiday"
        elif _RANGE.match(word) and not rest:
            typed["time"] = word
        else:
            rest.append(word)
    if not rest:
        raise Invalid(
            f"A row ends with where calls go: TYPE DESTINATION, e.g. `ringgroup sales`. "
            f"Row words: {ROW_USAGE}",
            {field: "no destination"},
        )
    start, _, end = typed.pop("time", "").partition("-")
    priority = typed.pop("priority", None)
    try:
        checked = rules.check_row_fields(start_time=start, end_time=end, **typed)
    except ValueError as error:
        raise Invalid(str(error), {field: str(error)}) from None
    dest = destination_words(" ".join(rest), field)
    if not dest.is_set:
        raise Invalid("A row needs a destination; `none` is for the failover.", {field: "none"})
    number = whole_number(priority, "priority", 0, 99) if priority is not None else None
    return RowSpec(checked, number, dest)


def row_words(row: TimeConditionRow) -> str:
    """A stored row in the words `parse_row` reads (the edit form shows these)."""
    words = ["holiday", f"country:{row.holiday_country}"] if row.kind == "holiday" else []
    if row.start_time:
        words.append(f"{row.start_time}-{row.end_time}")
    for key, value in (
        ("days", row.weekdays),
        ("monthdays", row.monthdays),
        ("months", row.months),
        ("years", row.years),
    ):
        if value:
            words.append(f"{key}:{value}")
    words += [f"priority:{row.priority}", row.dest_type, row.dest_value]
    return " ".join(w for w in words if w)


# --- changing -------------------------------------------------------------------------------------


async def add_tc(ctx: Context, name: str, account: str | None, changes: TcChanges) -> Reply:
    async with ctx.sessions() as session:
        owner = await new_owner(session, ctx, TimeCondition, name, account, "time condition")
        tc = TimeCondition(account_id=owner.id, name=name, rows=[])
        await _apply(session, ctx, owner, tc, changes)
        session.add(tc)
        await session.flush()
        await remember_object(
            session, ctx, "timecondition", tc, owner, f"time condition {name} added", None
        )
        await session.commit()
        title = f"Time condition {name} added to account {owner.number}."
        return await _shown(session, ctx, tc, owner, title)


async def edit_tc(ctx: Context, name: str, account: str | None, changes: TcChanges) -> Reply:
    if not changes.named():
        raise Invalid('Say what to change, e.g. `failover:"voicemail 1001-100"` or `status:off`.')
    async with ctx.sessions() as session:
        tc, owner = await _find(session, ctx, name, account)
        before = snapshot(tc)
        await _apply(session, ctx, owner, tc, changes)
        changed = ", ".join(changes.named())
        await remember_object(
            session,
            ctx,
            "timecondition",
            tc,
            owner,
            f"time condition {name} changed: {changed}",
            before,
        )
        await session.commit()
        return await _shown(session, ctx, tc, owner, f"Time condition {name} changed.")


async def add_row(ctx: Context, name: str, account: str | None, text: str) -> Reply:
    """`c2 timecondition row office add 09:00-17:30 days:mon-fri priority:1 ringgroup sales`."""
    spec = parse_row(text)
    async with ctx.sessions() as session:
        tc, owner = await _find(session, ctx, name, account)
        before = snapshot(tc)
        row = await _checked_row(session, ctx, owner, tc, spec, "row")
        if spec.priority is None:
            row.priority = max((r.priority for r in tc.rows), default=0) + 1
        tc.rows.append(row)
        await session.flush()
        number = ordered_rows(tc).index(row) + 1
        summary = f"time condition {name} row {number} added: {_row_text(row)}"
        await remember_object(session, ctx, "timecondition", tc, owner, summary, before)
        await session.commit()
        title = f"Time condition {name}: row {number} added ({_row_text(row)})."
        return await _shown(session, ctx, tc, owner, title)


async def remove_row(ctx: Context, name: str, account: str | None, number_text: str) -> Reply:
    async with ctx.sessions() as session:
        tc, owner = await _find(session, ctx, name, account)
        rows = ordered_rows(tc)
        number = number_text.strip().lstrip("#")
        if not number.isdigit() or not 1 <= int(number) <= len(rows):
            have = f"rows 1 to {len(rows)}" if rows else "no rows"
            raise NotFound(f"Time condition {name} has no row {number_text!r} (it has {have}).")
        row = rows[int(number) - 1]
        before = snapshot(tc)
        text = _row_text(row)
        tc.rows.remove(row)
        await remember_object(
            session,
            ctx,
            "timecondition",
            tc,
            owner,
            f"time condition {name} row {number} removed: {text}",
            before,
        )
        await session.commit()
        title = f"Time condition {name}: row {number} removed ({text})."
        return await _shown(session, ctx, tc, owner, title)


async def force_tc(ctx: Context, name: str, account: str | None, force: str) -> Reply:
    """`/route tc force office closed`: the override holds until `auto` lifts it."""
    force = force.strip().lower()
    if force not in FORCES:
        raise Invalid(f"force takes {', '.join(FORCES)} (got {force!r}).", {"force": "unknown"})
    async with ctx.sessions() as session:
        tc, owner = await _find(session, ctx, name, account)
        before = snapshot(tc)
        tc.force = force
        tc.forced_by = "" if force == "auto" else ctx.actor.label[:300]
        tc.forced_at = None if force == "auto" else ctx.clock()
        summary = (
            f"time condition {name} back to its clock"
            if force == "auto"
            else f"time condition {name} forced {force}"
        )
        await remember_object(session, ctx, "timecondition", tc, owner, summary, before)
        await session.commit()
        if force == "auto":
            title = f"Time condition {name} follows its clock again."
        else:
            title = (
                f"Time condition {name} is forced {force} until "
                f"`/route tc force {name} auto` lifts it."
            )
        return await _shown(session, ctx, tc, owner, title)


async def remove_tc(ctx: Context, name: str, account: str | None) -> Reply:
    async with ctx.sessions() as session:
        tc, owner = await _find(session, ctx, name, account)
        used = await destinations.references(session, owner.id, _origin(tc))
        if used:
            raise Invalid(
                f"Time condition {name} of account {owner.number} is in use: {', '.join(used)}. "
                "Point those elsewhere first.",
                {"name": "in use"},
            )
        before = snapshot(tc)
        await session.delete(tc)
        await session.flush()
        await remember_object(
            session,
            ctx,
            "timecondition",
            tc,
            owner,
            f"time condition {name} removed",
            before,
            removed=True,
        )
        await session.commit()
    return Reply(title=f"Time condition {name} removed from account {owner.number}.")


# --- reading --------------------------------------------------------------------------------------


async def list_tcs(ctx: Context, account: str | None = None) -> Reply:
    """Each time condition with where a call goes now, and any override."""
    async with ctx.sessions() as session:
        stmt = select(TimeCondition).order_by(TimeCondition.account_id, TimeCondition.name)
        stmt = await scoped(session, ctx, stmt, TimeCondition.account_id, account)
        found = list(await session.scalars(stmt))
        owners = await _accounts(session, {tc.account_id for tc in found})
    if not found:
        return Reply(title="No time conditions. Add one with `/c2 timecondition add NAME`.")
    now = ctx.clock()
    rows = tuple(
        (
            owners[tc.account_id].number,
            tc.name,
            state_now(tc, owners[tc.account_id].timezone, now),
            override(tc, owners[tc.account_id].timezone) or "none (follows its clock)",
        )
        for tc in found
    )
    table = Table(("Account", "Name", "Now", "Override"), rows)
    return Reply(title=f"{len(rows)} time condition(s)", table=table)


async def show_tc(ctx: Context, name: str, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        tc, owner = await _find(session, ctx, name, account)
        return await _shown(session, ctx, tc, owner)


async def form_values(ctx: Context, name: str, account: str | None) -> dict[str, str]:
    async with ctx.sessions() as session:
        tc, owner = await _find(session, ctx, name, account)
        failover = Destination(tc.failover_type, tc.failover_value)
        return {
            "name": tc.name,
            "account": owner.number,
            "failover": f"{failover.type} {failover.value}".strip() if failover.is_set else "",
            "status": "on" if tc.enabled else "off",
            "rows": "\n".join(row_words(r) for r in ordered_rows(tc)),
        }


def state_now(tc: TimeCondition, timezone: str, now: datetime) -> str:
    """`open via row 1 -> ring group sales` or `closed -> failover voicemail 1001-100`."""
    choice = rules.choose(_Ordered(tc.force, ordered_rows(tc)), now, timezone)
    failover = Destination(tc.failover_type, tc.failover_value)
    state = "" if tc.enabled else "off; "
    if choice.row is not None:
        row = ordered_rows(tc)[choice.number - 1]
        return f"{state}open via row {choice.number} -> {_dest(row).label()}"
    goes = f"failover {failover.label()}" if failover.is_set else "no failover: hang up"
    return f"{state}closed -> {goes}"


def override(tc: TimeCondition, timezone: str) -> str | None:
    """`forced closed by Jan Jansen since 2026-03-02 14:05 (Europe/Amsterdam)`, or None."""
    if tc.force == "auto":
        return None
    since = ""
    if tc.forced_at is not None:
        local = tc.forced_at.astimezone(ZoneInfo(timezone))
        since = f" since {local:%Y-%m-%d %H:%M} ({timezone})"
    who = f" by {tc.forced_by}" if tc.forced_by else ""
    return f"forced {tc.force}{who}{since}"


async def override_of(session: AsyncSession, account_id: int, name: str) -> str | None:
    """The override of an account's time condition, for replies that show where a DID goes."""
    tc = await session.scalar(
        select(TimeCondition).where(
            TimeCondition.account_id == account_id, TimeCondition.name == name
        )
    )
    owner = await session.get(Account, account_id)
    if tc is None or owner is None:
        return None
    return override(tc, owner.timezone)


# --- the parts ------------------------------------------------------------------------------------


async def _find(
    session: AsyncSession, ctx: Context, name: str, account: str | None
) -> tuple[TimeCondition, Account]:
    tc = await find_owned(session, ctx, TimeCondition, name, account, "time condition")
    owner = await session.get(Account, tc.account_id)
    assert owner is not None
    return tc, owner


async def _accounts(session: AsyncSession, ids: set[int]) -> dict[int, Account]:
    if not ids:
        return {}
    return {a.id: a for a in await session.scalars(select(Account).where(Account.id.in_(ids)))}


async def _apply(
    session: AsyncSession, ctx: Context, owner: Account, tc: TimeCondition, changes: TcChanges
) -> None:
    settings: dict[str, Any] = {}
    if changes.status is not None:
        settings["enabled"] = yes_no(changes.status, "status")
    if changes.failover is not None:
        failover = destination_words(changes.failover, "failover")
        if failover == _origin(tc):  # refused as a loop, even before the condition exists
            await destinations.refuse_loop(session, owner.id, failover, failover, "failover")
        failover = await checked_destination(session, ctx, owner, failover, "failover")
        if failover.is_set:
            await destinations.refuse_loop(session, owner.id, _origin(tc), failover, "failover")
        settings["failover_type"], settings["failover_value"] = failover.type, failover.value
    rows = None
    if changes.rows is not None:
        rows = await _row_lines(session, ctx, owner, tc, changes.rows)
    for key, value in settings.items():
        setattr(tc, key, value)
    if rows is not None:
        tc.rows.clear()
        tc.rows.extend(rows)


async def _row_lines(
    session: AsyncSession, ctx: Context, owner: Account, tc: TimeCondition, text: str
) -> list[TimeConditionRow]:
    out: list[TimeConditionRow] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            spec = parse_row(line, "rows")
            row = await _checked_row(session, ctx, owner, tc, spec, "rows")
        except Invalid as refused:
            raise Invalid(
                f"Rows, line {number} ({line.strip()}): {refused.message}",
                {"rows": f"line {number}: {refused.message}"},
            ) from None
        if spec.priority is None:
            row.priority = len(out) + 1
        out.append(row)
    return out


async def _checked_row(
    session: AsyncSession,
    ctx: Context,
    owner: Account,
    tc: TimeCondition,
    spec: RowSpec,
    field: str,
) -> TimeConditionRow:
    if spec.dest == _origin(tc):
        await destinations.refuse_loop(session, owner.id, spec.dest, spec.dest, field)
    dest = await destinations.check(session, ctx, owner, spec.dest, field=field)
    await destinations.refuse_loop(session, owner.id, _origin(tc), dest, field)
    values = {f.name: getattr(spec.fields, f.name) for f in fields(spec.fields)}
    return TimeConditionRow(
        **values,
        priority=spec.priority if spec.priority is not None else 10,
        dest_type=dest.type,
        dest_value=dest.value,
    )


def _dest(row: TimeConditionRow) -> Destination:
    return Destination(row.dest_type, row.dest_value)


def _row_text(row: TimeConditionRow) -> str:
    return f"{rules.describe_row(row)}, priority {row.priority} -> {_dest(row).label()}"


async def _shown(
    session: AsyncSession,
    ctx: Context,
    tc: TimeCondition,
    owner: Account,
    title: str | None = None,
) -> Reply:
    used = await destinations.references(session, owner.id, _origin(tc))
    numbers = list(
        await session.scalars(
            select(Did.number).where(
                Did.account_id == owner.id,
                Did.forward_type == "timecondition",
                Did.destination == tc.name,
            )
        )
    )
    failover = Destination(tc.failover_type, tc.failover_value)
    info = (
        ("Account", owner.number),
        ("Status", "on" if tc.enabled else "off"),
        ("Now", state_now(tc, owner.timezone, ctx.clock())),
        ("Override", override(tc, owner.timezone) or "none (follows its clock)"),
        ("Time zone", owner.timezone),
        ("Failover", failover.label() if failover.is_set else "none (hang up)"),
        ("Numbers", ", ".join(numbers) or "none"),
        ("Reached from", ", ".join(used) or "nothing yet"),
    )
    rows = tuple(
        (str(n), rules.describe_row(r), str(r.priority), _dest(r).label())
        for n, r in enumerate(ordered_rows(tc), 1)
    )
    table = Table(("Row", "When", "Priority", "Goes to"), rows) if rows else None
    text = (
        ""
        if rows
        else f"No rows yet: `/c2 timecondition row {tc.name} add 09:00-17:00 days:mon-fri "
        "TYPE DESTINATION`."
    )
    return Reply(title=title or f"Time condition {tc.name}", text=text, fields=info, table=table)
