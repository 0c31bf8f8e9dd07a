"""IVRs (voice menus): a greeting, digits 0-9 that each lead to a destination, and a failover.

Menus may lead to other menus (multi-level) and back to a main menu: a caller pressing digits
ends any loop. Only an option naming its own menu is refused, and a failover that the switch
would follow round in a circle (destinations.refuse_loop shows the path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers import destinations
from c2bot.handlers.accounts import scoped
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import Destination
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.recordings import (
    account_numbers,
    checked_destination,
    destination_words,
    find_owned,
    new_owner,
    sound,
    whole_number,
    yes_no,
)
from c2bot.handlers.replies import Reply, Table
from c2bot.handlers.routing_changes import remember_object, snapshot
from c2bot.storage.models import Account, Ivr, IvrOption
from c2bot.switch.dialplan import TONES

DIGITS = tuple("0123456789")
# Tones the dialplan plays by name; anything else is a recording.
RINGBACK_TONES = tuple(TONES)
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]*$")


@dataclass(frozen=True)
class IvrChanges:
    """Settings as typed; None leaves one as it is (edit) or at its default (add).

    `options` (the Slack form's lines, `1 ringgroup sales`) replaces all options when given.
    """

    greeting: str | None = None
    invalid: str | None = None
    exit: str | None = None
    timeout: str | None = None
    retries: str | None = None
    direct_dial: str | None = None
    cid_prefix: str | None = None
    ringback: str | None = None
    failover: str | None = None
    status: str | None = None
    options: str | None = None

    def named(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


def _origin(ivr: Ivr) -> Destination:
    return Destination("ivr", ivr.name)


async def add_ivr(ctx: Context, name: str, account: str | None, changes: IvrChanges) -> Reply:
    async with ctx.sessions() as session:
        owner = await new_owner(session, ctx, Ivr, name, account, "IVR")
        ivr = Ivr(account_id=owner.id, name=name, options=[])
        await _apply(session, ctx, owner, ivr, changes)
        session.add(ivr)
        await session.flush()
        await remember_object(session, ctx, "ivr", ivr, owner, f"IVR {name} added", None)
        await session.commit()
        return _shown(ivr, owner.number, [], title=f"IVR {name} added to account {owner.number}.")


async def edit_ivr(ctx: Context, name: str, account: str | None, changes: IvrChanges) -> Reply:
    if not changes.named():
        raise Invalid('Say what to change, e.g. `timeout:8` or `failover:"ringgroup sales"`.')
    async with ctx.sessions() as session:
        ivr, owner = await _find(session, ctx, name, account)
        before = snapshot(ivr)
        await _apply(session, ctx, owner, ivr, changes)
        await remember_object(
            session, ctx, "ivr", ivr, owner, f"IVR {name} changed: {_changed(changes)}", before
        )
        await session.commit()
        used = await destinations.references(session, owner.id, _origin(ivr))
        return _shown(ivr, owner.number, used, title=f"IVR {name} changed.")


async def set_option(
    ctx: Context, name: str, account: str | None, digit: str, type_word: str, value: str
) -> Reply:
    """`c2 ivr option main set 1 ringgroup sales`: digit -> destination (added or replaced)."""
    digit = _digit(digit, "digit")
    async with ctx.sessions() as session:
        ivr, owner = await _find(session, ctx, name, account)
        before = snapshot(ivr)
        dest = await _option_destination(session, ctx, owner, ivr, type_word, value, "destination")
        existing = next((o for o in ivr.options if o.digit == digit), None)
        if existing is not None:
            existing.dest_type, existing.dest_value = dest.type, dest.value
        else:
            ivr.options.append(IvrOption(digit=digit, dest_type=dest.type, dest_value=dest.value))
        summary = f"IVR {name} option {digit} -> {dest.label()}"
        await remember_object(session, ctx, "ivr", ivr, owner, summary, before)
        await session.commit()
    return Reply(title=f"IVR {name}: pressing {digit} now goes to {dest.label()}.")


async def remove_option(ctx: Context, name: str, account: str | None, digit: str) -> Reply:
    digit = _digit(digit, "digit")
    async with ctx.sessions() as session:
        ivr, owner = await _find(session, ctx, name, account)
        existing = next((o for o in ivr.options if o.digit == digit), None)
        if existing is None:
            have = ", ".join(o.digit for o in ivr.options) or "none"
            raise NotFound(f"IVR {name} has no option {digit} (options: {have}).")
        before = snapshot(ivr)
        ivr.options.remove(existing)
        await remember_object(
            session, ctx, "ivr", ivr, owner, f"IVR {name} option {digit} removed", before
        )
        await session.commit()
    return Reply(title=f"IVR {name}: option {digit} removed; pressing {digit} is now invalid.")


async def remove_ivr(ctx: Context, name: str, account: str | None) -> Reply:
    async with ctx.sessions() as session:
        ivr, owner = await _find(session, ctx, name, account)
        used = await destinations.references(session, owner.id, _origin(ivr))
        if used:
            raise Invalid(
                f"IVR {name} of account {owner.number} is in use: {', '.join(used)}. "
                "Point those elsewhere first.",
                {"name": "in use"},
            )
        before = snapshot(ivr)
        await session.delete(ivr)
        await session.flush()
        await remember_object(
            session, ctx, "ivr", ivr, owner, f"IVR {name} removed", before, removed=True
        )
        await session.commit()
    return Reply(title=f"IVR {name} removed from account {owner.number}.")


async def list_ivrs(ctx: Context, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        stmt = select(Ivr).order_by(Ivr.account_id, Ivr.name)
        found = list(
            await session.scalars(await scoped(session, ctx, stmt, Ivr.account_id, account))
        )
        numbers = await account_numbers(session, {i.account_id for i in found})
    if not found:
        return Reply(title="No IVRs. Add one with `/c2 ivr add NAME`.")
    rows = tuple(
        (
            numbers[i.account_id],
            i.name,
            "on" if i.enabled else "off",
            i.greeting or "-",
            ", ".join(o.digit for o in i.options) or "-",
            _failover(i).label() if _failover(i).is_set else "-",
        )
        for i in found
    )
    columns = ("Account", "Name", "Status", "Greeting", "Digits", "Failover")
    return Reply(title=f"{len(rows)} IVR(s)", table=Table(columns, rows))


async def show_ivr(ctx: Context, name: str, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        ivr, owner = await _find(session, ctx, name, account)
        used = await destinations.references(session, owner.id, _origin(ivr))
        return _shown(ivr, owner.number, used)


async def form_values(ctx: Context, name: str, account: str | None) -> dict[str, str]:
    """The IVR's settings as the edit form shows them (and the account it belongs to)."""
    async with ctx.sessions() as session:
        ivr, owner = await _find(session, ctx, name, account)
        return {
            "name": ivr.name,
            "account": owner.number,
            "greeting": ivr.greeting,
            "invalid": ivr.invalid_sound,
            "exit": ivr.exit_sound,
            "timeout": str(ivr.timeout),
            "retries": str(ivr.retries),
            "direct_dial": "yes" if ivr.direct_dial else "no",
            "cid_prefix": ivr.cid_name_prefix,
            "ringback": ivr.ringback,
            "failover": _words(_failover(ivr)),
            "status": "on" if ivr.enabled else "off",
            "options": "\n".join(f"{o.digit} {o.dest_type} {o.dest_value}" for o in ivr.options),
        }


# --- the parts ------------------------------------------------------------------------------------


async def _find(
    session: AsyncSession, ctx: Context, name: str, account: str | None
) -> tuple[Ivr, Account]:
    ivr = await find_owned(session, ctx, Ivr, name, account, "IVR")
    owner = await session.get(Account, ivr.account_id)
    assert owner is not None
    return ivr, owner


async def _apply(
    session: AsyncSession, ctx: Context, owner: Account, ivr: Ivr, changes: IvrChanges
) -> None:
    """Check every given setting and set it; refuses (changing nothing stored) on the first
    that does not fit."""
    settings: dict[str, Any] = {}
    if changes.greeting is not None:
        settings["greeting"] = await sound(session, owner, changes.greeting, "greeting")
    if changes.invalid is not None:
        settings["invalid_sound"] = await sound(session, owner, changes.invalid, "invalid")
    if changes.exit is not None:
        settings["exit_sound"] = await sound(session, owner, changes.exit, "exit")
    if changes.timeout is not None:
        settings["timeout"] = whole_number(changes.timeout, "timeout", 1, 60, " seconds")
    if changes.retries is not None:
        settings["retries"] = whole_number(changes.retries, "retries", 1, 10)
    if changes.direct_dial is not None:
        settings["direct_dial"] = yes_no(changes.direct_dial, "direct_dial")
    if changes.cid_prefix is not None:
        settings["cid_name_prefix"] = _cid_prefix(changes.cid_prefix)
    if changes.ringback is not None:
        settings["ringback"] = await sound(
            session, owner, changes.ringback, "ringback", RINGBACK_TONES
        )
    if changes.status is not None:
        settings["enabled"] = yes_no(changes.status, "status")
    if changes.failover is not None:
        failover = destination_words(changes.failover, "failover")
        if failover == _origin(ivr):  # refused as a loop, even before the menu exists
            await destinations.refuse_loop(session, owner.id, failover, failover, "failover")
        failover = await checked_destination(session, ctx, owner, failover, "failover")
        if failover.is_set:
            await destinations.refuse_loop(session, owner.id, _origin(ivr), failover, "failover")
        settings["failover_type"], settings["failover_value"] = failover.type, failover.value
    options = None
    if changes.options is not None:
        options = await _option_lines(session, ctx, owner, ivr, changes.options)
    for key, value in settings.items():
        setattr(ivr, key, value)
    if options is not None:
        ivr.options.clear()
        await session.flush()  # the old digits go before the same digits come back
        ivr.options.extend(options)


async def _option_lines(
    session: AsyncSession, ctx: Context, owner: Account, ivr: Ivr, text: str
) -> list[IvrOption]:
    """`1 ringgroup sales` a line -> options; a digit given twice or a bad line is refused."""
    out: dict[str, IvrOption] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digit, _, rest = line.strip().partition(" ")
        type_word, _, value = rest.strip().partition(" ")
        try:
            digit = _digit(digit, "options")
            if digit in out:
                raise Invalid(f"Digit {digit} is given twice.", {"options": "a digit twice"})
            dest = await _option_destination(session, ctx, owner, ivr, type_word, value, "options")
        except Invalid as refused:
            raise Invalid(
                f"Options, line {number} ({line.strip()}): {refused.message}",
                {"options": f"line {number}: {refused.message}"},
            ) from None
        out[digit] = IvrOption(digit=digit, dest_type=dest.type, dest_value=dest.value)
    return [out[d] for d in sorted(out)]


async def _option_destination(
    session: AsyncSession,
    ctx: Context,
    owner: Account,
    ivr: Ivr,
    type_word: str,
    value: str,
    field: str,
) -> Destination:
    if not type_word:
        raise Invalid(
            "Say where the digit leads: a type and a destination "
            f"({destinations.describe_types()}).",
            {field: "missing destination"},
        )
    dest = destinations.parse(type_word, value, field=field)
    if dest == _origin(ivr):  # back to the menu itself: a loop the caller cannot leave
        await destinations.refuse_loop(session, owner.id, _origin(ivr), dest, field)
    return await destinations.check(session, ctx, owner, dest, field=field)


def _digit(text: str, field: str) -> str:
    digit = text.strip()
    if digit not in DIGITS:
        raise Invalid(f"An option is one digit, 0 to 9 (got {text!r}).", {field: "one digit 0-9"})
    return digit


def _cid_prefix(text: str) -> str:
    if len(text) > 32 or not _PRINTABLE.match(text):
        raise Invalid(
            'The caller-id name prefix is at most 32 printable characters, e.g. "Sales: ".',
            {"cid_prefix": "at most 32 characters"},
        )
    return text


def _failover(ivr: Ivr) -> Destination:
    return Destination(ivr.failover_type, ivr.failover_value)


def _words(dest: Destination) -> str:
    return f"{dest.type} {dest.value}".strip() if dest.is_set else ""


def _changed(changes: IvrChanges) -> str:
    return ", ".join(name.replace("_", " ") for name in changes.named())


def _shown(ivr: Ivr, number: str, used: list[str], title: str | None = None) -> Reply:
    failover = _failover(ivr)
    fields_ = (
        ("Account", number),
        ("Status", "on" if ivr.enabled else "off (calls go to the failover)"),
        ("Welcome greeting", ivr.greeting or "none"),
        ("Invalid message", ivr.invalid_sound or "the switch's own"),
        ("Exit message", ivr.exit_sound or "none"),
        ("Timeout", f"{ivr.timeout} s"),
        ("Invalid retries", str(ivr.retries)),
        ("Direct dial", "yes (callers may dial an extension)" if ivr.direct_dial else "no"),
        ("Caller-id name prefix", repr(ivr.cid_name_prefix) if ivr.cid_name_prefix else "none"),
        ("Ring-back", ivr.ringback or "default"),
        ("Failover", failover.label() if failover.is_set else "none (hang up)"),
        ("Reached from", ", ".join(used) or "nothing yet"),
    )
    rows = tuple(
        (o.digit, Destination(o.dest_type, o.dest_value).label())
        for o in sorted(ivr.options, key=lambda o: o.digit)
    )
    table = Table(("Digit", "Goes to"), rows) if rows else None
    text = "" if rows else f"No options yet: `/c2 ivr option {ivr.name} set 1 TYPE DESTINATION`."
    return Reply(title=title or f"IVR {ivr.name}", text=text, fields=fields_, table=table)
