"""Phone numbers (DIDs): which account has them, and where their calls go.

Numbers come from the carrier, so adding, moving and removing one is for staff. Where its calls
go is the account's own business: the customer, its reseller and staff set the forwarding, to
any of the platform's forwarding types (`destinations.DID_TYPES`), checked against the account
that has the number. FOIP sends received faxes as PDF to one address (faxgw/receive.py reads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers import orders
from c2bot.handlers.accounts import account_by_number, scoped
from c2bot.handlers.amounts import parse_amount
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import (
    DID_TYPES,
    OBJECT_WORDS,
    Destination,
    check,
    device_targets,
    object_of,
    parse,
    phone_number,
)
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound, Refusal
from c2bot.handlers.permissions import check_account, check_staff
from c2bot.handlers.replies import Reply, Table
from c2bot.handlers.routing_changes import remember, snapshot
from c2bot.storage.models import Account, Did

NOT_YOURS = (
    "{number} is not one of your numbers. Numbers come from the carrier: support adds them "
    "to an account (`/c2 did add {number} account:N`)."
)


@dataclass(frozen=True)
class Forwarding:
    """Where a number's calls go, as typed: a DID forwarding type and its destination."""

    type: str
    destination: str


def did_number(ctx: Context, text: str) -> str:
    """A DID as stored: E.164 (`020 123 4567` -> `+31201234567`, read in C2_FAX_COUNTRY)."""
    return phone_number(text, ctx.settings.fax_country, "number")


def describe(number: str, kind: str | None, value: str | None) -> str:
    """Where calls to `number` go, in words that follow the number ("+312... rings ...")."""
    value = value or ""
    if not kind:
        return "is not forwarded yet: calls to it are refused (set it with `/route did set`)"
    if kind == "local":
        sep, devices = device_targets(value)
        if len(devices) == 1:
            return f"rings SIP device {devices[0]}"
        if sep == "|":
            return f"rings SIP devices {', then '.join(devices)}, in turn"
        return f"rings SIP devices {', '.join(devices[:-1])} and {devices[-1]} together"
    phrases = {
        "ip": f"sends the call to SIP server {value} as sip:{number}@{value}",
        "direct-ip": f"sends the call to the SIP address {value} as it is",
        "pstn": f"forwards the call to {value}",
        "sip-did": f"sends the call to SIP trunk device {value}, with {number} as the number "
        "dialled",
        "ringgroup": f"rings ring group {value}",
        "conference": f"joins the caller to conference {value}",
        "queue": f"puts the caller in queue {value}",
        "ivr": f"plays the voice menu (IVR) {value}",
        "timecondition": f"follows time condition {value}",
        "foip": f"receives faxes and mails them as PDF to {value}",
        "other": f"runs the dial string {value} (set by support)",
    }
    return phrases.get(kind, f"goes to {kind} {value}".strip())


# --- the numbers themselves (staff) ------------------------------------------------------------


async def add_did(
    ctx: Context,
    number: str,
    account_number: str | None,
    setup_fee: str | None = None,
    monthly_fee: str | None = None,
) -> Reply:
    """Give a number from the carrier to an account, with what it pays for it (invoiced: the
    setup fee once, the monthly fee every month); its forwarding is set afterwards."""
    check_staff(ctx.actor, "add numbers: they come from the carrier")
    e164 = did_number(ctx, number)
    if not account_number:
        raise Invalid(f"Name the account {e164} is for: account:N.", {"account": "missing"})
    fees: dict[str, Decimal] = {}
    for name, text in (("setup", setup_fee), ("monthly", monthly_fee)):
        try:
            fees[name] = parse_amount(text or "0")
        except ValueError as error:
            raise Invalid(f"{name}: {error}.", {name: str(error)}) from None
    async with ctx.sessions() as session:
        account = await account_by_number(session, account_number)
        existing = await session.scalar(select(Did).where(Did.number == e164))
        if existing is not None and existing.account_id == account.id:
            return Reply(title=f"{e164} already belongs to account {account.number}.")
        if existing is not None:
            raise Invalid(
                f"{e164} already belongs to account {existing.account.number}; move it with "
                f"`/c2 did edit {e164} account:{account.number}`.",
                {"number": "belongs to another account"},
            )
        did = Did(
            number=e164,
            account_id=account.id,
            setup_fee=fees["setup"],
            monthly_fee=fees["monthly"],
        )
        session.add(did)
        await session.flush()
        await orders.did_added(session, ctx, did, account.id)
        await _remember(session, ctx, did, f"DID {e164} added to account {account.number}", None)
        await session.commit()
    return Reply(
        title=f"{e164} added to account {account.number}.",
        text=f"Set where its calls go: `/route did set {e164} TYPE DESTINATION`.",
    )


async def edit_did(
    ctx: Context, number: str, account_number: str | None, forwarding: Forwarding | None
) -> Reply:
    """Move a number to another account (staff) and/or set its forwarding."""
    if account_number is None and forwarding is None:
        raise Invalid(
            "Say what to change: account:N (move it, staff) or type:TYPE destination:DEST.",
            {"number": "nothing to change"},
        )
    if account_number is None:
        assert forwarding is not None
        return await set_forwarding(ctx, number, forwarding)
    check_staff(ctx.actor, "move numbers between accounts")
    e164 = did_number(ctx, number)
    async with ctx.sessions() as session:
        did = await _did(session, e164)
        account = await account_by_number(session, account_number)
        before, old = snapshot(did), did.account.number
        did.account_id = account.id
        did.account = account
        note = ""
        if forwarding is not None:
            dest = await _checked(session, ctx, account, forwarding)
            did.forward_type, did.destination = dest.type, dest.value
        elif did.forward_type and not await _still_fits(session, ctx, account, did):
            note = f" Its forwarding ({did.forward_type} {did.destination}) was {old}'s: cleared."
            did.forward_type, did.destination = None, None
        if snapshot(did) == before:
            return Reply(title=f"{e164} already belongs to account {account.number}.")
        await session.flush()
        summary = f"DID {e164} moved from account {old} to {account.number}"
        await _remember(session, ctx, did, summary, before)
        await session.commit()
        where = describe(e164, did.forward_type, did.destination)
    return Reply(title=f"{summary}.{note}", fields=(("Calls", f"{e164} {where}"),))


async def remove_did(ctx: Context, number: str) -> Reply:
    check_staff(ctx.actor, "remove numbers: they go back to the carrier")
    e164 = did_number(ctx, number)
    async with ctx.sessions() as session:
        did = await _did(session, e164)
        before, account = snapshot(did), did.account.number
        await session.delete(did)
        await session.flush()
        summary = f"DID {e164} removed from account {account}"
        await _remember(session, ctx, did, summary, before, removed=True)
        await session.commit()
    return Reply(
        title=f"{e164} removed from account {account}; calls to it are refused now. "
        "`/route undo` brings it back."
    )


# --- forwarding (customer, reseller, staff) ----------------------------------------------------


async def set_forwarding(
    ctx: Context, number: str, forwarding: Forwarding, account_number: str | None = None
) -> Reply:
    """Point a number at a destination of its account.

    Staff may name a number nobody has yet with `account:N`: it is added there first.
    """
    e164 = did_number(ctx, number)
    wanted = _parse(ctx, forwarding)
    async with ctx.sessions() as session:
        did = await session.scalar(select(Did).where(Did.number == e164))
        before = snapshot(did) if did is not None else None
        if did is None:
            did = await _new_for_staff(session, ctx, e164, account_number)
        else:
            await _check_yours(session, ctx, did)
            if account_number and account_number != did.account.number:
                raise Invalid(
                    f"{e164} belongs to account {did.account.number}, not {account_number}; "
                    "support moves numbers between accounts.",
                    {"account": "not this number's account"},
                )
        dest = await check(session, ctx, did.account, wanted)
        previous = describe(e164, did.forward_type, did.destination)
        if (did.forward_type, did.destination) == (dest.type, dest.value) and before:
            return Reply(title=f"{e164} already {previous}.")
        did.forward_type, did.destination = dest.type, dest.value
        await session.flush()
        summary = f"DID {e164}: {dest.type} {dest.value}"
        await _remember(session, ctx, did, summary, before)
        await session.commit()
        account = did.account.number
    return Reply(
        title=f"{e164} now {describe(e164, dest.type, dest.value)}.",
        fields=(("Account", account), ("Before", previous)),
        text="The next call follows it. `/route undo` puts it back.",
    )


# --- reading -----------------------------------------------------------------------------------


async def list_dids(ctx: Context, account_number: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        stmt = select(Did).order_by(Did.number)
        stmt = await scoped(session, ctx, stmt, Did.account_id, account_number)
        dids = list(await session.scalars(stmt))
    if not dids:
        return Reply(title="No numbers.")
    rows = tuple(
        (d.number, d.account.number, d.forward_type or "unset", d.destination or "") for d in dids
    )
    return Reply(
        title=f"{len(rows)} number(s)",
        table=Table(("Number", "Account", "Type", "Destination"), rows),
    )


async def show_did(ctx: Context, number: str) -> Reply:
    e164 = did_number(ctx, number)
    async with ctx.sessions() as session:
        did = await session.scalar(select(Did).where(Did.number == e164))
        if did is None or not await _may(session, ctx, did.account_id):
            raise NotFound(f"{e164} is not one of the numbers you may see.")
        target = await _target_state(session, did)
    kind = did.forward_type or ""
    fields = [
        ("Account", f"{did.account.number} {did.account.company}"),
        ("Calls", f"{e164} {describe(e164, did.forward_type, did.destination)}"),
        ("Type", f"{kind}: {DID_TYPES[kind]}" if kind in DID_TYPES else "unset"),
    ]
    if target:
        fields.append(("Note", target))
    fields.append(("Changed", f"{did.updated_at:%Y-%m-%d %H:%M} UTC"))
    return Reply(title=e164, fields=tuple(fields))


# --- helpers -----------------------------------------------------------------------------------


def _parse(ctx: Context, forwarding: Forwarding) -> Destination:
    kind = forwarding.type.strip().lower()
    if kind not in DID_TYPES:
        raise Invalid(
            f"{forwarding.type!r} is not a forwarding type for a number; use one of: "
            f"{', '.join(DID_TYPES)}.",
            {"type": "unknown type"},
        )
    return parse(kind, forwarding.destination, ctx.settings.fax_country)


async def _checked(
    session: AsyncSession, ctx: Context, account: Account, forwarding: Forwarding
) -> Destination:
    return await check(session, ctx, account, _parse(ctx, forwarding))


async def _still_fits(session: AsyncSession, ctx: Context, account: Account, did: Did) -> bool:
    """Whether the number's forwarding also works in `account` (devices, objects by name)."""
    try:
        dest = Destination(did.forward_type or "", did.destination or "")
        await check(session, ctx, account, dest)
    except Refusal:
        return False
    return True


async def _did(session: AsyncSession, e164: str) -> Did:
    did = await session.scalar(select(Did).where(Did.number == e164))
    if did is None:
        raise NotFound(f"There is no number {e164} on the platform.")
    return did


async def _new_for_staff(
    session: AsyncSession, ctx: Context, e164: str, account_number: str | None
) -> Did:
    if not ctx.actor.is_staff:
        raise NotAllowed(NOT_YOURS.format(number=e164))
    if not account_number:
        raise Invalid(
            f"{e164} is not on the platform yet; name its account with account:N to add it.",
            {"account": "missing"},
        )
    account = await account_by_number(session, account_number)
    did = Did(number=e164, account_id=account.id)
    did.account = account
    session.add(did)
    await orders.did_added(session, ctx, did, account.id)
    return did


async def _check_yours(session: AsyncSession, ctx: Context, did: Did) -> None:
    if not await _may(session, ctx, did.account_id):
        raise NotAllowed(NOT_YOURS.format(number=did.number))


async def _may(session: AsyncSession, ctx: Context, account_id: int) -> bool:
    try:
        await check_account(session, ctx.actor, account_id)
    except Refusal:
        return False
    return True


async def _target_state(session: AsyncSession, did: Did) -> str:
    """A word of warning when the number points at an object that is switched off."""
    kind = did.forward_type or ""
    if kind not in OBJECT_WORDS or not did.destination:
        return ""
    found = await object_of(session, did.account_id, kind, did.destination)
    if found is None:
        return f"{OBJECT_WORDS[kind]} {did.destination} no longer exists: calls are refused"
    if not found.enabled:
        return f"{OBJECT_WORDS[kind]} {did.destination} is disabled"
    return ""


async def _remember(
    session: AsyncSession,
    ctx: Context,
    did: Did,
    summary: str,
    before: dict[str, Any] | None,
    *,
    removed: bool = False,
) -> None:
    await remember(
        session,
        ctx,
        object_type="did",
        key=did.number,
        account_id=did.account_id,
        summary=summary,
        before=before,
        after=None if removed else did,
    )
