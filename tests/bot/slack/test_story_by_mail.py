"""A case across the doors: opened in Slack, answered in the thread, replied to by email."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from c2bot.bot.mail.gateway import MailGateway
from c2bot.bot.services import Services
from c2bot.bot.slack.app import SlackFrontDoor
from c2bot.config.settings import Settings
from c2bot.storage.models import CaseMessage, CaseStatus, MessageKind
from tests.bot.slack.conftest import SUPPORT, SlackDriver, slack_settings
from tests.conftest import World
from tests.support.mail import MailSink, build_mail, running_gateway, running_sink, send_mail
from tests.support.slack import SlackStandIn


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    async with running_sink() as relay:
        yield relay


@pytest.fixture
def settings(database_url: str, slack: SlackStandIn, sink: MailSink) -> Settings:
    return slack_settings(database_url, slack, C2_SMTP_RELAY=f"127.0.0.1:{sink.port}")


@pytest.fixture
async def gateway(services: Services, door: SlackFrontDoor) -> AsyncIterator[MailGateway]:
    async with running_gateway(services) as (mail, _):
        yield mail


async def test_open_in_slack_answer_in_thread_reply_by_mail_close(
    bot: SlackDriver, gateway: MailGateway, sink: MailSink, world: World
) -> None:
    """The contact who prefers mail gets the staff answer by mail; the reply reaches the thread."""
    threads = await bot.open_case(world.customer, contact="boss@acme.nl")
    await bot.say("USTAFF", SUPPORT, "Is the router rebooted?", thread_ts=threads.ts)
    answer = await sink.wait_for(lambda m: "Is the router rebooted?" in m.text)
    assert answer.recipients == ("boss@acme.nl",)
    assert answer.message["Subject"] == f"[Case #{threads.number}] Calls drop"

    reply = build_mail(
        sender="Boss Acme <boss@acme.nl>",
        to=str(answer.message["Reply-To"]),
        subject=f"Re: {answer.message['Subject']}",
        body=(
            "Yes, twice.\n\nOp wo 25 nov. 2026 om 10:00 schreef Support "
            "<support@c2.test>:\n> Is the router rebooted?\n"
        ),
        headers={"In-Reply-To": str(answer.message["Message-ID"])},
        attachments=[("trace.txt", "text/plain", b"SIP/2.0 408 Request Timeout")],
    )
    result = await send_mail(gateway.port, "boss@acme.nl", [str(answer.message["Reply-To"])], reply)
    assert result.code == 250
    posted = await bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == threads.ts and "Yes, twice." in c.params["text"],
    )
    assert "Is the router rebooted?" not in posted.params["text"].split("Yes, twice.")[1]
    await bot.door.drain()
    uploads = [u for u in bot.slack.uploads.values() if u.thread_ts == threads.ts]
    assert [u.data for u in uploads if u.filename == "trace.txt"] == [
        b"SIP/2.0 408 Request Timeout"
    ]

    await bot.press("USTAFF", "case_close", str(threads.number), threads)
    closed = await sink.wait_for(lambda m: "was closed" in m.text)
    assert closed.recipients == ("boss@acme.nl",)
    case = await bot.last_case()
    assert case.status is CaseStatus.CLOSED
    async with bot.services.sessions() as session:
        kinds = list(
            await session.scalars(
                select(CaseMessage.kind)
                .where(CaseMessage.case_id == case.id)
                .order_by(CaseMessage.id)
            )
        )
    assert kinds[:2] == [MessageKind.STAFF, MessageKind.CUSTOMER]


async def test_bounce_of_case_mail_shows_in_the_thread(
    bot: SlackDriver, gateway: MailGateway, sink: MailSink, world: World
) -> None:
    """When the answer to the contact bounces, the support thread says so."""
    threads = await bot.open_case(world.customer, contact="boss@acme.nl")
    await bot.say("USTAFF", SUPPORT, "Please check the cabling", thread_ts=threads.ts)
    answer = await sink.wait_for(lambda m: "cabling" in m.text)
    address = str(answer.message["Reply-To"])
    dsn = (
        f"From: MAILER-DAEMON@mx.acme.nl\r\nTo: {address}\r\nSubject: Undelivered\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; boss@acme.nl\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n--B--\r\n"
    ).encode()
    assert (await send_mail(gateway.port, "", [address], dsn)).code == 250
    await bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == threads.ts and "bounced" in c.params["text"],
    )
