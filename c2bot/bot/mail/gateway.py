"""The SMTP server (aiosmtpd) on the runtime's own loop: RCPT decides, DATA commits, then 250.

Status lines live in one place (`Status`). A database that cannot be reached answers 451, so
the sending server keeps the message and tries again; nothing is accepted that is not stored.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from collections.abc import Callable

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import InterfaceError, OperationalError

from c2bot.bot.mail.intake import Delivery, Intake, confirmation_is_open, token_is_live
from c2bot.bot.mail.outbox import Outbox
from c2bot.bot.mailparse import (
    MalformedMail,
    ParsedMail,
    check_headers,
    extract_case_token,
    extract_token,
    local_part,
    parse_mail,
)
from c2bot.bot.services import Services
from c2bot.handlers.fax import password_matches, sender_for

log = logging.getLogger(__name__)
MAILBOXES = ("support", "bot", "fax")


class Status:
    OK = "250 2.0.0 OK: queued"
    RCPT_OK = "250 2.1.5 OK"
    NO_RELAY = "550 5.7.1 Relaying denied: this server only takes mail for {domain}"
    NO_MAILBOX = "550 5.1.1 No such mailbox here: {address}"
    UNKNOWN_CASE_ADDRESS = "550 5.1.1 This case reply address is unknown or no longer valid"
    UNKNOWN_CONFIRMATION = "550 5.1.1 This confirmation address is unknown or was used already"
    AUTH_OK = "235 2.7.0 Authentication successful"
    AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
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
        # Without the fax part in this process, kept fax mail is left to the processes that
        # run it (they take up pending fax mail every second).
        self.take_up_faxes = True

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
        login = session.auth_data if isinstance(session.auth_data, str) else None
        if all(local_part(a, self.domain) == "fax" for a in envelope.rcpt_tos):
            return await self._accept_fax(envelope, sender, raw, login)
        try:
            # Parsing is CPU work that grows with the message: off the loop, so Slack acks and
            # other sessions keep moving while a large mail is taken apart.
            mail = await asyncio.to_thread(parse_mail, raw, sender)
        except MalformedMail as error:
            self.refused.labels("554").inc()
            return Status.MALFORMED.format(reason=str(error))
        deliveries = [
            self._delivery(a, envelope, sender, raw, mail, login) for a in envelope.rcpt_tos
        ]
        for delivery in deliveries:
            status = await self._deliver(delivery)
            if status is not None:
                self.refused.labels(status[:3]).inc()
                return status
        self.accepted.inc()
        return Status.OK

    async def _accept_fax(
        self, envelope: Envelope, sender: str, raw: bytes, login: str | None
    ) -> str:
        """Mail2Fax: keep the raw message first, answer 250, then parse and queue it.

        The body of a fax mail is large (the documents), and taking it apart is the slow part;
        the raw message is committed before 250, so a crash afterwards loses nothing: the
        pending message is taken up again (`Intake.resume_faxes`).
        """
        try:
            check_headers(raw, sender)
        except MalformedMail as error:
            self.refused.labels("554").inc()
            return Status.MALFORMED.format(reason=str(error))
        try:
            row_id = await self.intake.keep_fax(sender, ", ".join(envelope.rcpt_tos), raw, login)
        except TRANSIENT:
            log.exception("could not store fax mail from %s", sender)
            self.refused.labels("451").inc()
            return Status.TEMP_DB
        if self.take_up_faxes:
            self.intake.fax_later(row_id)
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
        self,
        address: str,
        envelope: Envelope,
        sender: str,
        raw: bytes,
        mail: ParsedMail,
        authenticated: str | None = None,
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
            authenticated=authenticated,
        )

    # SMTP AUTH (PLAIN and LOGIN) for Mail2Fax senders that have an SMTP password. aiosmtpd
    # prefers these handler hooks over its own, so the password check can await the database.

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            data = await server.challenge_auth("")
            if not isinstance(data, bytes):
                return AuthResult(success=False, handled=False)
        else:
            try:
                data = base64.b64decode(args[1].encode(), validate=True)
            except ValueError:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Bad base64")
        parts = data.split(b"\x00")
        if len(parts) != 3:
            return AuthResult(
                success=False, handled=False, message="501 5.5.2 Cannot split auth value"
            )
        return await self._check_login(parts[1], parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth(server.AuthLoginUsernameChallenge)
        else:
            try:
                login = base64.b64decode(args[1].encode(), validate=True)
            except ValueError:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Bad base64")
        if not isinstance(login, bytes):
            return AuthResult(success=False, handled=False)
        password = await server.challenge_auth(server.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=False)
        return await self._check_login(login, password)

    async def _check_login(self, login: bytes, password: bytes) -> AuthResult:
        address = login.decode("utf-8", "replace").strip().lower()
        try:
            async with self.services.sessions() as db:
                sender = await sender_for(db, address)
        except TRANSIENT:
            log.exception("SMTP AUTH lookup failed")
            return AuthResult(
                success=False, handled=False, message="454 4.7.0 Temporary authentication failure"
            )
        stored = sender.smtp_password_hash if sender else None
        ok = await asyncio.to_thread(password_matches, stored, password.decode("utf-8", "replace"))
        if not ok:
            self.refused.labels("535").inc()
            return AuthResult(success=False, handled=False, message=Status.AUTH_FAILED)
        return AuthResult(success=True, auth_data=address, message=Status.AUTH_OK)


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

    def __init__(
        self,
        services: Services,
        outbox: Outbox,
        registry: CollectorRegistry,
    ) -> None:
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
            # AUTH is offered without STARTTLS: put the listener on a private network or behind
            # a TLS-terminating proxy (README, "Mail2Fax").
            auth_require_tls=False,
        )

    async def start(self, host: str, port: int) -> None:
        await super().start(host, port)
        log.info("SMTP on %s:%s", host, self.port)

    async def stop(self) -> None:
        await super().stop()
        await self.handler.intake.drain()
