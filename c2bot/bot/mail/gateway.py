"""The SMTP server (aiosmtpd) on the runtime's own loop: RCPT decides, DATA commits, then 250.

Status lines live in one place (`Status`). A database that cannot be reached answers 451, so
the sending server keeps the message and tries again; nothing is accepted that is not stored.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import InterfaceError, OperationalError

from c2bot.bot.mail.intake import Delivery, Intake, confirmation_is_open, token_is_live
from c2bot.bot.mail.outbox import Outbox
from c2bot.bot.mailparse import (
    MalformedMail,
    ParsedMail,
    extract_case_token,
    extract_token,
    local_part,
    parse_mail,
)
from c2bot.bot.services import Services

log = logging.getLogger(__name__)
MAILBOXES = ("support", "bot")


class Status:
    OK = "250 2.0.0 OK: queued"
    RCPT_OK = "250 2.1.5 OK"
    NO_RELAY = "550 5.7.1 Relaying denied: this server only takes mail for {domain}"
    NO_MAILBOX = "550 5.1.1 No such mailbox here: {address}"
    UNKNOWN_CASE_ADDRESS = "550 5.1.1 This case reply address is unknown or no longer valid"
    UNKNOWN_CONFIRMATION = "550 5.1.1 This confirmation address is unknown or was used already"
    FAX_LATER = "550 5.1.1 Mail2Fax is not enabled on this server"
    MALFORMED = "554 5.6.0 Message not accepted: {reason}"
    TEMP_DB = "451 4.3.0 Temporary problem storing the message; please try again later"
    TEMP_BUG = "451 4.3.0 Temporary problem (ref {ref}); please try again later"


# A database that cannot be reached or is busy: the sender should retry. Other database errors
# (bad data, a broken constraint) would fail the same way on every retry, so they are shunted.
TRANSIENT = (OperationalError, InterfaceError, OSError, asyncio.TimeoutError)


class CaseMailHandler:
    """aiosmtpd handler: `handle_RCPT` routes addresses, `handle_DATA` stores and acts."""

    def __init__(self, services: Services, intake: Intake, registry: CollectorRegistry) -> None:
        self.services = services
        self.intake = intake
        self.domain = services.settings.mail_domain.lower()
        self.accepted = Counter("c2bot_mail_accepted", "Messages answered 250", registry=registry)
        self.refused = Counter(
            "c2bot_mail_refused", "Messages refused", ["reason"], registry=registry
        )

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        status = await self._check_recipient(address)
        if status is None:
            envelope.rcpt_tos.append(address)
            return Status.RCPT_OK
        self.refused.labels(status[:3]).inc()
        return status

    async def _check_recipient(self, address: str) -> str | None:
        mailbox = local_part(address, self.domain)
        if mailbox is None:
            return Status.NO_RELAY.format(domain=self.domain)
        if mailbox in MAILBOXES:
            return None
        if mailbox == "fax":
            return Status.FAX_LATER
        case_token = extract_case_token(address, self.domain)
        confirm_token = extract_token(address, self.domain, "bot")
        if case_token is None and confirm_token is None:
            return Status.NO_MAILBOX.format(address=address)
        try:
            async with self.services.sessions() as db:
                if case_token is not None:
                    live = await token_is_live(db, case_token)
                else:
                    live = await confirmation_is_open(db, confirm_token or "")
        except TRANSIENT:
            log.exception("token check failed for %s", address)
            return Status.TEMP_DB
        if live:
            return None
        return Status.UNKNOWN_CASE_ADDRESS if case_token else Status.UNKNOWN_CONFIRMATION

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        sender = envelope.mail_from or ""
        try:
            # Parsing is CPU work that grows with the message: off the loop, so Slack acks and
            # other sessions keep moving while a large mail is taken apart.
            mail = await asyncio.to_thread(parse_mail, raw, sender)
        except MalformedMail as error:
            self.refused.labels("554").inc()
            return Status.MALFORMED.format(reason=str(error))
        deliveries = [self._delivery(a, envelope, sender, raw, mail) for a in envelope.rcpt_tos]
        for delivery in deliveries:
            status = await self._deliver(delivery)
            if status is not None:
                self.refused.labels(status[:3]).inc()
                return status
        self.accepted.inc()
        return Status.OK

    async def _deliver(self, delivery: Delivery) -> str | None:
        """Deliver one copy; None when it is stored, else the status line to answer."""
        try:
            await self.intake.deliver(delivery)
            return None
        except TRANSIENT:
            log.exception("could not store mail from %s", delivery.envelope_from)
            return Status.TEMP_DB
        except Exception as error:
            ref = secrets.token_hex(4)
            log.exception("mail from %s failed (ref %s)", delivery.envelope_from, ref)
            reason = f"ref {ref}: {type(error).__name__}: {error}"[:2000]
        try:
            await self.intake.shunt(delivery, reason)
        except Exception:
            log.exception("could not shunt mail (ref %s)", ref)
            return Status.TEMP_BUG.format(ref=ref)
        return None

    def _delivery(
        self, address: str, envelope: Envelope, sender: str, raw: bytes, mail: ParsedMail
    ) -> Delivery:
        mailbox = local_part(address, self.domain) or ""
        token = extract_case_token(address, self.domain)
        confirm = extract_token(address, self.domain, "bot")
        if token is None and confirm is not None:
            mailbox, token = "confirm", confirm
        elif token is not None:
            mailbox = "case"
        return Delivery(
            mailbox=mailbox,
            token=token,
            envelope_from=sender,
            recipients=", ".join(envelope.rcpt_tos),
            raw=raw,
            mail=mail,
        )


class SmtpListener:
    """An aiosmtpd server on the running loop: `start` binds, `port` tells where, `stop` closes."""

    def __init__(self, make_protocol: Callable[[], SMTP]) -> None:
        self.make_protocol = make_protocol
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self.make_protocol, host, port)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class MailGateway(SmtpListener):
    """Our SMTP server: case mail, commands by mail, with the limits from settings."""

    def __init__(self, services: Services, outbox: Outbox, registry: CollectorRegistry) -> None:
        super().__init__(self._protocol)
        self.services = services
        self.handler = CaseMailHandler(services, Intake(services, outbox), registry)

    def _protocol(self) -> SMTP:
        settings = self.services.settings
        return SMTP(
            self.handler,
            data_size_limit=settings.mail_max_bytes,
            enable_SMTPUTF8=True,
            hostname=settings.mail_domain,
            ident="c2bot ESMTP",
            timeout=300,
            loop=asyncio.get_running_loop(),
        )

    async def start(self, host: str, port: int) -> None:
        await super().start(host, port)
        log.info("SMTP on %s:%s", host, self.port)
