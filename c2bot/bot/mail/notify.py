"""Case mail out: acknowledgements, staff answers and status changes, through the outbox.

Each mail carries `Reply-To: case+<token>@` (the token binds the case to this recipient), our own
Message-ID with In-Reply-To/References to the case's earlier mail, and `[Case #N]` in the subject.
The envelope sender is the same token address, so bounces come back to the case they belong to.
"""

from __future__ import annotations

import base64
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.bot.mail.outbox import Outbox, enqueue
from c2bot.bot.mailcompose import case_subject, compose_mail
from c2bot.bot.mailparse import Attachment
from c2bot.bot.services import Services
from c2bot.handlers.cases import CASE_TYPES, PRIORITY_MEANINGS, local_time
from c2bot.handlers.events import CaseEvent, CaseEventKind
from c2bot.storage.models import (
    Account,
    Case,
    CaseFile,
    CaseMessage,
    Channel,
    Contact,
    MailMessageId,
    Person,
    ReplyToken,
)

SIGNATURE = "\n\n-- \nc2bot support desk. Reply to this mail to add to your case."


def new_token() -> str:
    """26 characters of lowercase base32: 128 random bits, safe in an email local part."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


async def reply_token(session: AsyncSession, case_id: int, email: str) -> str:
    """The case's live token for this recipient, made on first use."""
    email = email.lower()
    token = await session.scalar(
        select(ReplyToken.token).where(
            ReplyToken.case_id == case_id,
            ReplyToken.email == email,
            ReplyToken.revoked_at.is_(None),
        )
    )
    if token is None:
        token = new_token()
        session.add(ReplyToken(token=token, case_id=case_id, email=email))
        await session.flush()
    return token


async def case_message_ids(session: AsyncSession, case_id: int) -> list[str]:
    rows = await session.scalars(
        select(MailMessageId.message_id)
        .where(MailMessageId.case_id == case_id)
        .order_by(MailMessageId.created_at, MailMessageId.message_id)
    )
    return list(rows)


class MailNotifier:
    """The mail side of case events (a `CaseEvents` listener)."""

    def __init__(self, services: Services, outbox: Outbox) -> None:
        self.services = services
        self.outbox = outbox
        self.domain = services.settings.mail_domain

    async def within(self, session: AsyncSession, event: CaseEvent) -> None:
        case = await session.get(Case, event.case_id)
        if case is None:
            return
        await self._remember_incoming(session, case, event)
        if not case.contact_email:
            return
        if event.kind is CaseEventKind.OPENED and case.reply_by_email:
            account = await session.get(Account, case.account_id)
            zone = account.timezone if account else "UTC"
            await self.send(session, case, self._acknowledgement(case, zone), auto=True)
        elif event.kind is CaseEventKind.STAFF_REPLIED and await self._wants_mail(session, case):
            body, files = await self._staff_message(session, event)
            await self.send(session, case, body + SIGNATURE, files=files)
        elif event.kind in (CaseEventKind.CLOSED, CaseEventKind.REOPENED) and (
            await self._wants_mail(session, case)
        ):
            await self.send(session, case, self._status_change(case, event), auto=True)

    async def after(self, event: CaseEvent) -> None:
        self.outbox.wake()

    async def _remember_incoming(self, session: AsyncSession, case: Case, event: CaseEvent) -> None:
        """Store the Message-ID that opened or answered the case, in the same transaction.

        A resent message then finds it and changes nothing, and later mail threads under it.
        """
        opened_by_mail = event.kind is CaseEventKind.OPENED and case.source is Channel.EMAIL
        reference = case.source_ref if opened_by_mail else None
        if event.kind is CaseEventKind.CUSTOMER_REPLIED and event.message_id is not None:
            message = await session.get(CaseMessage, event.message_id)
            reference = message.source_ref if message else None
        if reference:
            session.add(MailMessageId(message_id=reference, case_id=case.id, direction="in"))
            await session.flush()

    async def _wants_mail(self, session: AsyncSession, case: Case) -> bool:
        """Mail the contact unless they asked on Slack themselves and prefer it there.

        So: when the case came by mail, when the contact prefers mail, when somebody else
        (staff, a reseller, a colleague) opened it for them, or when they are not on Slack.
        """
        if case.reply_by_email:
            return True
        contact = await session.scalar(
            select(Contact).where(
                Contact.account_id == case.account_id, Contact.email == case.contact_email
            )
        )
        if contact is not None and contact.prefers_email:
            return True
        requester = await session.get(Person, case.requester_id) if case.requester_id else None
        if requester is None or requester.slack_user_id is None or requester.prefers_email:
            return True
        return (requester.email or "").lower() != (case.contact_email or "").lower()

    async def _staff_message(
        self, session: AsyncSession, event: CaseEvent
    ) -> tuple[str, list[Attachment]]:
        message = await session.get(CaseMessage, event.message_id) if event.message_id else None
        if message is None:
            return "", []
        files = await session.scalars(select(CaseFile).where(CaseFile.message_id == message.id))
        attachments = [Attachment(f.filename, f.content_type, f.data) for f in files]
        return f"{message.author_label} wrote:\n\n{message.body}", attachments

    def _acknowledgement(self, case: Case, zone: str) -> str:
        return (
            f"Hello {case.contact_name},\n\n"
            f"We received your question and opened case #{case.id} for it.\n\n"
            f"Subject:  {case.subject}\n"
            f"Type:     {CASE_TYPES[case.type]}\n"
            f"Priority: {case.priority.value.title()} ({PRIORITY_MEANINGS[case.priority]})\n"
            f"We aim to answer before {local_time(case.first_response_due, zone)}.\n\n"
            "Reply to this mail to add information or attachments to the case; keep the case "
            "number in the subject." + SIGNATURE
        )

    def _status_change(self, case: Case, event: CaseEvent) -> str:
        if event.kind is CaseEventKind.CLOSED:
            what = "was closed. If your question is not answered, reply to reopen it."
        else:
            what = "was reopened. We will be in touch."
        return f"Hello {case.contact_name},\n\nYour case #{case.id} {what}" + SIGNATURE

    async def send(
        self,
        session: AsyncSession,
        case: Case,
        body: str,
        *,
        auto: bool = False,
        files: list[Attachment] | None = None,
    ) -> None:
        assert case.contact_email is not None
        token = await reply_token(session, case.id, case.contact_email)
        address = f"case+{token}@{self.domain}"
        earlier = await case_message_ids(session, case.id)
        message, message_id = compose_mail(
            from_addr=f"support@{self.domain}",
            from_name="Support",
            to=case.contact_email,
            subject=case_subject(case.id, case.subject),
            body=body,
            message_id_domain=self.domain,
            reply_to=address,
            in_reply_to=earlier[-1] if earlier else None,
            references=earlier,
            auto_submitted="auto-replied" if auto else None,
            loop_marker=f"c2bot@{self.domain}",
            attachments=files or (),
        )
        session.add(MailMessageId(message_id=message_id, case_id=case.id, direction="out"))
        enqueue(
            session, envelope_from=address, message=message, message_id=message_id, case_id=case.id
        )
