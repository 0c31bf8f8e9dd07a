"""Inbound mail, decided: which address, who sent it, and what it becomes.

- `support@` from a known contact opens a case (acknowledged by mail); from a stranger, a polite
  note on how to get registered; a reply whose token was lost is threaded by Message-ID.
- `case+<token>@` adds the reply (quotes and signatures stripped) to the case; a sender that is
  not the token's recipient is posted as unverified and changes nothing; bounces mark the
  address failing.
- `bot@` runs the subject as a command for a known sender and mails the answer back.
- `fax@` queues a fax from an authorised sender (see `faxmail.py`).
Automatic mail (auto-replies, lists, bounces, our own) never opens a case or gets an answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.bot.commands import changes_something, confirm_within, describe_window, run_line
from c2bot.bot.grammar import has_secret, redact
from c2bot.bot.mail.faxmail import FaxMailIntake
from c2bot.bot.mail.notify import new_token
from c2bot.bot.mail.outbox import Outbox, enqueue
from c2bot.bot.mail.portmail import answers_letter, take_signed_letter
from c2bot.bot.mail.records import STRANGER_REPLY_EVERY, told_since
from c2bot.bot.mailcompose import case_number_from_subject, compose_mail
from c2bot.bot.mailparse import Attachment, MalformedMail, ParsedMail, parse_mail, strip_reply
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.handlers import cases
from c2bot.handlers.accounts import actor_for_email
from c2bot.handlers.context import Actor
from c2bot.handlers.errors import Refusal
from c2bot.handlers.events import CaseEvent, CaseEventKind
from c2bot.storage.models import (
    Case,
    CaseType,
    Channel,
    InboundMail,
    MailAddress,
    MailMessageId,
    PendingCommand,
    Priority,
    ReplyToken,
    Role,
)

log = logging.getLogger(__name__)
FAX_PENDING = "fax-pending"
FAX_TAKEN = "fax-taking"
CONFIRM_WORDS = frozenset({"yes", "y", "confirm", "ok", "ja", "bevestig"})


@dataclass(frozen=True)
class Delivery:
    """One accepted message for one of our addresses."""

    mailbox: str
    token: str | None
    envelope_from: str
    recipients: str
    raw: bytes
    mail: ParsedMail
    authenticated: str | None = None
    fax_scope: int | None = None
    # The inbound_mail row this message was kept in before it was parsed (Mail2Fax).
    kept_as: int | None = None


class Intake:
    def __init__(self, services: Services, outbox: Outbox) -> None:
        self.services = services
        self.outbox = outbox
        self.domain = services.settings.mail_domain
        self.fax = FaxMailIntake(services)
        self.pending: set[asyncio.Task[None]] = set()

    async def deliver(self, delivery: Delivery) -> None:
        """Act on one message; every outcome is recorded before we return (and say 250)."""
        try:
            await self._route(delivery)
        except Refusal as refusal:
            # Expected refusals (an empty reply, say) are kept with the reason, not retried.
            await self._record(delivery, "refused", refusal.message)
        self.outbox.wake()

    async def _route(self, delivery: Delivery) -> None:
        if delivery.mail.bounce is not None:
            await self._bounce(delivery)
        elif delivery.mail.automatic_reason:
            await self._record(delivery, "ignored-automatic", delivery.mail.automatic_reason)
        elif delivery.mailbox == "case":
            await self._case_reply(delivery)
        elif delivery.mailbox == "support":
            await self._support(delivery)
        elif delivery.mailbox == "confirm":
            await self._confirm(delivery)
        elif delivery.mailbox == "fax":
            await self._fax(delivery)
        else:
            await self._command(delivery)

    async def _settle(
        self,
        row_id: int,
        outcome: str,
        detail: str,
        case_id: int | None,
        session: AsyncSession | None,
    ) -> None:
        values = {"outcome": outcome, "detail": detail, "case_id": case_id}
        statement = update(InboundMail).where(InboundMail.id == row_id).values(values)
        if session is not None:
            await session.execute(statement)
            return
        async with self.services.sessions.begin() as own:
            await own.execute(statement)

    # --- Mail2Fax: kept first, parsed after the 250 ------------------------------------------

    async def keep_fax(self, sender: str, recipients: str, raw: bytes, login: str | None) -> int:
        # A Core insert: this runs before every Mail2Fax 250, and the ORM's unit of work would
        # cost more here than the write itself.
        statement = (
            insert(InboundMail)
            .values(
                envelope_from=sender[:254],
                recipients=recipients,
                raw=raw,
                outcome=FAX_PENDING,
                detail="",
                auth_login=login,
                received_at=self.services.clock(),
            )
            .returning(InboundMail.id)
        )
        async with self.services.engine.begin() as connection:
            return int((await connection.execute(statement)).scalar_one())

    def fax_later(self, row_id: int) -> None:
        task = asyncio.create_task(self.take_up_fax(row_id), name=f"fax mail {row_id}")
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def take_up_fax(self, row_id: int) -> None:
        """Parse and act on a kept fax mail, once: the row is claimed first, and a claim whose
        process died lapses like a fax job's lease (acting again is safe: one request per mail)."""
        now = self.services.clock()
        async with self.services.sessions.begin() as session:
            claimed = await session.execute(
                update(InboundMail)
                .where(InboundMail.id == row_id)
                .where((InboundMail.outcome == FAX_PENDING) | self._lapsed_claim(now))
                .values(outcome=FAX_TAKEN, claimed_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return
            row = await session.get(InboundMail, row_id)
            assert row is not None
            raw, sender, recipients, login = (
                row.raw, row.envelope_from, row.recipients, row.auth_login
            )  # fmt: skip
        try:
            mail = await asyncio.to_thread(parse_mail, raw, sender)
        except MalformedMail as error:
            await self._settle(row_id, "refused", f"malformed: {error}", None, None)
            return
        delivery = Delivery(
            mailbox="fax",
            token=None,
            envelope_from=sender,
            recipients=recipients,
            raw=raw,
            mail=mail,
            authenticated=login,
            kept_as=row_id,
        )
        try:
            await self.deliver(delivery)
        except Exception:
            log.exception("fax mail %s: could not be acted on yet; it stays pending", row_id)

    async def resume_faxes(self, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Take up fax mails a stopped process accepted but did not finish (housekeeping)."""
        now = self.services.clock()
        async with self.services.sessions() as session:
            rows = list(
                await session.scalars(
                    select(InboundMail.id)
                    .where(
                        (
                            (InboundMail.outcome == FAX_PENDING)
                            & (InboundMail.received_at <= now - older_than)
                        )
                        | self._lapsed_claim(now)
                    )
                    .order_by(InboundMail.id)
                    .limit(500)
                )
            )
        for row_id in rows:
            await self.take_up_fax(row_id)
        return len(rows)

    def _lapsed_claim(self, now: datetime) -> ColumnElement[bool]:
        """A claim whose process died: it lapses after C2_FAX_LEASE, as a fax job's lease does."""
        lapse = timedelta(seconds=self.services.settings.fax_lease)
        return (InboundMail.outcome == FAX_TAKEN) & (InboundMail.claimed_at < now - lapse)

    async def drain(self, grace: float = 10.0) -> None:
        """Let fax mails being taken up finish (shutdown); what is left stays pending."""
        if self.pending:
            await asyncio.wait(list(self.pending), timeout=grace)

    async def record_raw(self, raw: bytes, outcome: str, detail: str) -> None:
        """Keep a message that could not even be parsed (from a mailbox: nobody to answer)."""
        async with self.services.sessions.begin() as session:
            session.add(
                InboundMail(
                    envelope_from="",
                    recipients="imap",
                    raw=raw,
                    outcome=outcome,
                    detail=detail[:2000],
                    received_at=self.services.clock(),
                )
            )

    async def shunt(self, delivery: Delivery, reason: str) -> None:
        """Keep a message we could not act on for a human (Mailman's shunt), so it is not lost."""
        await self._record(delivery, "shunted", reason)

    async def _record(
        self,
        delivery: Delivery,
        outcome: str,
        detail: str = "",
        case_id: int | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        if delivery.kept_as is not None:
            await self._settle(delivery.kept_as, outcome, detail, case_id, session)
            return
        row = InboundMail(
            envelope_from=delivery.envelope_from[:254],
            recipients=delivery.recipients,
            message_id=(delivery.mail.message_id or "")[:998] or None,
            raw=delivery.raw,
            outcome=outcome,
            detail=detail,
            case_id=case_id,
            received_at=self.services.clock(),
        )
        if session is not None:
            session.add(row)
            return
        async with self.services.sessions.begin() as own:
            own.add(row)

    async def _already_had(self, session: AsyncSession, message_id: str | None) -> int | None:
        if not message_id:
            return None
        return await session.scalar(
            select(MailMessageId.case_id).where(
                MailMessageId.message_id == message_id, MailMessageId.direction == "in"
            )
        )

    async def _support(self, delivery: Delivery) -> None:
        mail = delivery.mail
        async with self.services.sessions() as session:
            if await self._already_had(session, mail.message_id):
                await self._record(delivery, "duplicate", "same Message-ID seen before")
                return
            threaded = await self._case_by_references(session, mail)
            if threaded is None:
                threaded = await self._case_by_subject(session, mail)
            actor = await actor_for_email(session, mail.from_addr)
        if threaded is not None:
            await self._reply_to_case(delivery, threaded, actor, token_email=None)
        elif actor is None:
            await self._stranger(delivery)
        else:
            await self._open_case(delivery, actor)

    async def _fax(self, delivery: Delivery) -> None:
        outcome, detail = await self.fax.deliver(
            delivery.mail,
            delivery.raw,
            authenticated=delivery.authenticated,
            via="imap" if delivery.recipients.startswith("imap") else "smtp",
            scope=delivery.fax_scope,
        )
        await self._record(delivery, outcome, detail)

    async def _case_by_subject(self, session: AsyncSession, mail: ParsedMail) -> int | None:
        """`[Case #N]` in the subject, from the case's own contact (headers and token lost).

        Only the case's contact (or an address it mailed) counts, so nobody can write into
        somebody else's case by typing its number.
        """
        number = case_number_from_subject(mail.subject)
        if number is None or not mail.from_addr:
            return None
        case = await session.get(Case, number)
        if case is None:
            return None
        if (case.contact_email or "").lower() == mail.from_addr:
            return case.id
        token = await session.scalar(
            select(ReplyToken.token).where(
                ReplyToken.case_id == case.id, ReplyToken.email == mail.from_addr
            )
        )
        return case.id if token is not None else None

    async def _case_by_references(self, session: AsyncSession, mail: ParsedMail) -> int | None:
        ids = [*mail.in_reply_to, *reversed(mail.references)]
        if not ids:
            return None
        return await session.scalar(
            select(MailMessageId.case_id).where(MailMessageId.message_id.in_(ids)).limit(1)
        )

    async def _open_case(self, delivery: Delivery, actor: Actor) -> None:
        mail = delivery.mail
        ctx = self.services.context(actor, Channel.EMAIL)
        request = cases.NewCase(
            type=CaseType.TECHNICAL,
            priority=Priority.NORMAL,
            subject=mail.subject.strip()[: cases.SUBJECT_MAX] or "(no subject)",
            description=mail.body_text.strip()[: cases.DESCRIPTION_MAX]
            or "(no text; see attachments)",
            # A linked person is their own contact; a bare contact names itself.
            contact=None if actor.person_id is not None else mail.from_addr,
            files=mail.attachments,
            reply_by_email=True,
            source_ref=(mail.message_id or "")[:998] or None,
        )
        try:
            view = await cases.open_case(ctx, request)
        except Refusal as refusal:
            await self._record(delivery, "refused", refusal.message)
            await self._answer(delivery, f"We could not open a case: {refusal.message}")
            return
        await self._record(delivery, "case-opened", f"case #{view.number}", view.number)

    async def _stranger(self, delivery: Delivery) -> None:
        address = delivery.mail.from_addr
        since = self.services.clock() - STRANGER_REPLY_EVERY
        async with self.services.sessions() as session:
            recent = await told_since(session, "unknown-sender", address, since)
        await self._record(delivery, "unknown-sender", address)
        if not recent and address:
            await self._answer(
                delivery,
                (
                    f"Hello,\n\nThank you for writing to support@{self.domain}. We do not know the "
                    f"address {address} yet, so we could not open a case for it.\n\n"
                    "To get registered, ask your reseller (or your account's administrator) to add "
                    "this address as a contact of your account, then send your message again. "
                    "If you already have an account, write from the address we have on file."
                ),
            )

    async def _case_reply(self, delivery: Delivery) -> None:
        async with self.services.sessions() as session:
            token = await session.get(ReplyToken, delivery.token)
            actor = await actor_for_email(session, delivery.mail.from_addr)
        if token is None or token.revoked_at is not None:
            # RCPT already refused this; a token revoked in between is kept for a human.
            await self._record(delivery, "revoked-token", delivery.token or "")
            return
        await self._reply_to_case(delivery, token.case_id, actor, token_email=token.email)

    async def _reply_to_case(
        self, delivery: Delivery, case_id: int, actor: Actor | None, token_email: str | None
    ) -> None:
        mail = delivery.mail
        async with self.services.sessions() as session:
            case = await session.get(Case, case_id)
            if await self._already_had(session, mail.message_id):
                await self._record(delivery, "duplicate", "same Message-ID seen before")
                return
        assert case is not None
        allowed = {a for a in (token_email, case.contact_email) if a}
        verified = mail.from_addr in {a.lower() for a in allowed}
        author = actor or Actor(
            label=mail.from_addr or delivery.envelope_from,
            role=Role.CUSTOMER,
            account_id=None,
            email=mail.from_addr,
        )
        if verified:
            # The token (or the case's own contact address) vouches for this sender on this case.
            author = Actor(
                label=author.label,
                role=Role.CUSTOMER,
                account_id=case.account_id,
                person_id=author.person_id,
                email=mail.from_addr,
            )
        label = (
            author.label if verified else f"{mail.from_name or mail.from_addr} <{mail.from_addr}>"
        )
        message = cases.CaseMessageIn(
            number=case_id,
            body=strip_reply(mail.body_text),
            files=mail.attachments,
            verified=verified,
            author_label=label,
            source_ref=(mail.message_id or "")[:998] or None,
        )
        ctx = self.services.context(author, Channel.EMAIL)
        await cases.customer_reply(ctx, message)
        outcome = "case-reply" if verified else "case-reply-unverified"
        await self._record(delivery, outcome, f"case #{case_id}", case_id)

    async def _bounce(self, delivery: Delivery) -> None:
        bounce = delivery.mail.bounce
        assert bounce is not None
        now = self.services.clock()
        case_id: int | None = None
        events: list[CaseEvent] = []
        async with self.services.sessions.begin() as session:
            if delivery.token:
                token = await session.get(ReplyToken, delivery.token)
                case_id = token.case_id if token else None
            for address in bounce.failed_recipients:
                row = await session.get(MailAddress, address.lower()) or MailAddress(
                    email=address.lower()
                )
                row.failing, row.last_status = True, bounce.status[:32]
                row.last_diagnostic, row.updated_at = bounce.diagnostic, now
                session.add(row)
            if case_id is not None and bounce.failed_recipients:
                summary = (
                    f"Mail to {', '.join(bounce.failed_recipients)} bounced "
                    f"({bounce.status}: {bounce.diagnostic or 'no diagnostic'}); "
                    "the address is marked as failing."
                )
                event = CaseEvent(CaseEventKind.BOUNCED, case_id, summary=summary)
                await self.services.notifier.within(session, event)
                events.append(event)
            await self._record(
                delivery, "bounce", ", ".join(bounce.failed_recipients), case_id, session
            )
        for event in events:
            await self.services.notifier.after(event)

    async def _command(self, delivery: Delivery) -> None:
        """bot@: read-only commands are answered at once; changes wait for a confirming reply.

        A From header is easy to forge, and the answer goes to the real owner of the address;
        so a change happens only when that owner answers the confirmation we mail them.
        """
        mail = delivery.mail
        async with self.services.sessions() as session:
            actor = await actor_for_email(session, mail.from_addr)
        if actor is None:
            await self._stranger(delivery)
            return
        if has_secret(mail.subject):
            shown = redact(mail.subject)
            await self._record(delivery, "command-refused", shown)
            await self._answer(
                delivery,
                "Passwords are not taken by email: mail travels and is stored in the clear. "
                "Set it in Slack (the answer is shown only to you) or with `c2bot shell`.\n\n"
                f"Nothing was run: {shown}",
            )
            return
        if not changes_something(mail.subject):
            await self._record(delivery, "command", mail.subject)
            text, files = await self._run(actor, mail.subject)
            await self._answer(delivery, text, attachments=files)
            return
        token = new_token()
        async with self.services.sessions.begin() as session:
            session.add(
                PendingCommand(
                    token=token,
                    email=mail.from_addr,
                    line=mail.subject,
                    created_at=self.services.clock(),
                )
            )
            await self._record(delivery, "command-pending", mail.subject, session=session)
        await self._answer(
            delivery,
            (
                f"You asked c2bot to run:\n\n    {mail.subject}\n\n"
                "It changes something, so it runs only once you confirm: reply yes to this mail "
                f"(it goes to bot+{token}@{self.domain}) within "
                f"{describe_window(confirm_within(mail.subject))}. "
                "If you did not send it, ignore this mail and nothing happens."
            ),
            reply_to=f"bot+{token}@{self.domain}",
        )

    async def _confirm(self, delivery: Delivery) -> None:
        """A reply saying yes, to bot+<token>@, from the address that asked, runs the command.

        The command runs first and the confirmation is spent after, so a failure on the way
        (answered 451) leaves it usable for the sender's retry.
        """
        mail = delivery.mail
        async with self.services.sessions() as session:
            pending = await session.get(PendingCommand, delivery.token)
            actor = await actor_for_email(session, mail.from_addr)
        if pending is not None and answers_letter(pending.line):
            # A reply to a port request's letter of authorisation: it brings the signed letter.
            outcome, answer = await take_signed_letter(self.services, pending, mail)
            await self._record(delivery, outcome, pending.line)
            await self._answer(delivery, answer)
            return
        problem = self._confirmation_problem(pending, mail, actor)
        if problem is not None or pending is None or actor is None:
            await self._record(delivery, "command-refused", problem or "")
            await self._answer(delivery, problem or "This confirmation is not valid.")
            return
        answer, files = await self._run(actor, pending.line, ref=f"mail:confirmed:{pending.token}")
        async with self.services.sessions.begin() as session:
            await session.execute(
                update(PendingCommand)
                .where(PendingCommand.token == pending.token, PendingCommand.used_at.is_(None))
                .values(used_at=self.services.clock())
            )
            await self._record(delivery, "command-confirmed", pending.line, session=session)
        await self._answer(delivery, answer, attachments=files)

    def _confirmation_problem(
        self, pending: PendingCommand | None, mail: ParsedMail, actor: Actor | None
    ) -> str | None:
        if pending is None or pending.used_at is not None:
            return "This confirmation was used already; nothing was run again."
        if pending.created_at <= self.services.clock() - confirm_within(pending.line):
            return "This confirmation expired; send the command again to get a new one."
        if pending.email != mail.from_addr or actor is None:
            return "This confirmation came from another address than the request; nothing ran."
        first = next(
            (line.strip() for line in strip_reply(mail.body_text).splitlines() if line.strip()), ""
        )
        if first.lower().strip(" .!") not in CONFIRM_WORDS:
            return (
                "Nothing was run: to confirm, reply with the single word yes "
                f"(your reply began {first[:60]!r})."
            )
        return None

    async def _run(
        self, actor: Actor, line: str, ref: str | None = None
    ) -> tuple[str, tuple[Attachment, ...]]:
        """The answer's text, and the reply's files as attachments (a CSV export, a chart)."""
        ctx = replace(self.services.context(actor, Channel.EMAIL), request_ref=ref)
        try:
            reply = (await run_line(ctx, line)).reply
        except Refusal as refusal:
            return refusal.message.replace("`", ""), ()
        files = tuple(Attachment(f.filename, f.content_type, f.data) for f in reply.files)
        return reply_text(reply), files

    async def _answer(
        self,
        delivery: Delivery,
        body: str,
        reply_to: str | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> None:
        """A direct answer to the sender (never to automatic mail: `deliver` filtered it)."""
        mail = delivery.mail
        to = mail.from_addr
        if not to:
            return
        quoted = redact(mail.subject)
        subject = quoted if quoted.lower().startswith("re:") else f"Re: {quoted}"
        mailbox = {"case": "support", "confirm": "bot"}.get(delivery.mailbox, delivery.mailbox)
        message, message_id = compose_mail(
            from_addr=f"{mailbox}@{self.domain}",
            reply_to=reply_to,
            from_name="c2bot",
            to=to,
            subject=subject,
            body=body,
            message_id_domain=self.domain,
            in_reply_to=mail.message_id,
            references=[*mail.references, *([mail.message_id] if mail.message_id else [])],
            auto_submitted="auto-replied",
            loop_marker=f"c2bot@{self.domain}",
            attachments=attachments,
        )
        async with self.services.sessions.begin() as session:
            enqueue(session, envelope_from="", message=message, message_id=message_id, case_id=None)


async def token_is_live(session: AsyncSession, token: str) -> bool:
    row = await session.get(ReplyToken, token)
    return row is not None and row.revoked_at is None


async def confirmation_is_open(session: AsyncSession, token: str) -> bool:
    row = await session.get(PendingCommand, token)
    return row is not None and row.used_at is None


__all__ = ["Delivery", "Intake", "confirmation_is_open", "token_is_live"]
