"""Support cases: open, list, show, reply, note, assign, prioritise, pend, close, reopen, remind.

Follows the carrier portal's case form: a type of question, a contact of the account, a priority
whose meaning is spelled out, a subject, a description and optional files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers import audit
from c2bot.handlers.accounts import scoped, target_account
from c2bot.handlers.business_time import due_at
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.events import CaseEvent, CaseEventKind
from c2bot.handlers.permissions import check_staff, visible_accounts
from c2bot.handlers.replies import Reply, Table
from c2bot.storage.models import (
    Account,
    Case,
    CaseFile,
    CaseMessage,
    CaseStatus,
    CaseType,
    Channel,
    Contact,
    MailAddress,
    MessageKind,
    Priority,
    ReplyToken,
)

CASE_TYPES = {
    CaseType.TECHNICAL: "Technical question about a service",
    CaseType.INVOICE: "Question about my invoice / financial details",
    CaseType.PRICING: "Question about pricing",
}
PRIORITY_MEANINGS = {
    Priority.LOW: "Non-urgent change or question, no interruption of service",
    Priority.NORMAL: "A change or question, services are working",
    Priority.HIGH: "(Partial) outage on selected services, a workaround exists",
    Priority.HIGHEST: "Complete outage with big impact, no alternative",
}
SUBJECT_MAX = 250
LABEL_MAX = 300
DESCRIPTION_MAX = 20_000


@dataclass(frozen=True)
class FileUpload:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class NewCase:
    type: CaseType
    priority: Priority
    subject: str
    description: str
    account: str | None = None
    contact: str | None = None
    files: tuple[FileUpload, ...] = ()
    reply_by_email: bool = False
    source_ref: str | None = None  # the opening message's id at its front door (a Message-ID)


@dataclass(frozen=True)
class CaseFilter:
    status: CaseStatus | None = None
    include_closed: bool = False
    account: str | None = None
    priority: Priority | None = None
    assigned_to_me: bool = False


@dataclass(frozen=True)
class CaseLine:
    at: datetime
    kind: MessageKind
    author: str
    body: str
    verified: bool


@dataclass(frozen=True)
class CaseView:
    """Everything a front door needs to show one case."""

    number: int
    account_number: str
    company: str
    type: CaseType
    priority: Priority
    status: CaseStatus
    subject: str
    description: str
    contact: str
    requester: str
    assignee: str | None
    source: Channel
    created_at: datetime
    first_response_due: datetime
    first_response_at: datetime | None
    lines: tuple[CaseLine, ...] = field(default=())
    timezone: str = "UTC"

    def local(self, moment: datetime) -> str:
        return local_time(moment, self.timezone)

    def as_reply(self) -> Reply:
        fields = (
            ("Account", f"{self.account_number} {self.company}"),
            ("Type", CASE_TYPES[self.type]),
            ("Priority", f"{self.priority.value.title()}: {PRIORITY_MEANINGS[self.priority]}"),
            ("Status", self.status.value),
            ("Contact", self.contact),
            ("Assignee", self.assignee or "nobody yet"),
            ("Opened", f"{self.local(self.created_at)} via {self.source.value}"),
            ("First response", _first_response(self)),
        )
        history = "\n".join(
            f"[{self.local(line.at)}] {line.author}{_line_mark(line)}: {line.body}"
            for line in self.lines
        )
        return Reply(
            title=f"Case #{self.number}: {self.subject}",
            text=self.description + (f"\n\n{history}" if history else ""),
            fields=fields,
        )


def local_time(moment: datetime, zone: str) -> str:
    """A time as an account reads it: in its own time zone, with the zone's name."""
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z}"


def _first_response(view: CaseView) -> str:
    if view.first_response_at:
        return f"answered {view.local(view.first_response_at)}"
    return f"due {view.local(view.first_response_due)}"


def _line_mark(line: CaseLine) -> str:
    if line.kind is MessageKind.NOTE:
        return " (internal note)"
    return "" if line.verified else " (UNVERIFIED sender)"


def case_view(case: Case, messages: list[CaseMessage] | None = None) -> CaseView:
    requester = case.requester
    return CaseView(
        number=case.id,
        timezone=case.account.timezone,
        account_number=case.account.number,
        company=case.account.company,
        type=case.type,
        priority=case.priority,
        status=case.status,
        subject=case.subject,
        description=case.description,
        contact=f"{case.contact_name} <{case.contact_email}>"
        if case.contact_email
        else case.contact_name,
        requester=(requester.name or requester.email or requester.slack_user_id or "")
        if requester
        else case.contact_name,
        assignee=(case.assignee.name or case.assignee.slack_user_id) if case.assignee else None,
        source=case.source,
        created_at=case.created_at,
        first_response_due=case.first_response_due,
        first_response_at=case.first_response_at,
        lines=tuple(
            CaseLine(m.created_at, m.kind, m.author_label, m.body, m.verified)
            for m in messages or []
        ),
    )


def validate_new_case(request: NewCase) -> None:
    problems: dict[str, str] = {}
    if not request.subject.strip():
        problems["subject"] = "Give the case a subject."
    elif len(request.subject) > SUBJECT_MAX:
        problems["subject"] = f"Keep the subject under {SUBJECT_MAX} characters."
    if not request.description.strip():
        problems["description"] = "Describe the question or the problem."
    elif len(request.description) > DESCRIPTION_MAX:
        problems["description"] = f"Keep the description under {DESCRIPTION_MAX} characters."
    if problems:
        raise Invalid(" ".join(problems.values()), problems)


async def check_new_case(ctx: Context, request: NewCase) -> None:
    """Raise what `open_case` would refuse, writing nothing: a form checks before it closes."""
    validate_new_case(request)
    async with ctx.sessions() as session:
        account = await target_account(session, ctx, request.account, "the case")
        await _contact_for(session, ctx, account, request.contact)


async def open_case(ctx: Context, request: NewCase) -> CaseView:
    """Open a case; the same request again (same door, same `source_ref`) opens nothing new."""
    validate_new_case(request)
    now = ctx.clock()
    async with ctx.sessions.begin() as session:
        earlier = await _opened_by(session, ctx.channel, request.source_ref)
        if earlier is not None:
            return case_view(earlier)
        account = await target_account(session, ctx, request.account, "the case")
        contact_name, contact_email = await _contact_for(session, ctx, account, request.contact)
        target = ctx.settings.targets[request.priority.value]
        case = Case(
            account_id=account.id,
            type=request.type,
            priority=request.priority,
            subject=request.subject.strip(),
            description=request.description.strip(),
            contact_name=contact_name,
            contact_email=contact_email,
            requester_id=ctx.actor.person_id,
            source=ctx.channel,
            source_ref=request.source_ref,
            reply_by_email=request.reply_by_email or ctx.channel is Channel.EMAIL,
            created_at=now,
            first_response_due=due_at(now, target, account.timezone, ctx.settings.business_day),
        )
        session.add(case)
        await session.flush()
        _add_files(session, case.id, None, request.files)
        audit.record(
            session,
            ctx,
            "case.open",
            "case",
            case.id,
            account.id,
            priority=request.priority.value,
            type=request.type.value,
        )
        await ctx.events.within(session, CaseEvent(CaseEventKind.OPENED, case.id))
        view = case_view(await _load(session, case.id))
    await ctx.events.after(CaseEvent(CaseEventKind.OPENED, case.id))
    return view


async def _opened_by(session: AsyncSession, channel: Channel, ref: str | None) -> Case | None:
    if ref is None:
        return None
    return await session.scalar(
        select(Case).where(Case.source == channel, Case.source_ref == ref).limit(1)
    )


async def _contact_for(
    session: AsyncSession, ctx: Context, account: Account, wanted: str | None
) -> tuple[str, str | None]:
    contacts = list(
        await session.scalars(
            select(Contact).where(Contact.account_id == account.id).order_by(Contact.id)
        )
    )
    if wanted:
        key = wanted.strip().lower()
        for contact in contacts:
            if key in (contact.email.lower(), contact.name.lower(), str(contact.id)):
                return contact.name, contact.email
        names = ", ".join(f"{c.name} <{c.email}>" for c in contacts) or "none yet"
        raise Invalid(
            f"{wanted!r} is not a contact of account {account.number} (its contacts: {names}).",
            {"contact": "Pick one of the account's contacts."},
        )
    email = (ctx.actor.email or "").lower()
    for contact in contacts:
        if email and contact.email.lower() == email:
            return contact.name, contact.email
    return ctx.actor.label, ctx.actor.email


def _add_files(
    session: AsyncSession, case_id: int, message_id: int | None, files: tuple[FileUpload, ...]
) -> None:
    for upload in files:
        session.add(
            CaseFile(
                case_id=case_id,
                message_id=message_id,
                filename=upload.filename,
                content_type=upload.content_type,
                data=upload.data,
            )
        )


async def _load(session: AsyncSession, number: int) -> Case:
    case = await session.get(Case, number, populate_existing=True)
    if case is None:
        raise NotFound(f"There is no case #{number}.")
    return case


async def load_visible_case(session: AsyncSession, ctx: Context, number: int) -> Case:
    """The case, if the actor may see it; otherwise 'not found', so existence does not leak."""
    case = await session.get(Case, number)
    visible = await visible_accounts(session, ctx.actor)
    if case is None or (visible is not None and case.account_id not in visible):
        raise NotFound(f"There is no case #{number} among the cases you may see.")
    return case


async def list_cases(ctx: Context, query: CaseFilter) -> Reply:
    async with ctx.sessions() as session:
        stmt = select(Case).order_by(Case.id.desc()).limit(200)
        stmt = await scoped(session, ctx, stmt, Case.account_id, query.account)
        if query.status:
            stmt = stmt.where(Case.status == query.status)
        elif not query.include_closed:
            stmt = stmt.where(Case.status != CaseStatus.CLOSED)
        if query.priority:
            stmt = stmt.where(Case.priority == query.priority)
        if query.assigned_to_me:
            stmt = stmt.where(Case.assignee_id == ctx.actor.person_id)
        cases = list(await session.scalars(stmt))
    rows = tuple(
        (
            f"#{c.id}",
            c.account.number,
            c.priority.value,
            c.status.value,
            c.subject[:60],
            (c.assignee.name or c.assignee.slack_user_id or "") if c.assignee else "-",
            f"{c.created_at:%Y-%m-%d %H:%M}",
        )
        for c in cases
    )
    columns = ("Case", "Account", "Priority", "Status", "Subject", "Assignee", "Opened (UTC)")
    title = f"{len(rows)} case(s)" if rows else "No cases match."
    return Reply(title=title, table=Table(columns, rows) if rows else None)


async def show_case(ctx: Context, number: int) -> CaseView:
    async with ctx.sessions() as session:
        case = await load_visible_case(session, ctx, number)
        stmt = select(CaseMessage).where(CaseMessage.case_id == number).order_by(CaseMessage.id)
        if not ctx.actor.is_staff:
            stmt = stmt.where(CaseMessage.kind != MessageKind.NOTE)
        messages = list(await session.scalars(stmt))
        view = case_view(case, messages)
        address = (case.contact_email or "").lower()
        failing = await session.get(MailAddress, address) if address else None
    if failing is not None and failing.failing:
        note = f"mail to this address bounces ({failing.last_status})"
        view = replace(view, contact=f"{view.contact}: {note}")
    return view


async def revoke_reply_addresses(ctx: Context, number: int) -> int:
    """Retire a case's case+<token>@ addresses (say, one leaked to spammers); returns how many.

    Mail to them is refused from then on; the next mail to the customer carries a new one.
    """
    check_staff(ctx.actor, "revoke a case's reply addresses")
    async with ctx.sessions.begin() as session:
        case = await load_visible_case(session, ctx, number)
        result = await session.execute(
            update(ReplyToken)
            .where(ReplyToken.case_id == case.id, ReplyToken.revoked_at.is_(None))
            .values(revoked_at=ctx.clock())
        )
        revoked = int(cast(CursorResult[Any], result).rowcount or 0)
        audit.record(
            session,
            ctx,
            "case.revoke_reply_addresses",
            "case",
            case.id,
            case.account_id,
            revoked=revoked,
        )
    return revoked


async def _transition(
    ctx: Context, number: int, action: str, kind: CaseEventKind, change: CaseChange
) -> CaseView:
    async with ctx.sessions.begin() as session:
        case = await load_visible_case(session, ctx, number)
        summary = change(case)
        _system_line(session, ctx, case, summary)
        audit.record(session, ctx, action, "case", case.id, case.account_id, summary=summary)
        event = CaseEvent(kind, case.id, summary=summary)
        await ctx.events.within(session, event)
        view = case_view(await _load(session, case.id))
    await ctx.events.after(event)
    return view


class CaseChange:
    """A change to a case that returns the sentence describing it."""

    def __call__(self, case: Case) -> str:
        raise NotImplementedError


def _system_line(session: AsyncSession, ctx: Context, case: Case, summary: str) -> None:
    session.add(
        CaseMessage(
            case_id=case.id,
            kind=MessageKind.SYSTEM,
            channel=ctx.channel,
            author_id=ctx.actor.person_id,
            author_label=ctx.actor.label,
            body=summary,
            created_at=ctx.clock(),
        )
    )


@dataclass
class _Close(CaseChange):
    ctx: Context

    def __call__(self, case: Case) -> str:
        if case.status is CaseStatus.CLOSED:
            raise Invalid(f"Case #{case.id} is already closed.")
        case.status, case.closed_at = CaseStatus.CLOSED, self.ctx.clock()
        return f"Closed by {self.ctx.actor.label}."


@dataclass
class _Reopen(CaseChange):
    ctx: Context

    def __call__(self, case: Case) -> str:
        if case.status is not CaseStatus.CLOSED:
            raise Invalid(f"Case #{case.id} is not closed (it is {case.status.value}).")
        case.status, case.closed_at = CaseStatus.OPEN, None
        return f"Reopened by {self.ctx.actor.label}."


@dataclass
class _Pending(CaseChange):
    ctx: Context

    def __call__(self, case: Case) -> str:
        check_staff(self.ctx.actor, "set a case to pending")
        if case.status is CaseStatus.CLOSED:
            raise Invalid(f"Case #{case.id} is closed; reopen it first.")
        case.status = CaseStatus.PENDING
        return f"Set to pending (waiting for the customer) by {self.ctx.actor.label}."


@dataclass
class _Priority(CaseChange):
    ctx: Context
    priority: Priority

    def __call__(self, case: Case) -> str:
        check_staff(self.ctx.actor, "change a case's priority")
        if case.priority is self.priority:
            raise Invalid(f"Case #{case.id} already has priority {self.priority.value}.")
        case.priority = self.priority
        return f"Priority set to {self.priority.value} by {self.ctx.actor.label}."


@dataclass
class _Assign(CaseChange):
    ctx: Context

    def __call__(self, case: Case) -> str:
        check_staff(self.ctx.actor, "take a case")
        if self.ctx.actor.person_id is None:
            raise Invalid("Only a linked staff member can be assigned a case.")
        case.assignee_id = self.ctx.actor.person_id
        return f"Assigned to {self.ctx.actor.label}."


async def close_case(ctx: Context, number: int) -> CaseView:
    return await _transition(ctx, number, "case.close", CaseEventKind.CLOSED, _Close(ctx))


async def reopen_case(ctx: Context, number: int) -> CaseView:
    return await _transition(ctx, number, "case.reopen", CaseEventKind.REOPENED, _Reopen(ctx))


async def set_pending(ctx: Context, number: int) -> CaseView:
    return await _transition(ctx, number, "case.pending", CaseEventKind.CHANGED, _Pending(ctx))


async def set_priority(ctx: Context, number: int, priority: Priority) -> CaseView:
    change = _Priority(ctx, priority)
    return await _transition(ctx, number, "case.priority", CaseEventKind.CHANGED, change)


async def assign_to_me(ctx: Context, number: int) -> CaseView:
    return await _transition(ctx, number, "case.assign", CaseEventKind.CHANGED, _Assign(ctx))


@dataclass(frozen=True)
class CaseMessageIn:
    """A message on a case from staff (reply or note) or from the customer."""

    number: int
    body: str
    files: tuple[FileUpload, ...] = ()
    slack_ts: str | None = None
    verified: bool = True
    author_label: str | None = None
    source_ref: str | None = None  # the message's id at its front door (a Message-ID)


async def staff_reply(ctx: Context, message: CaseMessageIn) -> int:
    """A staff answer: goes to the customer; the first one meets the first-response target."""
    check_staff(ctx.actor, "answer a case")
    return await _add_message(ctx, message, MessageKind.STAFF, CaseEventKind.STAFF_REPLIED)


async def add_note(ctx: Context, message: CaseMessageIn) -> int:
    """An internal note: stays on the staff side, always."""
    check_staff(ctx.actor, "add internal notes")
    return await _add_message(ctx, message, MessageKind.NOTE, CaseEventKind.NOTE_ADDED)


async def customer_reply(ctx: Context, message: CaseMessageIn) -> int:
    """The customer writes on its case; a closed case reopens (unless the sender is unverified)."""
    return await _add_message(ctx, message, MessageKind.CUSTOMER, CaseEventKind.CUSTOMER_REPLIED)


async def _add_message(
    ctx: Context, message: CaseMessageIn, kind: MessageKind, event_kind: CaseEventKind
) -> int:
    if not message.body.strip() and not message.files:
        raise Invalid("The message is empty.")
    async with ctx.sessions.begin() as session:
        case = await _case_for_message(session, ctx, message)
        row = CaseMessage(
            case_id=case.id,
            kind=kind,
            channel=ctx.channel,
            author_id=ctx.actor.person_id,
            author_label=(message.author_label or ctx.actor.label)[:LABEL_MAX],
            body=message.body.strip(),
            verified=message.verified,
            slack_ts=message.slack_ts,
            source_ref=message.source_ref,
            created_at=ctx.clock(),
        )
        session.add(row)
        await session.flush()
        _add_files(session, case.id, row.id, message.files)
        summary = _apply_message_effects(ctx, case, kind, message.verified)
        audit.record(
            session,
            ctx,
            f"case.{kind.value}",
            "case",
            case.id,
            case.account_id,
            message=row.id,
            verified=message.verified,
        )
        event = CaseEvent(event_kind, case.id, row.id, summary)
        await ctx.events.within(session, event)
    await ctx.events.after(event)
    return row.id


async def _case_for_message(session: AsyncSession, ctx: Context, message: CaseMessageIn) -> Case:
    if message.verified:
        return await load_visible_case(session, ctx, message.number)
    return await _load(session, message.number)


def _apply_message_effects(ctx: Context, case: Case, kind: MessageKind, verified: bool) -> str:
    if kind is MessageKind.STAFF:
        if case.first_response_at is None:
            case.first_response_at = ctx.clock()
        return ""
    if kind is MessageKind.CUSTOMER and verified and case.status is not CaseStatus.OPEN:
        was = case.status
        case.status, case.closed_at = CaseStatus.OPEN, None
        return f"The customer's reply set the case from {was.value} back to open."
    return ""


async def case_by_slack_thread(session: AsyncSession, channel: str, thread_ts: str) -> Case | None:
    return await session.scalar(
        select(Case).where(
            ((Case.slack_channel == channel) & (Case.slack_ts == thread_ts))
            | ((Case.customer_dm_channel == channel) & (Case.customer_dm_ts == thread_ts))
        )
    )


async def due_reminders(ctx: Context) -> list[int]:
    """Cases whose first-response target passes within the reminder lead; each reminded once."""
    now = ctx.clock()
    horizon = now + ctx.settings.reminder_before
    events: list[CaseEvent] = []
    async with ctx.sessions.begin() as session:
        cases = list(
            await session.scalars(
                select(Case)
                .where(
                    Case.first_response_at.is_(None),
                    Case.reminded_at.is_(None),
                    Case.status != CaseStatus.CLOSED,
                    Case.first_response_due <= horizon,
                )
                .order_by(Case.first_response_due)
                .limit(100)
                .with_for_update(skip_locked=True, of=Case)
            )
        )
        for case in cases:
            case.reminded_at = now
            left = case.first_response_due - now
            summary = (
                f"First-response target passed {_minutes(-left)} ago"
                if left.total_seconds() < 0
                else f"First-response target passes in {_minutes(left)}"
            )
            event = CaseEvent(CaseEventKind.REMINDER, case.id, summary=summary)
            await ctx.events.within(session, event)
            events.append(event)
    for event in events:
        await ctx.events.after(event)
    return [event.case_id for event in events]


def _minutes(span: timedelta) -> str:
    minutes = max(1, round(span.total_seconds() / 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
