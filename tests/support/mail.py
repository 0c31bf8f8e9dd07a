"""An SMTP sink (our relay in tests) and a client that talks to our SMTP server with smtplib."""

from __future__ import annotations

import asyncio
import email
import smtplib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default

from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import CollectorRegistry

from c2bot.bot.mail.gateway import MailGateway, SmtpListener
from c2bot.bot.mail.notify import MailNotifier
from c2bot.bot.mail.outbox import Outbox
from c2bot.bot.services import Services


@dataclass(frozen=True)
class SentMail:
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())


class MailSink:
    """Records every message relayed to it; `wait_for` blocks until one matches."""

    def __init__(self) -> None:
        self.received: list[SentMail] = []
        self.changed = asyncio.Condition()
        self.listener = SmtpListener(lambda: SMTP(self, loop=asyncio.get_running_loop()))
        self.refuse_with: str | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_with:
            return self.refuse_with
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        async with self.changed:
            self.received.append(SentMail(envelope.mail_from or "", tuple(envelope.rcpt_tos), raw))
            self.changed.notify_all()
        return "250 OK"

    async def start(self, port: int = 0) -> None:
        await self.listener.start("127.0.0.1", port)

    @property
    def port(self) -> int:
        return self.listener.port

    async def stop(self) -> None:
        await self.listener.stop()

    async def wait_for(
        self, predicate: Callable[[SentMail], bool] = lambda _: True, timeout: float = 5.0
    ) -> SentMail:
        async def find() -> SentMail:
            async with self.changed:
                while True:
                    for sent in self.received:
                        if predicate(sent):
                            return sent
                    await self.changed.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            seen = [(m.recipients, m.message["Subject"]) for m in self.received]
            raise AssertionError(
                f"no matching mail relayed within {timeout}s; got {seen}"
            ) from None


@asynccontextmanager
async def running_sink(port: int = 0) -> AsyncIterator[MailSink]:
    sink = MailSink()
    await sink.start(port)
    try:
        yield sink
    finally:
        await sink.stop()


@asynccontextmanager
async def running_gateway(services: Services) -> AsyncIterator[tuple[MailGateway, Outbox]]:
    """Our SMTP server on a loopback port, with its outbox relaying and mail case events on."""
    outbox = Outbox(services, CollectorRegistry())
    services.notifier.add(MailNotifier(services, outbox))
    gateway = MailGateway(services, outbox, CollectorRegistry())
    await gateway.start("127.0.0.1", 0)
    task = asyncio.create_task(outbox.run())
    try:
        yield gateway, outbox
    finally:
        await gateway.stop()
        outbox.stop()
        await task


@dataclass
class SmtpReply:
    code: int
    text: str


def _send(port: int, sender: str, recipients: Sequence[str], raw: bytes) -> SmtpReply:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        code, text = client.mail(sender)
        if code != 250:
            return SmtpReply(code, text.decode())
        for rcpt in recipients:
            code, text = client.rcpt(rcpt)
            if code not in (250, 251):
                return SmtpReply(code, text.decode())
        code, text = client.data(raw)
        return SmtpReply(code, text.decode())


async def send_mail(port: int, sender: str, recipients: Sequence[str], raw: bytes) -> SmtpReply:
    """Speak SMTP with smtplib (in a thread, as our server runs on this loop)."""
    return await asyncio.to_thread(_send, port, sender, recipients, raw)


def build_mail(
    *,
    sender: str,
    to: str,
    subject: str,
    body: str,
    headers: dict[str, str] | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = email.utils.make_msgid(domain="client.test")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, mimetype, data in attachments:
        maintype, _, subtype = mimetype.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=SMTP_POLICY)
