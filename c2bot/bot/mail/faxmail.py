"""Mail2Fax by mail and the mails the fax bridge sends.

`FaxMailIntake` turns a mail to `fax@` (by SMTP, or fetched from a fax mailbox over IMAP) into a
fax request: the sender must be an authorised address of an account (the platform's "Fax Email
Id"), or have logged in with SMTP AUTH as one; the subject holds the fax number(s); the
attachments, in mail order, are the pages, and the body becomes a cover page (or, with no
attachment, the fax itself). The same Message-ID twice makes one request.

`FaxMailNotifier` writes the mails that follow into the outbox, in the transaction that records
the outcome: "sent", "failed" (the reason in words, attempts made), and Fax2Mail's received fax
as a PDF.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.bot.mail.outbox import enqueue
from c2bot.bot.mail.records import STRANGER_REPLY_EVERY, told_since
from c2bot.bot.mailcompose import compose_mail
from c2bot.bot.mailparse import Attachment, ParsedMail, strip_reply
from c2bot.bot.services import Services
from c2bot.faxgw.events import FaxOutcome
from c2bot.handlers.context import Actor
from c2bot.handlers.errors import Refusal
from c2bot.handlers.fax import FaxFile, FaxSubmission, describe_state, sender_for, split_numbers
from c2bot.handlers.fax import submit_fax as submit
from c2bot.handlers.permissions import ancestors
from c2bot.storage.models import (
    Account,
    Channel,
    FaxAttempt,
    FaxJob,
    FaxRequest,
    FaxState,
    ReceivedFax,
    Role,
)

log = logging.getLogger(__name__)
SIGNATURE = "\n\n-- \nc2bot fax service"


def mail_source_ref(mail: ParsedMail, raw: bytes, account_id: int) -> str:
    """What makes a mail the same mail for an account: its Message-ID, or (without one) its
    bytes. The account is part of it, so a reused Message-ID cannot swallow another's fax."""
    if mail.message_id:
        return f"mail:{account_id}:{mail.message_id}"[:400]
    return f"mail-sha256:{account_id}:{hashlib.sha256(raw).hexdigest()}"


def replied_message_id(source_ref: str | None) -> str | None:
    """The Message-ID a request came from (for In-Reply-To), if it came by mail."""
    if not source_ref or not source_ref.startswith("mail:"):
        return None
    parts = source_ref.split(":", 2)
    return parts[2] if len(parts) == 3 else None


class FaxMailIntake:
    """Mail to fax@: check the sender, read the numbers, queue the fax, answer refusals."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.domain = services.settings.mail_domain

    async def deliver(
        self,
        mail: ParsedMail,
        raw: bytes,
        *,
        authenticated: str | None = None,
        via: str = "smtp",
        scope: int | None = None,
    ) -> tuple[str, str]:
        """Act on one mail; returns (outcome, detail) for the caller's record of it.

        `scope` is the account whose own fax mailbox the mail came from: a reseller's mailbox
        faxes only for that reseller and its customers.
        """
        address = (authenticated or mail.from_addr or "").lower()
        async with self.services.sessions() as session:
            sender = await sender_for(session, address) if address else None
            if sender is None:
                await self._stranger(session, mail, address)
                await session.commit()
                return "fax-unknown-sender", address
            account_id = sender.account_id
            outside = scope is not None and scope != account_id
            if outside and scope not in await ancestors(session, account_id):
                return "fax-wrong-mailbox", f"{address} does not fax through this mailbox"
            if sender.smtp_password_hash and via == "smtp" and authenticated != address:
                # An address with an SMTP password sends only logged in: a From: header alone
                # is easy to forge.
                return "fax-login-required", f"{address} sends with SMTP AUTH only"
        actor = Actor(label=address, role=Role.CUSTOMER, account_id=account_id, email=address)
        ctx = self.services.context(actor, Channel.EMAIL)
        body = strip_reply(mail.body_text).strip()
        submission = FaxSubmission(
            numbers=split_numbers(mail.subject),
            files=[FaxFile(a.filename, a.content_type, a.data) for a in mail.attachments],
            text=body or None,
            subject=mail.subject,
            sender_email=address,
            source_ref=mail_source_ref(mail, raw, account_id),
        )
        try:
            accepted = await submit(ctx, submission, partial=True)
        except Refusal as refusal:
            await self._answer(mail, f"Your fax was not sent.\n\n{refusal.message}")
            return "fax-refused", refusal.message
        if accepted.duplicate:
            return "duplicate", f"fax request {accepted.request_id} (same Message-ID)"
        if accepted.refused:
            lines = "\n".join(f"  {number}: {why}" for number, why in accepted.refused)
            queued = ", ".join(number for _, number in accepted.jobs)
            await self._answer(
                mail,
                f"Your fax is on its way to {queued}, but not to:\n\n{lines}\n\n"
                "Send it again with the numbers corrected.",
            )
        jobs = ", ".join(f"#{job}" for job, _ in accepted.jobs)
        return "fax-queued", f"{via}: jobs {jobs}"

    async def _stranger(self, session: AsyncSession, mail: ParsedMail, address: str) -> None:
        """Tell an unknown sender once a day how to get authorised; never fax for them."""
        since = self.services.clock() - STRANGER_REPLY_EVERY
        if address and not await told_since(session, "fax-unknown-sender", address, since):
            self._compose_answer(
                session,
                mail,
                f"Hello,\n\nWe received a fax request from {address}, but this address may not "
                "send faxes, so nothing was sent.\n\nAsk your reseller or administrator to "
                f"authorise it (c2bot: `fax allow {address} account:NUMBER`), then send it again.",
            )

    async def _answer(self, mail: ParsedMail, body: str) -> None:
        async with self.services.sessions.begin() as session:
            self._compose_answer(session, mail, body)

    def _compose_answer(self, session: AsyncSession, mail: ParsedMail, body: str) -> None:
        if not mail.from_addr:
            return
        subject = mail.subject if mail.subject.lower().startswith("re:") else f"Re: {mail.subject}"
        message, message_id = compose_mail(
            from_addr=f"fax@{self.domain}",
            from_name="Fax",
            to=mail.from_addr,
            subject=subject,
            body=body + SIGNATURE,
            message_id_domain=self.domain,
            in_reply_to=mail.message_id,
            references=[*mail.references, *([mail.message_id] if mail.message_id else [])],
            auto_submitted="auto-replied",
            loop_marker=f"c2bot@{self.domain}",
        )
        enqueue(session, envelope_from="", message=message, message_id=message_id, case_id=None)


class FaxMailNotifier:
    """The mail side of fax outcomes (a `FaxEvents` listener)."""

    def __init__(self, services: Services, wake: Callable[[], None] | None = None) -> None:
        self.services = services
        self.domain = services.settings.mail_domain
        self.wake = wake

    async def within(self, session: AsyncSession, outcome: FaxOutcome) -> None:
        if outcome.kind == "received" and outcome.received_id is not None:
            received = await session.get(ReceivedFax, outcome.received_id)
            if received is not None and received.email:
                await self._received(session, received, outcome.pdf)
            return
        if outcome.job_id is None:
            return
        job = await session.get(FaxJob, outcome.job_id)
        if job is None:
            return
        await self._result(session, job)

    async def after(self, outcome: FaxOutcome) -> None:
        if self.wake is not None:
            self.wake()

    async def _result(self, session: AsyncSession, job: FaxJob) -> None:
        request: FaxRequest = job.request
        to = request.sender_email or (request.person.email if request.person else None)
        if not to:
            to = request.account.email
        zone = ZoneInfo(request.account.timezone)
        reason = job.result_text
        if job.state is FaxState.SENT:
            last = await session.scalar(
                select(FaxAttempt)
                .where(FaxAttempt.job_id == job.id)
                .order_by(FaxAttempt.id.desc())
                .limit(1)
            )
            subject = f"Fax to {job.number} sent ({_pages(job.pages_sent)})"
            lines = [
                f"Your fax #{job.id} to {job.number} was sent.",
                "",
                f"Pages:          {job.pages_sent or 0}",
                f"Sent at:        {job.finished_at.astimezone(zone):%Y-%m-%d %H:%M}"
                if job.finished_at
                else "",
                f"Time on line:   {_duration(last)}",
                f"Remote station: {job.remote_station_id or '(not given)'}",
                f"Attempts:       {job.attempts}",
            ]
        else:
            subject = f"Fax to {job.number} {describe_state(job)}"
            lines = [
                f"Your fax #{job.id} to {job.number} could not be sent.",
                "",
                f"Reason:   {reason or 'unknown'}",
                f"Attempts: {job.attempts} of {job.max_attempts}",
            ]
            if job.pages_sent:
                lines.append(f"Pages that got through on the last attempt: {job.pages_sent}")
            lines += ["", f"To try again, send the mail again or use `fax retry {job.id}`."]
        if request.subject:
            lines += ["", f"Your subject: {request.subject}"]
        in_reply_to = replied_message_id(request.source_ref)
        message, message_id = compose_mail(
            from_addr=f"fax@{self.domain}",
            from_name="Fax",
            to=to,
            subject=subject,
            body="\n".join(line for line in lines if line is not None) + SIGNATURE,
            message_id_domain=self.domain,
            in_reply_to=in_reply_to,
            auto_submitted="auto-generated",
            loop_marker=f"c2bot@{self.domain}",
        )
        enqueue(session, envelope_from="", message=message, message_id=message_id, case_id=None)

    async def _received(self, session: AsyncSession, fax: ReceivedFax, pdf: bytes | None) -> None:
        account = await session.get(Account, fax.account_id) if fax.account_id else None
        zone = ZoneInfo(account.timezone if account else "UTC")
        when = fax.received_at.astimezone(zone)
        caller = fax.caller_id or "an unknown number"
        if fax.success:
            subject = f"Fax from {caller} ({_pages(fax.pages)})"
            first = f"A fax for {fax.did_number} arrived from {caller}."
        else:
            subject = f"Incomplete fax from {caller} ({_pages(fax.pages)} received)"
            first = (
                f"A fax for {fax.did_number} from {caller} could not be received completely: "
                f"{fax.result_text or 'the call ended early'}."
            )
        lines = [
            first,
            "",
            f"Received:       {when:%Y-%m-%d %H:%M}",
            f"Pages:          {fax.pages}",
            f"Caller id:      {fax.caller_id or '(withheld)'}",
            f"Remote station: {fax.remote_station_id or '(not given)'}",
        ]
        files: list[Attachment] = []
        if pdf:
            name = f"fax-{when:%Y%m%d-%H%M}-{_safe(fax.caller_id) or 'unknown'}.pdf"
            files.append(Attachment(filename=name, content_type="application/pdf", data=pdf))
            lines += ["", "The pages are attached as a PDF."]
        elif fax.pages:
            lines += ["", "The received pages could not be converted; support has the original."]
        message, message_id = compose_mail(
            from_addr=f"fax@{self.domain}",
            from_name="Fax",
            to=fax.email,
            subject=subject,
            body="\n".join(lines) + SIGNATURE,
            message_id_domain=self.domain,
            auto_submitted="auto-generated",
            loop_marker=f"c2bot@{self.domain}",
            attachments=files,
        )
        enqueue(session, envelope_from="", message=message, message_id=message_id, case_id=None)


def _pages(count: int | None) -> str:
    count = count or 0
    return f"{count} page{'s' if count != 1 else ''}"


def _duration(attempt: FaxAttempt | None) -> str:
    if attempt is None or attempt.answered_at is None or attempt.ended_at is None:
        return "unknown"
    seconds = int((attempt.ended_at - attempt.answered_at).total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _safe(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum() or ch in "+-")[:32]
