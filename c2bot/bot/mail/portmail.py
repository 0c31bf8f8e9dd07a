"""Port request mail: the customer hears of every step, and sends the signed letter back by reply.

Port events are mailed after their commit, each exactly once: the event is marked mailed in the
same transaction that writes its mail to the outbox. Mail that carries the letter of authorisation
gets `Reply-To: bot+<token>@`: the token is a pending `port sign N` for the address the letter went
to, so a reply from that address with the signed letter attached signs the request (the intake
hands such replies to `take_signed_letter`).
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.bot.mail.notify import new_token
from c2bot.bot.mail.outbox import enqueue
from c2bot.bot.mailcompose import compose_mail
from c2bot.bot.mailparse import Attachment, ParsedMail
from c2bot.bot.services import Services
from c2bot.handlers import portcheck, porting, portview
from c2bot.handlers.accounts import actor_for_email
from c2bot.handlers.context import Actor
from c2bot.handlers.errors import Refusal
from c2bot.storage.models import Channel, PendingCommand, PortEvent, PortRequest, Role

log = logging.getLogger(__name__)

SIGN_LINE = re.compile(r"^port sign (\d+)$")
MAIL_BATCH = 50
MAIL_WITHIN = timedelta(days=7)  # older unmailed events are history, not news
SIGNATURE = "\n\n-- \nc2bot number porting"
HEADLINES = {
    porting.EventKind.CREATED: "Letter of authorisation to sign",
    porting.EventKind.LETTER: "Letter of authorisation to sign",
    porting.EventKind.LETTER_REMINDER: "Reminder: the letter of authorisation is not signed yet",
    porting.EventKind.SIGNED: "Signed letter received",
    porting.EventKind.ACCEPTED: "Accepted by the current operator",
    porting.EventKind.REJECTED: "Rejected by the current operator",
    porting.EventKind.DELAYED: "Delayed",
    porting.EventKind.SCHEDULED: "Scheduled",
    porting.EventKind.COMPLETED: "Done: the numbers are yours",
    porting.EventKind.CANCELLED: "Cancelled",
}


def answers_letter(line: str) -> bool:
    """Whether a pending command is a letter's reply address (not a command to confirm)."""
    return SIGN_LINE.match(line) is not None


class PortMail:
    """Writes the mail of port events to the outbox."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.domain = services.settings.mail_domain

    async def deliver_due(self) -> int:
        """Mail every customer event not mailed yet; returns how many mails were written."""
        since = self.services.clock() - MAIL_WITHIN
        async with self.services.sessions() as session:
            due = list(
                await session.scalars(
                    select(PortEvent.id)
                    .where(
                        PortEvent.notify_customer.is_(True),
                        PortEvent.mailed_at.is_(None),
                        PortEvent.at >= since,
                    )
                    .order_by(PortEvent.id)
                    .limit(MAIL_BATCH)
                )
            )
        written = 0
        for event_id in due:
            try:
                written += await self.mail_event(event_id)
            except Exception:
                log.exception("could not write the mail of port event %s; trying later", event_id)
        return written

    async def mail_event(self, event_id: int) -> int:
        """Claim the event and write its mail, in one transaction (so it is mailed once)."""
        async with self.services.sessions.begin() as session:
            claimed = await session.execute(
                update(PortEvent)
                .where(PortEvent.id == event_id, PortEvent.mailed_at.is_(None))
                .values(mailed_at=self.services.clock())
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return 0
            event = await session.get(PortEvent, event_id)
            port = await session.get(PortRequest, event.request_id) if event else None
            if event is None or port is None or not port.contact_email:
                return 0
            await self._write(session, event, port)
            return 1

    async def _write(self, session: AsyncSession, event: PortEvent, port: PortRequest) -> None:
        kind = porting.EventKind(event.kind)
        view = portview.port_view(port)
        body = f"Hello {port.contact_name},\n\n{_plain(event.note)}\n\n"
        reply_to: str | None = None
        attachments: list[Attachment] = []
        if kind in porting.LETTER_EVENTS:
            today = portcheck.local_day(event.at, view.zone)
            name, pdf = portview.render_letter(view, today, self.services.settings.port_country)
            attachments.append(Attachment(name, "application/pdf", pdf))
            reply_to = await self._letter_address(session, port)
            body += letter_instructions(view.number)
        elif kind is porting.EventKind.COMPLETED:
            body += completed_instructions(view)
        body += details(view) + SIGNATURE
        message, message_id = compose_mail(
            from_addr=f"bot@{self.domain}",
            from_name="c2bot number porting",
            to=port.contact_email,
            subject=f"[Port #{port.id}] {HEADLINES.get(kind, kind.value)}",
            body=body,
            message_id_domain=self.domain,
            reply_to=reply_to,
            auto_submitted="auto-generated",
            loop_marker=f"c2bot@{self.domain}",
            attachments=attachments,
        )
        enqueue(
            session,
            envelope_from=f"bot@{self.domain}",
            message=message,
            message_id=message_id,
            case_id=None,
        )

    async def _letter_address(self, session: AsyncSession, port: PortRequest) -> str:
        """A fresh reply address for this letter, bound to the address it goes to."""
        token = new_token()
        session.add(
            PendingCommand(
                token=token,
                email=port.contact_email.lower(),
                line=f"port sign {port.id}",
                created_at=self.services.clock(),
            )
        )
        await session.flush()
        return f"bot+{token}@{self.domain}"


def letter_instructions(number: int) -> str:
    return (
        f"Attached is the letter of authorisation for port request #{number}, filled in with "
        "the details below. Check it, sign it, and send it back: reply to this mail with the "
        "signed letter attached (a PDF, or a clear photo). In Slack, `/port sign "
        f"{number}` takes it too. Nothing is asked of your current operator before it is "
        "signed.\n\n"
    )


def completed_instructions(view: portview.PortView) -> str:
    first = view.ranges[0].first if view.ranges else "NUMBER"
    return (
        "The numbers are now yours, with no forwarding yet: calls to them are not answered "
        "until you say where they go. Set that per number in Slack with /route did set NUMBER "
        f"TYPE DESTINATION, or mail bot@ the same words as subject, e.g. "
        f"route did set {first} local DEVICE.\n\n"
    )


def details(view: portview.PortView) -> str:
    rows = [f"{label}: {value}" for label, value in view.fields()]
    numbers = [f"    {r.label()}" for r in view.ranges]
    return "\n".join([f"Port request #{view.number}", *rows, "Numbers:", *numbers])


def _plain(note: str) -> str:
    return note.replace("`", "")


# --- the signed letter, by reply --------------------------------------------------------------


async def take_signed_letter(
    services: Services, pending: PendingCommand, mail: ParsedMail
) -> tuple[str, str]:
    """A reply to a letter's mail: keep its signed letter. Returns (outcome, answer to send)."""
    match = SIGN_LINE.match(pending.line)
    assert match is not None
    number = int(match[1])
    if pending.used_at is not None:
        return "port-letter-refused", (
            f"The signed letter for port request #{number} came in already through this "
            f"address. To send another one, send bot@{services.settings.mail_domain} the "
            f"subject: port letter {number}, and reply to the new letter's mail."
        )
    if mail.from_addr != pending.email:
        return "port-letter-refused", (
            f"The letter for port request #{number} went to {pending.email}; only a reply from "
            "that address is taken here. Send it from there, or upload it in Slack with "
            f"/port sign {number}."
        )
    letter = _letter_in(mail)
    if letter is None:
        return "port-letter-refused", (
            f"There was no signed letter attached for port request #{number}: reply to the "
            "letter's mail again with the signed letter attached (a PDF, or a clear photo)."
        )
    ctx = services.context(await _signer(services, pending, number), Channel.EMAIL)
    ref = f"mail:{mail.message_id}"[:400] if mail.message_id else None
    try:
        view = await porting.sign_port(ctx, number, letter, source_ref=ref)
    except Refusal as refusal:
        return "port-letter-refused", refusal.message.replace("`", "")
    await _spend(services, pending.token)
    return "port-letter-signed", (
        f"Thank you: the signed letter for port request #{number} is in. The request is "
        f"{view.state.value}; we tell you at every step."
    )


def _letter_in(mail: ParsedMail) -> porting.SignedLetter | None:
    """The attachment that is the signed letter: the first PDF, else the first picture."""
    files = [porting.SignedLetter(a.filename, a.content_type, a.data) for a in mail.attachments]
    kinds = [(f, _kind(f.data)) for f in files]
    pdf = next((f for f, k in kinds if k == "application/pdf"), None)
    return pdf or next((f for f, k in kinds if k is not None), None)


def _kind(data: bytes) -> str | None:
    return next((t for magic, t in porting.SIGNED_KINDS.items() if data.startswith(magic)), None)


async def _signer(services: Services, pending: PendingCommand, number: int) -> Actor:
    """Whoever replied from the letter's address: the token vouches for them on this request."""
    async with services.sessions() as session:
        known = await actor_for_email(session, pending.email)
        account_id = await session.scalar(
            select(PortRequest.account_id).where(PortRequest.id == number)
        )
    return Actor(
        label=known.label if known else pending.email,
        role=Role.CUSTOMER,
        account_id=account_id,
        person_id=known.person_id if known else None,
        email=pending.email,
    )


async def _spend(services: Services, token: str) -> None:
    async with services.sessions.begin() as session:
        await session.execute(
            update(PendingCommand)
            .where(PendingCommand.token == token, PendingCommand.used_at.is_(None))
            .values(used_at=services.clock())
        )
