"""Number porting: a request checked in full, moved through its states by staff, and its numbers
made the account's DIDs once the port is done ("Opgeleverd").

draft (waiting for the signed letter) -> submitted -> accepted | rejected | delayed ->
scheduled -> completed, or cancelled on the way. Every step is a `PortEvent`: the request's
history, and what the front doors tell the support thread, the customer's DM and the customer's
mailbox (they deliver events after the commit; `ctx.nudge("port")` wakes them).
"""

from __future__ import annotations

import enum
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import pypdf
from pypdf.errors import PdfReadError
from sqlalchemy import CursorResult, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers import audit, orders
from c2bot.handlers.accounts import scoped
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.permissions import check_staff, may_act_on
from c2bot.handlers.portcheck import (
    RUNNING,
    NewPort,
    Problems,
    check_new_port,
    date_problem,
    dids_in,
    is_working_day,
    local_today,
    show_day,
    working_days_until,
)
from c2bot.handlers.portnumbers import MAX_NUMBERS, NumberRange
from c2bot.handlers.portview import REJECT_CODES, PortView, port_view, render_letter
from c2bot.handlers.replies import Reply, Table
from c2bot.storage.models import (
    PORT_FINAL,
    Account,
    Did,
    Person,
    PortDocument,
    PortEvent,
    PortRange,
    PortRequest,
    PortState,
    Role,
)

WAKE = "port"  # the nudge that tells the front doors new port events are committed
TRANSITIONS: dict[PortState, frozenset[PortState]] = {
    PortState.DRAFT: frozenset({PortState.SUBMITTED, PortState.CANCELLED}),
    PortState.SUBMITTED: frozenset(
        {PortState.ACCEPTED, PortState.REJECTED, PortState.DELAYED, PortState.CANCELLED}
    ),
    PortState.ACCEPTED: frozenset({PortState.SCHEDULED, PortState.DELAYED, PortState.CANCELLED}),
    PortState.DELAYED: frozenset(
        {
            PortState.ACCEPTED,
            PortState.REJECTED,
            PortState.DELAYED,
            PortState.SCHEDULED,
            PortState.CANCELLED,
        }
    ),
    PortState.SCHEDULED: frozenset(
        {PortState.COMPLETED, PortState.SCHEDULED, PortState.DELAYED, PortState.CANCELLED}
    ),
}
STAFF_STATES = (
    PortState.ACCEPTED,
    PortState.REJECTED,
    PortState.DELAYED,
    PortState.SCHEDULED,
    PortState.COMPLETED,
)
# A customer cancels until the date is fixed with the donor; then support does.
CUSTOMER_CANCELS = (PortState.DRAFT, PortState.SUBMITTED, PortState.ACCEPTED, PortState.DELAYED)
SIGNED_MAX_BYTES = 10 * 1024 * 1024
SIGNED_KINDS = {b"%PDF-": "application/pdf", b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png"}
STAFF_REMIND_WITHIN = 2  # working days before the porting date
CUSTOMER_REMIND_AFTER = timedelta(days=1)
CUSTOMER_REMIND_EVERY = timedelta(days=2)
CUSTOMER_REMINDERS_MAX = 5
LETTER_AGAIN_AFTER = timedelta(minutes=10)


class EventKind(enum.StrEnum):
    CREATED = "created"
    LETTER = "letter"  # the letter sent again
    SIGNED = "signed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DELAYED = "delayed"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REMINDER = "reminder"  # staff: the date is close and the request is not scheduled
    LETTER_REMINDER = "letter-reminder"  # customer: the letter is still not signed


# Events that carry the letter to the customer (mail attachment, DM upload).
LETTER_EVENTS = frozenset({EventKind.CREATED, EventKind.LETTER, EventKind.LETTER_REMINDER})


# --- making a request -------------------------------------------------------------------------


@dataclass(frozen=True)
class PortCreated:
    view: PortView
    duplicate: bool = False

    def reply(self) -> Reply:
        view = self.view
        if self.duplicate:
            return Reply(title=f"Port request #{view.number} was made already; nothing new.")
        where = view.contact_email or "the account's address"
        text = (
            f"The letter of authorisation is on its way to {where}: sign it and send it back "
            f"(reply to its mail with the signed letter attached, or `/port sign {view.number}` "
            "in Slack). The request goes to the current operator once it is signed."
        )
        if view.warnings:
            text = "\n".join(f"Warning: {w}" for w in view.warnings) + "\n\n" + text
        return Reply(
            title=f"Port request #{view.number} made: {view.numbers_label}.",
            fields=view.fields(),
            text=text,
        )


async def create_port(ctx: Context, request: NewPort) -> PortCreated:
    """Check, store as draft (waiting for the signed letter), and tell everyone."""
    ref = request.source_ref or ctx.request_ref
    if ref:
        existing = await _request_by_ref(ctx, ref)
        if existing is not None:
            return PortCreated(existing, duplicate=True)
    checked = await check_new_port(ctx, request)
    async with ctx.sessions.begin() as session:
        port = PortRequest(
            account_id=checked.account_id,
            requester_id=ctx.actor.person_id,
            company=request.company.strip(),
            contact_name=request.contact.strip(),
            contact_email=checked.email or await _default_email(session, ctx, checked.account_id),
            street=request.street.strip(),
            house_number=request.house.strip(),
            house_addition=request.addition.strip(),
            postcode=checked.postcode,
            city=request.city.strip(),
            donor=request.donor.strip(),
            donor_customer=request.donor_customer.strip(),
            contract=checked.contract,
            line_type=checked.line_type,
            desired_date=checked.desired_date,
            warnings="\n".join(checked.warnings),
            source=ctx.channel,
            source_ref=ref,
            created_at=ctx.clock(),
            updated_at=ctx.clock(),
        )
        port.ranges = [
            PortRange(position=i, first=r.first, last=r.last, count=r.count)
            for i, r in enumerate(checked.ranges)
        ]
        session.add(port)
        await session.flush()
        total = sum(r.count for r in checked.ranges)
        note = (
            f"Port request #{port.id} made by {ctx.actor.label}: {total} number(s) from "
            f"{port.donor}, desired date {show_day(port.desired_date)}. Waiting for the signed "
            "letter of authorisation."
        )
        _event(session, ctx, port, EventKind.CREATED, note)
        await orders.follow_port(session, ctx, port)
        audit.record(
            session,
            ctx,
            "port.create",
            "port_request",
            port.id,
            port.account_id,
            numbers=total,
            donor=port.donor,
            desired_date=port.desired_date.isoformat(),
        )
        await session.flush()
        await session.refresh(port, ["account", "requester", "ranges"])
        view = port_view(port)
    ctx.nudge(WAKE)
    return PortCreated(view)


async def _request_by_ref(ctx: Context, ref: str) -> PortView | None:
    async with ctx.sessions() as session:
        port = await session.scalar(select(PortRequest).where(PortRequest.source_ref == ref))
        return port_view(port) if port is not None else None


async def _default_email(session: AsyncSession, ctx: Context, account_id: int) -> str:
    """Mail goes to whoever asked (a customer or reseller), else to the account's address."""
    if ctx.actor.email and not ctx.actor.is_staff:
        return ctx.actor.email.lower()
    account = await session.get(Account, account_id)
    return account.email.lower() if account is not None else ""


def _event(
    session: AsyncSession,
    ctx: Context,
    port: PortRequest,
    kind: EventKind,
    note: str,
    *,
    new_date: date | None = None,
    source_ref: str | None = None,
    staff: bool = True,
    customer: bool = True,
) -> PortEvent:
    event = PortEvent(
        request_id=port.id,
        at=ctx.clock(),
        kind=kind.value,
        state=port.state,
        actor_label=ctx.actor.label,
        channel=ctx.channel,
        note=note,
        new_date=new_date,
        source_ref=source_ref,
        notify_staff=staff,
        notify_customer=customer,
    )
    session.add(event)
    return event


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortFilter:
    state: PortState | None = None
    account: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    include_final: bool = False


async def list_ports(ctx: Context, query: PortFilter) -> Reply:
    """Requests the actor may see; running ones unless a state or `all` is asked for."""
    start, end = _day_or_none(query.date_from, "from"), _day_or_none(query.date_to, "to")
    async with ctx.sessions() as session:
        stmt = select(PortRequest).order_by(PortRequest.id.desc()).limit(200)
        stmt = await scoped(session, ctx, stmt, PortRequest.account_id, query.account)
        if query.state is not None:
            stmt = stmt.where(PortRequest.state == query.state)
        elif not query.include_final:
            stmt = stmt.where(PortRequest.state.in_(RUNNING))
        effective = func.coalesce(PortRequest.port_date, PortRequest.desired_date)
        if start is not None:
            stmt = stmt.where(effective >= start)
        if end is not None:
            stmt = stmt.where(effective <= end)
        views = [port_view(p) for p in await session.scalars(stmt)]
    if not views:
        return Reply(title="No port requests.")
    rows = tuple(
        (
            f"#{v.number}",
            v.account_number,
            v.state.value,
            (v.port_date or v.desired_date).isoformat(),
            v.numbers_label,
            v.donor,
            v.company,
        )
        for v in views
    )
    columns = ("Request", "Account", "State", "Date", "Numbers", "From", "Company")
    return Reply(title=f"{len(rows)} port request(s)", table=Table(columns, rows))


def _day_or_none(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(
            f"{name}: must be a date YYYY-MM-DD (got {text!r}).", {name: "a date"}
        ) from None


async def show_port(ctx: Context, number: int) -> PortView:
    async with ctx.sessions() as session:
        port = await _visible(session, ctx, number)
        events = await session.scalars(
            select(PortEvent).where(PortEvent.request_id == port.id).order_by(PortEvent.id)
        )
        return port_view(port, events)


async def _visible(
    session: AsyncSession, ctx: Context, number: int, lock: bool = False
) -> PortRequest:
    stmt = select(PortRequest).where(PortRequest.id == number)
    if lock:
        stmt = stmt.with_for_update(of=PortRequest)
    port = await session.scalar(stmt)
    if port is None or not await may_act_on(session, ctx.actor, port.account_id):
        raise NotFound(f"There is no port request #{number} you may see.")
    return port


async def letter_for(ctx: Context, number: int) -> tuple[str, bytes]:
    """The filled-in letter of authorisation, as (file name, PDF)."""
    view = await show_port(ctx, number)
    return render_letter(view, local_today(ctx, view.zone), ctx.settings.port_country)


async def send_letter_again(ctx: Context, number: int) -> PortView:
    """Mail the letter (and put it in the DM) again, for a request still waiting for it."""
    async with ctx.sessions.begin() as session:
        port = await _visible(session, ctx, number)
        if port.state is not PortState.DRAFT:
            raise Invalid(
                f"Port request #{number} is {port.state.value}: its signed letter is in already."
            )
        await _check_not_just_sent(session, ctx, port)
        note = f"Letter of authorisation sent again to {port.contact_email or 'the account'}."
        _event(session, ctx, port, EventKind.LETTER, note)
        audit.record(session, ctx, "port.letter", "port_request", port.id, port.account_id)
        view = port_view(port)
    ctx.nudge(WAKE)
    return view


async def _check_not_just_sent(session: AsyncSession, ctx: Context, port: PortRequest) -> None:
    """One letter mail per few minutes: asking again does not flood the contact's mailbox."""
    last = await session.scalar(
        select(func.max(PortEvent.at)).where(
            PortEvent.request_id == port.id,
            PortEvent.kind.in_([k.value for k in LETTER_EVENTS]),
        )
    )
    if last is not None and ctx.clock() - last < LETTER_AGAIN_AFTER:
        minutes = max(1, int((ctx.clock() - last).total_seconds() // 60))
        raise Invalid(
            f"The letter for port request #{port.id} was sent {minutes} minute(s) ago to "
            f"{port.contact_email or 'the account'}; look in the spam folder, or ask again later."
        )


# --- changes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusChange:
    number: int
    state: PortState
    reason: str = ""
    code: str | None = None
    new_date: str | None = None
    source_ref: str | None = None


async def check_status_change(ctx: Context, change: StatusChange) -> date | None:
    """What `set_status` refuses before it touches anything (staff, values, the date)."""
    check_staff(ctx.actor, "change the state of a port request (the current operator answers)")
    if change.state not in STAFF_STATES:
        words = ", ".join(s.value for s in STAFF_STATES)
        raise Invalid(f"Staff set a port request to {words}; to cancel, use `port cancel`.")
    problems = Problems()
    if change.state is PortState.REJECTED:
        if (change.code or "") not in REJECT_CODES:
            codes = ", ".join(REJECT_CODES)
            problems.add("code", f"Give the rejection's reason code, one of: {codes}.")
        elif change.code == "other" and not change.reason.strip():
            problems.add("reason", 'Say why in reason:"..." (the code is other).')
    if change.state is PortState.DELAYED and not change.reason.strip():
        problems.add("reason", 'Say why the current operator delays it: reason:"...".')
    day = _status_date(ctx, change, problems)
    problems.check()
    return day


def _status_date(ctx: Context, change: StatusChange, problems: Problems) -> date | None:
    needs = change.state is PortState.DELAYED
    if not change.new_date:
        if needs:
            problems.add("date", "Give the new expected date: date:YYYY-MM-DD.")
        return None
    try:
        day = date.fromisoformat(change.new_date.strip())
    except ValueError:
        problems.add("date", f"{change.new_date!r} is not a date: write it as YYYY-MM-DD.")
        return None
    if change.state not in (PortState.DELAYED, PortState.SCHEDULED):
        problems.add("date", f"A date goes with delayed or scheduled, not {change.state.value}.")
        return None
    problem = date_problem(day, local_today(ctx, None), 0, ctx.settings.port_country)
    if problem:
        problems.add("date", problem)
    return day


async def set_status(ctx: Context, change: StatusChange) -> PortView:
    """Staff move a request to what the current operator answered, or to done."""
    day = await check_status_change(ctx, change)
    ref = change.source_ref or ctx.request_ref
    async with ctx.sessions.begin() as session:
        port = await _visible(session, ctx, change.number, lock=True)
        if ref and await _step_taken(session, ref):
            return port_view(port)
        check_transition(port.id, port.state, change.state)
        note = await _apply(session, ctx, port, change, day)
        await orders.follow_port(session, ctx, port)
        _event(
            session, ctx, port, EventKind(change.state.value), note, new_date=day, source_ref=ref
        )
        audit.record(
            session,
            ctx,
            "port.status",
            "port_request",
            port.id,
            port.account_id,
            state=change.state.value,
            code=change.code,
            reason=change.reason,
            date=day.isoformat() if day else None,
        )
        view = port_view(port)
    ctx.nudge(WAKE)
    return view


async def _step_taken(session: AsyncSession, ref: str) -> bool:
    return await session.scalar(select(PortEvent.id).where(PortEvent.source_ref == ref)) is not None


def check_transition(number: int, state: PortState, target: PortState) -> None:
    """Refuse, in words, a step the workflow does not take from `state`."""
    allowed = TRANSITIONS.get(state, frozenset())
    if target in allowed:
        return
    if not allowed:
        raise Invalid(f"Port request #{number} is {state.value}; it does not change anymore.")
    options = " or ".join(sorted(s.value for s in allowed))
    hint = {
        PortState.DRAFT: " It waits for the signed letter of authorisation first.",
        PortState.ACCEPTED: " Schedule it first: `port status ID scheduled date:YYYY-MM-DD`.",
        PortState.SUBMITTED: " The current operator has not answered yet.",
    }.get(state, "")
    raise Invalid(
        f"Port request #{number} is {state.value}; it can become {options}, "
        f"not {target.value}.{hint}"
    )


async def _apply(
    session: AsyncSession, ctx: Context, port: PortRequest, change: StatusChange, day: date | None
) -> str:
    """Change the request; the sentence that tells everybody what happened."""
    port.state, port.updated_at = change.state, ctx.clock()
    donor = port.donor
    if change.state is PortState.ACCEPTED:
        port.reason_code, port.reason = "", ""
        return f"{donor} accepted the port of request #{port.id}."
    if change.state is PortState.REJECTED:
        port.reason_code, port.reason = change.code or "other", change.reason.strip()
        why = REJECT_CODES[port.reason_code] + (f" ({port.reason})" if port.reason else "")
        return f"{donor} rejected the port of request #{port.id}: {why}."
    if change.state is PortState.DELAYED:
        port.reason, port.port_date = change.reason.strip(), day or port.port_date
        when = f" to {show_day(day)}" if day else ""
        return f"{donor} delayed the port of request #{port.id}{when}: {port.reason}."
    if change.state is PortState.SCHEDULED:
        port.port_date = day or port.port_date or port.desired_date
        return f"The port of request #{port.id} is scheduled for {show_day(port.port_date)}."
    added = await _make_dids(session, port)
    port.completed_at = ctx.clock()
    return (
        f"The port of request #{port.id} is done (Opgeleverd): {added} number(s) are now "
        "numbers of this account, with no forwarding yet. Set where their calls go with "
        "`/route did set NUMBER TYPE DESTINATION`."
    )


async def _make_dids(session: AsyncSession, port: PortRequest) -> int:
    """The request's numbers as DIDs of its account (forwarding unset)."""
    wanted: list[str] = []
    elsewhere: list[str] = []
    for row in port.ranges:
        found = NumberRange(row.first, row.first, row.last)
        taken = dict(await dids_in(session, found, limit=MAX_NUMBERS))
        elsewhere += [n for n, owner in taken.items() if owner != port.account_id]
        wanted += [n for n in found.numbers() if n not in taken]
    if elsewhere:
        raise Invalid(
            f"Port request #{port.id} cannot be completed: {', '.join(elsewhere[:5])} already "
            "belong to another account. Move or remove those numbers first."
        )
    if wanted:
        await session.execute(
            insert(Did), [{"number": n, "account_id": port.account_id} for n in wanted]
        )
    return sum(row.count for row in port.ranges)


async def cancel_port(ctx: Context, number: int, reason: str = "") -> PortView:
    ref = ctx.request_ref
    async with ctx.sessions.begin() as session:
        port = await _visible(session, ctx, number, lock=True)
        if ref and await _step_taken(session, ref):
            return port_view(port)
        check_transition(port.id, port.state, PortState.CANCELLED)
        if not ctx.actor.is_staff and port.state not in CUSTOMER_CANCELS:
            when = show_day(port.port_date) if port.port_date else "its date"
            raise NotAllowed(
                f"Port request #{number} is scheduled with {port.donor} for {when}; "
                "ask support to cancel it (`/case new`)."
            )
        port.state, port.updated_at = PortState.CANCELLED, ctx.clock()
        port.reason = reason.strip()
        await orders.follow_port(session, ctx, port)
        why = f": {port.reason}" if port.reason else ""
        note = f"Port request #{number} was cancelled by {ctx.actor.label}{why}."
        _event(session, ctx, port, EventKind.CANCELLED, note, source_ref=ref)
        audit.record(
            session, ctx, "port.cancel", "port_request", port.id, port.account_id, reason=reason
        )
        view = port_view(port)
    ctx.nudge(WAKE)
    return view


# --- the signed letter ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedLetter:
    filename: str
    content_type: str
    data: bytes = field(repr=False)


def check_signed_file(letter: SignedLetter) -> str:
    """The file's real type if it is a readable PDF or picture; else `Invalid` in words."""
    if not letter.data:
        raise Invalid(f"{letter.filename} is empty.", {"file": "empty file"})
    if len(letter.data) > SIGNED_MAX_BYTES:
        raise Invalid(
            f"{letter.filename} is larger than {SIGNED_MAX_BYTES // (1024 * 1024)} MB.",
            {"file": "too large"},
        )
    kind = next((t for magic, t in SIGNED_KINDS.items() if letter.data.startswith(magic)), None)
    if kind is None:
        raise Invalid(
            f"{letter.filename} is not a PDF, JPEG or PNG; scan or photograph the signed letter.",
            {"file": "not a PDF or picture"},
        )
    if kind == "application/pdf":
        try:
            pages = len(pypdf.PdfReader(io.BytesIO(letter.data)).pages)
        except (PdfReadError, ValueError, OSError):
            pages = 0
        if pages == 0:
            raise Invalid(
                f"{letter.filename} cannot be read as a PDF; send it again.", {"file": "unreadable"}
            )
    return kind


async def check_may_sign(ctx: Context, number: int) -> PortView:
    """Refuse, before a file is fetched, what `sign_port` would refuse."""
    async with ctx.sessions() as session:
        port = await _visible(session, ctx, number)
        _check_signable(port)
        return port_view(port)


def _check_signable(port: PortRequest) -> None:
    if port.state in PORT_FINAL:
        raise Invalid(
            f"Port request #{port.id} is {port.state.value}; it takes no letter anymore.",
            {"request": "closed"},
        )


async def sign_port(
    ctx: Context, number: int, letter: SignedLetter, source_ref: str | None = None
) -> PortView:
    """Keep the signed letter; a draft becomes submitted (the carrier asks the donor)."""
    kind = check_signed_file(letter)
    ref = source_ref or ctx.request_ref
    async with ctx.sessions.begin() as session:
        port = await _visible(session, ctx, number, lock=True)
        if ref and await _step_taken(session, ref):
            return port_view(port)
        _check_signable(port)
        first = port.state is PortState.DRAFT
        if first:
            port.state = PortState.SUBMITTED
        port.letter_signed_at, port.updated_at = ctx.clock(), ctx.clock()
        await orders.follow_port(session, ctx, port)
        note = (
            f"Signed letter of authorisation for request #{port.id} received "
            f"({letter.filename}, via {ctx.channel.value})"
            + (
                f"; the request is submitted to {port.donor}."
                if first
                else "; it replaces the earlier one."
            )
        )
        event = _event(session, ctx, port, EventKind.SIGNED, note, source_ref=ref)
        await session.flush()
        session.add(
            PortDocument(
                request_id=port.id,
                event_id=event.id,
                filename=letter.filename[:255],
                content_type=kind,
                data=letter.data,
                uploaded_at=ctx.clock(),
                uploaded_by=ctx.actor.label,
                channel=ctx.channel,
            )
        )
        audit.record(
            session,
            ctx,
            "port.sign",
            "port_request",
            port.id,
            port.account_id,
            file=letter.filename,
        )
        view = port_view(port)
    ctx.nudge(WAKE)
    return view


async def signed_letter(session: AsyncSession, event_id: int) -> PortDocument | None:
    return await session.scalar(select(PortDocument).where(PortDocument.event_id == event_id))


# --- reminders --------------------------------------------------------------------------------


async def due_port_reminders(ctx: Context) -> int:
    """Housekeeping: remind staff of close dates not scheduled, customers of unsigned letters.

    Each reminder claims its request first (a conditional update), so several processes running
    housekeeping remind once.
    """
    reminded = await _remind_staff(ctx) + await _remind_customers(ctx)
    if reminded:
        ctx.nudge(WAKE)
    return reminded


async def _remind_staff(ctx: Context) -> int:
    country = ctx.settings.port_country
    waiting = (PortState.SUBMITTED, PortState.ACCEPTED, PortState.DELAYED)
    async with ctx.sessions() as session:
        candidates = list(
            await session.scalars(select(PortRequest).where(PortRequest.state.in_(waiting)))
        )
    reminded = 0
    for port in candidates:
        today = local_today(ctx, port.account.timezone)
        day = port.port_date or port.desired_date
        if not is_working_day(today, country):
            continue
        if working_days_until(today, day, country) > STAFF_REMIND_WITHIN:
            continue
        start_of_day = datetime.combine(today, datetime.min.time(), ZoneInfo(port.account.timezone))
        close = _how_close(today, day, country)
        note = (
            f"Port request #{port.id}: the porting date {show_day(day)} {close} and the "
            f"request is still {port.state.value}, not scheduled."
        )
        claim = Claim(PortRequest.staff_reminded_at, start_of_day, waiting)
        reminded += await _remind(ctx, port.id, claim, EventKind.REMINDER, note, customer=False)
    return reminded


def _how_close(today: date, day: date, country: str) -> str:
    if day < today:
        return "has passed"
    left = working_days_until(today, day, country)
    return "is today" if left == 0 else f"is in {left} working day{'s' if left > 1 else ''}"


async def _remind_customers(ctx: Context) -> int:
    now = ctx.clock()
    async with ctx.sessions() as session:
        drafts = list(
            await session.scalars(
                select(PortRequest).where(
                    PortRequest.state == PortState.DRAFT,
                    PortRequest.created_at <= now - CUSTOMER_REMIND_AFTER,
                    PortRequest.customer_reminders < CUSTOMER_REMINDERS_MAX,
                )
            )
        )
    reminded = 0
    for port in drafts:
        count = port.customer_reminders + 1
        note = (
            f"Reminder {count} of {CUSTOMER_REMINDERS_MAX}: the letter of authorisation for port "
            f"request #{port.id} is not signed yet, so nothing is asked of {port.donor}. "
            f"The desired date is {show_day(port.desired_date)}."
        )
        claim = Claim(
            PortRequest.customer_reminded_at, now - CUSTOMER_REMIND_EVERY, (PortState.DRAFT,)
        )
        reminded += await _remind(ctx, port.id, claim, EventKind.LETTER_REMINDER, note)
    return reminded


@dataclass(frozen=True)
class Claim:
    """A reminder column, the moment before which an earlier reminder no longer counts, and the
    states the request must still be in (it may have moved since it was read)."""

    column: Any
    before: datetime
    states: tuple[PortState, ...]


async def _remind(
    ctx: Context, port_id: int, claim: Claim, kind: EventKind, note: str, customer: bool = True
) -> bool:
    """Mark the request reminded and add the reminder, unless another process just did."""
    column = claim.column
    values: dict[str, Any] = {column.key: ctx.clock()}
    stmt = update(PortRequest).where(
        PortRequest.id == port_id,
        PortRequest.state.in_(claim.states),
        or_(column.is_(None), column <= claim.before),
    )
    if column is PortRequest.customer_reminded_at:
        values["customer_reminders"] = PortRequest.customer_reminders + 1
        stmt = stmt.where(PortRequest.customer_reminders < CUSTOMER_REMINDERS_MAX)
    async with ctx.sessions.begin() as session:
        result = await session.execute(stmt.values(values))
        if cast(CursorResult[Any], result).rowcount != 1:
            return False
        port = await session.get(PortRequest, port_id)
        assert port is not None
        _event(session, ctx, port, kind, note, customer=customer)
        return True


# --- who hears about a request ----------------------------------------------------------------


async def customer_on_slack(session: AsyncSession, port: PortRequest) -> str | None:
    """The requester's Slack id, unless staff made it (they follow the support thread)."""
    if port.requester_id is None:
        return None
    person = await session.get(Person, port.requester_id)
    if person is None or person.role in (Role.STAFF, Role.ADMIN):
        return None
    return person.slack_user_id
