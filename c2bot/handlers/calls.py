"""Live calls (`/calls`): who may see, end and listen in on which call.

A call belongs to the account its `accountcode` names (our dialplan sets it on every call it
routes). Customers see their own calls, resellers theirs and their customers', staff all; only
resellers and staff may hang up or barge, and only on calls they can see. A call someone may
not see is answered exactly like a call that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers import audit
from c2bot.handlers.accounts import account_by_number
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound, Refusal
from c2bot.handlers.permissions import check_account, visible_accounts
from c2bot.handlers.replies import Reply, Table
from c2bot.storage.models import Account, Role, SipDevice
from c2bot.switch import calls as switch_calls
from c2bot.switch.calls import Call, NoSuchCall
from c2bot.switch.esl import SwitchError, SwitchPool, SwitchUnavailable

COLUMNS = ("Caller", "Destination", "Duration", "State", "Codecs", "Account", "UUID")
EAVESDROP_KEYS = (
    "While listening, press on your phone: 1 to speak to the caller (A leg), "
    "2 to speak to the callee (B leg), 3 to speak to both (three-way), "
    "0 to go back to listening only. Hang up to leave; the call goes on."
)
ONE_PARTY_KEYS = (
    "This call has one party (no B leg): press 2 to speak to the caller, 0 to go back to "
    "listening only. Hang up to leave; the call goes on."
)
# What the switch says when the listening phone does not come on the line, in words.
RING_FAILURES = {
    "USER_NOT_REGISTERED": "is not registered with the switch (is the phone on and online?)",
    "NO_ANSWER": "did not answer",
    "USER_BUSY": "is busy",
    "CALL_REJECTED": "rejected the call",
    "ORIGINATOR_CANCEL": "stopped ringing",
    "SUBSCRIBER_ABSENT": "is not reachable",
}


class SwitchNotReachable(Refusal):
    """The switch cannot be asked right now; the message says why, so someone can fix it."""


# --- listing ----------------------------------------------------------------------------------


async def list_calls(ctx: Context, account: str | None = None) -> Reply:
    """The live calls the asker may see, one row per call (its legs together)."""
    pool = _switch(ctx)
    async with ctx.sessions() as session:
        scope = await _scope(session, ctx, account)
    listing = await _listing(pool)
    shown = [call for call in listing.calls() if _visible(call, scope)]
    where = f" on account {account}" if account else ""
    note = _unreachable_note(listing.unreachable)
    if not shown:
        return Reply(title=f"No live calls{where}.", text=note)
    now = ctx.clock()
    several = len(pool.clients) > 1
    rows = tuple(_row(call, now, several) for call in shown)
    columns = (*COLUMNS, "Switch") if several else COLUMNS
    return Reply(title=f"{len(shown)} live call(s){where}", text=note, table=Table(columns, rows))


def _row(call: Call, now: datetime, with_host: bool) -> tuple[str, ...]:
    a_leg = call.a_leg
    row = (
        _party(a_leg.caller_name, a_leg.caller_number),
        a_leg.destination,
        _minutes_seconds(call.duration(now).total_seconds()),
        (a_leg.callstate or a_leg.state).lower(),
        call.codecs,
        ", ".join(call.accountcodes) or "-",
        a_leg.uuid,
    )
    return (*row, a_leg.host) if with_host else row


def _party(name: str, number: str) -> str:
    return f"{name} <{number}>" if name and name != number else number or name or "-"


def _minutes_seconds(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _unreachable_note(unreachable: dict[str, str]) -> str:
    if not unreachable:
        return ""
    names = ", ".join(sorted(unreachable))
    return f"Not shown: calls on switch {names}, which did not answer."


# --- hang up and barge ------------------------------------------------------------------------


async def hangup_call(ctx: Context, uuid: str) -> Reply:
    """End a live call the asker may see (resellers and staff)."""
    _check_may_control(ctx, "hang up calls")
    pool = _switch(ctx)
    call, account_id = await _find_call(ctx, pool, uuid)
    leg = call.leg(uuid) or call.a_leg
    try:
        await switch_calls.hangup(pool, leg.uuid, host=leg.host)
    except NoSuchCall:
        raise NotFound(f"Call {uuid} has already ended.") from None
    except SwitchUnavailable as error:
        raise _not_reachable(error) from None
    caller, destination = _party("", call.a_leg.caller_number), call.a_leg.destination
    async with ctx.sessions.begin() as session:
        audit.record(
            session, ctx, "call.hangup", "call", leg.uuid, account_id,
            caller=caller, destination=destination, switch=leg.host,
        )  # fmt: skip
    return Reply(title=f"Call {leg.uuid} ({caller} to {destination}) is hung up.")


async def barge_call(ctx: Context, uuid: str, extension: str) -> Reply:
    """Ring the asker's own SIP device and let it listen in on a call (resellers and staff).

    The device eavesdrops on the B leg when there is one, so that the DTMF keys mean what the
    reply says: 1 the caller, 2 the callee (FreeSWITCH: 2 speaks to the eavesdropped leg).
    """
    _check_may_control(ctx, "listen in on calls")
    pool = _switch(ctx)
    call, account_id = await _find_call(ctx, pool, uuid)
    async with ctx.sessions() as session:
        device = await _listening_device(session, ctx, extension)
    target = call.b_leg or call.a_leg
    domain = ctx.settings.sip_domain.replace("{account}", device.account.number)
    caller = call.a_leg.caller_number
    try:
        listener = await switch_calls.barge(
            pool,
            target.uuid,
            f"user/{device.username}@{domain}",
            caller_id_name=f"Listen {caller}"[:50],
            caller_id_number=caller or call.a_leg.destination,
            host=target.host,
        )
    except SwitchUnavailable as error:
        raise _not_reachable(error) from None
    except SwitchError as error:
        raise _ring_failed(device.username, error) from None
    async with ctx.sessions.begin() as session:
        audit.record(
            session, ctx, "call.barge", "call", call.a_leg.uuid, account_id,
            device=device.username, listener=listener, eavesdropped=target.uuid,
            switch=target.host,
        )  # fmt: skip
    return Reply(
        title=f"Your device {device.username} is listening in on the call from "
        f"{_party('', caller)} to {call.a_leg.destination}.",
        text=EAVESDROP_KEYS if call.b_leg is not None else ONE_PARTY_KEYS,
        fields=(("Call", call.a_leg.uuid), ("Listening leg", listener or "-")),
    )


def _ring_failed(username: str, error: SwitchError) -> Invalid:
    cause = error.reply.removeprefix("-ERR").strip() or str(error)
    what = RING_FAILURES.get(cause, f"could not be rung ({cause})")
    return Invalid(
        f"Your device {username} {what}, so nobody is listening in. Try again once it can "
        "take calls.",
        {"extension": what},
    )


# --- shared -----------------------------------------------------------------------------------


def _switch(ctx: Context) -> SwitchPool:
    if ctx.switch is None:
        raise SwitchNotReachable(
            "The switch is not reachable from this c2bot: it runs without the Event Socket "
            "connection (the `esl` part of `c2bot serve`)."
        )
    return ctx.switch


def _not_reachable(error: SwitchUnavailable) -> SwitchNotReachable:
    return SwitchNotReachable(f"The switch is not reachable right now ({error}). Try again soon.")


async def _listing(pool: SwitchPool) -> switch_calls.ChannelList:
    try:
        return await switch_calls.live_channels(pool)
    except SwitchUnavailable as error:
        raise _not_reachable(error) from None


def _check_may_control(ctx: Context, what: str) -> None:
    if not ctx.actor.is_staff and ctx.actor.role is not Role.RESELLER:
        raise NotAllowed(f"Only resellers and support staff can {what}.")


async def _scope(session: AsyncSession, ctx: Context, account: str | None) -> set[str] | None:
    """The account numbers whose calls the asker may see here; None: every call."""
    if account:
        found = await account_by_number(session, account)
        await check_account(session, ctx.actor, found.id)
        return {found.number}
    visible = await visible_accounts(session, ctx.actor)
    if visible is None:
        return None
    return set(await session.scalars(select(Account.number).where(Account.id.in_(visible))))


def _visible(call: Call, scope: set[str] | None) -> bool:
    return scope is None or any(code in scope for code in call.accountcodes)


async def _find_call(ctx: Context, pool: SwitchPool, uuid: str) -> tuple[Call, int | None]:
    """The visible call with a leg ``uuid``, and the id of its (first) account."""
    async with ctx.sessions() as session:
        scope = await _scope(session, ctx, None)
    listing = await _listing(pool)
    call = next((c for c in listing.calls() if c.leg(uuid) is not None), None)
    if call is None or not _visible(call, scope):
        hint = _unreachable_note(listing.unreachable)
        raise NotFound(
            f"There is no live call {uuid} that you may see. `calls list` shows them."
            + (f" {hint}" if hint else "")
        )
    async with ctx.sessions() as session:
        return call, await _account_id(session, call.accountcodes, scope)


async def _account_id(
    session: AsyncSession, codes: Sequence[str], scope: set[str] | None
) -> int | None:
    for code in codes:
        if scope is None or code in scope:
            found = await session.scalar(select(Account.id).where(Account.number == code))
            if found is not None:
                return found
    return None


async def _listening_device(session: AsyncSession, ctx: Context, extension: str) -> SipDevice:
    """The asker's own device by username or extension; staff without an account: any device,
    by username."""
    wanted = extension.strip()
    if ctx.actor.account_id is not None:
        stmt = select(SipDevice).where(
            SipDevice.account_id == ctx.actor.account_id,
            or_(SipDevice.username == wanted, SipDevice.extension == wanted),
        )
        found = list(await session.scalars(stmt))
        device = next((d for d in found if d.username == wanted), found[0] if found else None)
        missing = (
            f"Your account has no SIP device {wanted}; barge rings one of your own devices "
            "(its username or extension)."
        )
    else:
        device = await session.scalar(select(SipDevice).where(SipDevice.username == wanted))
        missing = f"There is no SIP device with username {wanted}."
    if device is None:
        raise NotFound(missing)
    if not device.enabled:
        raise Invalid(f"Device {device.username} is disabled; enable it or use another one.")
    return device
