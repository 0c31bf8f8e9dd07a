"""`/route test`: what a call would do, step by step, now or at a given time.

The steps come from `c2bot.switch.dialplan.plan`, the walk that answers FreeSWITCH, so the
explanation is what the switch would be told. A call to a DID comes from outside (context
`public`); with `from:` naming one of the account's devices it is a call from that device
(an extension, 1800, a number outside the account: rate, balance, limits and trunks, as
c2bot.switch.outbound plans it). Only numbers and devices the asker may see are explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.permissions import visible_accounts
from c2bot.handlers.replies import Reply, Table
from c2bot.storage.models import Account, Did, SipDevice
from c2bot.switch import dialplan
from c2bot.switch.targets import PUBLIC_CONTEXT, account_context

AT_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")


@dataclass(frozen=True)
class RouteTest:
    number: str
    at: str | None = None  # YYYY-MM-DDTHH:MM in the account's time zone
    caller: str | None = None  # a phone number, or a device username: a call from that device


@dataclass(frozen=True)
class _Start:
    account: Account
    context: str
    destination: str
    device: str = ""


async def explain(ctx: Context, request: RouteTest) -> Reply:
    async with ctx.sessions() as session:
        start = await _start(session, ctx, request)
        zone = _zone(start.account.timezone)
        when = _moment(request.at, zone) if request.at else ctx.clock()
        result = await dialplan.plan(
            session,
            ctx.settings,
            context=start.context,
            destination=start.destination,
            caller=request.caller or "",
            now=when,
            device=start.device,
        )
    local = when.astimezone(ZoneInfo(zone))
    steps = "\n".join(f"{n}. {step}" for n, step in enumerate(result.steps, 1))
    if not result.found:
        steps += '\nThe switch would be told "not found" and use its own dialplan.'
    fields = [
        ("Account", start.account.number),
        ("At", f"{local:%a %Y-%m-%d %H:%M} ({zone})"),
    ]
    if request.caller:
        fields.append(("From", request.caller))
    table = None
    if ctx.actor.is_staff and result.found:
        variables = [("set", f"{k}={v}") for k, v in result.variables.items()]
        table = Table(("application", "data"), tuple(variables + result.actions))
    return Reply(
        title=f"What a call to {request.number} does",
        text=steps,
        fields=tuple(fields),
        table=table,
    )


async def _start(session: AsyncSession, ctx: Context, request: RouteTest) -> _Start:
    visible = await visible_accounts(session, ctx.actor)
    if request.caller:
        device = await session.scalar(select(SipDevice).where(SipDevice.username == request.caller))
        if device is not None and (visible is None or device.account_id in visible):
            context = account_context(device.account.number)
            dialled = "".join(request.number.split())  # as a phone sends it: no spaces
            return _Start(device.account, context, dialled, device.username)
    numbers = dialplan.did_candidates(request.number, ctx.settings.fax_country)
    if not numbers:
        raise Invalid(
            f"{request.number!r} is not a phone number; give a number of yours, e.g. "
            "+31201234567 (or an extension with from:DEVICE).",
            {"number": "not a phone number"},
        )
    did = await session.scalar(select(Did).where(Did.number.in_(numbers)))
    if did is None or (visible is not None and did.account_id not in visible):
        raise NotFound(f"{request.number} is not one of the numbers you may see.")
    return _Start(did.account, PUBLIC_CONTEXT, did.number)


def _zone(name: str) -> str:
    """The account's time zone, or UTC when it names none we know (the dialplan does so too)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def _moment(text: str, zone: str) -> datetime:
    """`at:` in the account's time zone -> that moment."""
    for pattern in AT_FORMATS:
        try:
            naive = datetime.strptime(text.strip(), pattern)
        except ValueError:
            continue
        return naive.replace(tzinfo=ZoneInfo(zone))
    raise Invalid(
        f"at:{text} is not a time; write it as YYYY-MM-DDTHH:MM, e.g. at:2026-12-25T10:00 "
        f"(in the account's time zone, {zone}).",
        {"at": "not YYYY-MM-DDTHH:MM"},
    )
