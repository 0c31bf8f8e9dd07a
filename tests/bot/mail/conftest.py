"""A running mail gateway on loopback, with an SMTP sink as its relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from c2bot.bot.mail.gateway import MailGateway
from c2bot.bot.mail.outbox import Outbox
from c2bot.bot.services import Services
from c2bot.config.settings import Settings
from tests.conftest import test_settings
from tests.support.mail import (
    MailSink,
    SmtpReply,
    build_mail,
    running_gateway,
    running_sink,
    send_mail,
)


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    async with running_sink() as relay:
        yield relay


@pytest.fixture
def settings(database_url: str, sink: MailSink) -> Settings:
    return test_settings(database_url, C2_SMTP_RELAY=f"127.0.0.1:{sink.port}")


@dataclass
class MailRig:
    services: Services
    gateway: MailGateway
    outbox: Outbox
    sink: MailSink

    async def send(
        self,
        sender: str,
        to: str,
        subject: str,
        body: str = "Hello",
        envelope_from: str | None = None,
        **extra: object,
    ) -> SmtpReply:
        raw = build_mail(sender=sender, to=to, subject=subject, body=body, **extra)  # type: ignore[arg-type]
        return await self.send_raw(envelope_from if envelope_from is not None else sender, to, raw)

    async def send_raw(self, envelope_from: str, to: str, raw: bytes) -> SmtpReply:
        reply = await send_mail(self.gateway.port, envelope_from, [to], raw)
        # Fax mail is acted on after its 250: wait for that, as a test reads the outcome next.
        await self.gateway.handler.intake.drain()
        return reply


@pytest.fixture
async def rig(services: Services, sink: MailSink) -> AsyncIterator[MailRig]:
    async with running_gateway(services) as (gateway, outbox):
        yield MailRig(services, gateway, outbox, sink)
