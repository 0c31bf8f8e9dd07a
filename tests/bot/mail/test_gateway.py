"""The mail gateway over real SMTP: cases by mail, replies, bounces, loops and bad input."""

from __future__ import annotations

import asyncio
import re

from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from c2bot.bot.mail.gateway import MailGateway
from c2bot.bot.mail.outbox import Outbox
from c2bot.bot.services import Services
from c2bot.handlers import cases
from c2bot.storage.db import create_engine
from c2bot.storage.models import (
    Case,
    CaseMessage,
    CaseStatus,
    CaseType,
    Channel,
    Contact,
    InboundMail,
    MailAddress,
    MessageKind,
    OutboundMail,
    Priority,
)
from tests.bot.mail.conftest import MailRig
from tests.conftest import World, test_settings
from tests.support.mail import SentMail, build_mail, send_mail

SUPPORT = "support@c2.test"
TOKEN_ADDRESS = re.compile(r"^case\+([a-z2-7]{26})@c2\.test$")


async def open_by_mail(rig: MailRig, sender: str = "jan@acme.nl") -> tuple[Case, SentMail]:
    reply = await rig.send(
        sender,
        SUPPORT,
        "Phones do not register",
        "Since this morning none of our phones register.\n\nJan",
    )
    assert reply.code == 250, reply.text
    ack = await rig.sink.wait_for(lambda m: m.recipients == (sender,))
    async with rig.services.sessions() as session:
        case = await session.scalar(select(Case).order_by(Case.id.desc()).limit(1))
    assert case is not None
    return case, ack


async def count(rig: MailRig, model: type[object]) -> int:
    async with rig.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_known_contact_opens_case_and_gets_acknowledgement(
    rig: MailRig, world: World
) -> None:
    """support@ from a contact opens a case and answers with its number, token and headers."""
    case, ack = await open_by_mail(rig)
    assert case.subject == "Phones do not register" and case.source is Channel.EMAIL
    assert case.reply_by_email and case.account.number == "1001"
    message = ack.message
    assert message["Subject"] == f"[Case #{case.id}] Phones do not register"
    assert message["Auto-Submitted"] == "auto-replied"
    reply_to = str(message["Reply-To"])
    assert TOKEN_ADDRESS.match(reply_to)
    assert ack.envelope_from == reply_to
    assert message["Message-ID"] and message["X-Loop"] == "c2bot@c2.test"
    assert f"case #{case.id}" in ack.text
    async with rig.services.sessions() as session:
        inbound = await session.scalar(select(InboundMail))
    assert inbound is not None and inbound.outcome == "case-opened"


async def test_unknown_sender_gets_polite_reply_and_no_case(rig: MailRig, world: World) -> None:
    """A stranger is told how to get registered, once a day, and no case is opened."""
    assert (await rig.send("who@nowhere.nl", SUPPORT, "Help")).code == 250
    reply = await rig.sink.wait_for(lambda m: m.recipients == ("who@nowhere.nl",))
    assert "registered" in reply.text and reply.message["Auto-Submitted"] == "auto-replied"
    assert reply.envelope_from in ("", "<>")
    assert (await rig.send("who@nowhere.nl", SUPPORT, "Help again")).code == 250
    await asyncio.sleep(0.3)
    assert len([m for m in rig.sink.received if m.recipients == ("who@nowhere.nl",)]) == 1
    assert await count(rig, Case) == 0
    assert await count(rig, InboundMail) == 2


async def test_reply_with_token_lands_on_case_with_quotes_stripped(
    rig: MailRig, world: World
) -> None:
    """A reply to case+token@ adds the customer's words only, and reopens a pending case."""
    case, ack = await open_by_mail(rig)
    ctx = rig.services.context(world.staff, Channel.SLACK)
    await cases.set_pending(ctx, case.id)
    body = (
        "It works again after the reboot.\n\n"
        "Op wo 25 nov. 2026 om 10:00 schreef Support <support@c2.test>:\n"
        "> We received your question\n"
    )
    headers = {"In-Reply-To": str(ack.message["Message-ID"])}
    reply = await rig.send(
        "jan@acme.nl",
        str(ack.message["Reply-To"]),
        f"Re: {ack.message['Subject']}",
        body,
        headers=headers,
    )
    assert reply.code == 250
    async with rig.services.sessions() as session:
        message = await session.scalar(
            select(CaseMessage).where(CaseMessage.kind == MessageKind.CUSTOMER)
        )
        refreshed = await session.get(Case, case.id)
    assert message is not None and message.body == "It works again after the reboot."
    assert message.verified and refreshed is not None
    assert refreshed.status is CaseStatus.OPEN


async def test_forged_reply_is_unverified_and_changes_nothing(rig: MailRig, world: World) -> None:
    """Someone else writing to the case address is posted as unverified; the case stays closed."""
    case, ack = await open_by_mail(rig)
    await cases.close_case(rig.services.context(world.staff, Channel.SLACK), case.id)
    reply = await rig.send(
        "mallory@evil.test",
        str(ack.message["Reply-To"]),
        "Re: case",
        "Please send the invoices to me instead.",
    )
    assert reply.code == 250
    async with rig.services.sessions() as session:
        message = await session.scalar(
            select(CaseMessage).where(CaseMessage.kind == MessageKind.CUSTOMER)
        )
        refreshed = await session.get(Case, case.id)
    assert message is not None and not message.verified
    assert "mallory@evil.test" in message.author_label
    assert refreshed is not None and refreshed.status is CaseStatus.CLOSED


async def test_refusals_at_rcpt(rig: MailRig, world: World) -> None:
    """Unknown token, unknown mailbox and foreign domain are refused at RCPT with 550."""
    token_reply = await rig.send("jan@acme.nl", "case+" + "a" * 26 + "@c2.test", "Re: x")
    assert token_reply.code == 550 and "5.1.1" in token_reply.text
    mailbox_reply = await rig.send("jan@acme.nl", "sales@c2.test", "Hi")
    assert mailbox_reply.code == 550 and "No such mailbox" in mailbox_reply.text
    relay_reply = await rig.send("jan@acme.nl", "someone@gmail.com", "Hi")
    assert relay_reply.code == 550 and "5.7.1" in relay_reply.text
    assert await count(rig, InboundMail) == 0


async def test_oversized_mail_is_refused_with_552(rig: MailRig, world: World) -> None:
    """A message over C2_MAIL_MAX_BYTES gets 552 and is not stored."""
    rig.services.settings = rig.services.settings.model_copy(update={"mail_max_bytes": 5000})
    reply = await rig.send("jan@acme.nl", SUPPORT, "Big", "0123456789 abcdef\n" * 1000)
    assert reply.code == 552
    assert await count(rig, InboundMail) == 0


async def test_automatic_mail_never_opens_a_case_or_gets_an_answer(
    rig: MailRig, world: World
) -> None:
    """Auto-replies, list mail, X-Loop and null-sender mail are stored and left alone."""
    variants = [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"List-Id": "<news.acme.nl>"},
        {"X-Loop": "c2bot@c2.test"},
    ]
    for headers in variants:
        assert (
            await rig.send("jan@acme.nl", SUPPORT, "Out of office", headers=headers)
        ).code == 250
    assert (await rig.send("jan@acme.nl", SUPPORT, "Null sender", envelope_from="")).code == 250
    await asyncio.sleep(0.3)
    assert await count(rig, Case) == 0
    assert rig.sink.received == []
    async with rig.services.sessions() as session:
        outcomes = set(await session.scalars(select(InboundMail.outcome)))
    assert outcomes == {"ignored-automatic"}


def _dsn(token_address: str, failed: str, original_id: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.acme.nl\r\n"
        f"To: {token_address}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn1@mx.acme.nl>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.acme.nl\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_id}\r\nSubject: [Case #1] x\r\n"
        "--B--\r\n"
    ).encode()


async def test_bounce_marks_address_failing(rig: MailRig, world: World) -> None:
    """A DSN to the case address marks the recipient failing and never opens anything."""
    _, ack = await open_by_mail(rig)
    address = str(ack.message["Reply-To"])
    raw = _dsn(address, "jan@acme.nl", str(ack.message["Message-ID"]))
    assert (await rig.send_raw("", address, raw)).code == 250
    async with rig.services.sessions() as session:
        status = await session.get(MailAddress, "jan@acme.nl")
        outcome = await session.scalar(
            select(InboundMail.outcome).where(InboundMail.outcome == "bounce")
        )
    assert status is not None and status.failing and status.last_status == "5.1.1"
    assert outcome == "bounce"
    assert await count(rig, Case) == 1


async def test_database_down_answers_451(sink: object, tmp_path: object) -> None:
    """With the database unreachable the gateway answers 451 so the sender retries later."""
    settings = test_settings("postgresql+asyncpg://c2bot@127.0.0.1:1/none")
    engine = create_engine(settings.database_url)
    services = Services(settings=settings, engine=engine)
    gateway = MailGateway(services, Outbox(services, CollectorRegistry()), CollectorRegistry())
    await gateway.start("127.0.0.1", 0)
    try:
        raw = build_mail(sender="jan@acme.nl", to=SUPPORT, subject="Down?", body="x")
        reply = await send_mail(gateway.port, "jan@acme.nl", [SUPPORT], raw)
    finally:
        await gateway.stop()
        await engine.dispose()
    assert reply.code == 451 and "try again" in reply.text


async def test_malformed_mail_is_refused_with_reason(rig: MailRig, world: World) -> None:
    """Mail without a From header is refused with 554 and a reason; nothing is stored."""
    raw = b"Subject: no sender\r\n\r\nbody\r\n"
    reply = await rig.send_raw("jan@acme.nl", SUPPORT, raw)
    assert reply.code == 554 and "5.6.0" in reply.text
    assert await count(rig, InboundMail) == 0


async def test_same_message_twice_opens_one_case(rig: MailRig, world: World) -> None:
    """A resent message (same Message-ID) does not open a second case."""
    raw = build_mail(sender="jan@acme.nl", to=SUPPORT, subject="Dup", body="once")
    assert (await rig.send_raw("jan@acme.nl", SUPPORT, raw)).code == 250
    assert (await rig.send_raw("jan@acme.nl", SUPPORT, raw)).code == 250
    assert await count(rig, Case) == 1


async def test_reply_without_token_is_threaded_by_message_id(rig: MailRig, world: World) -> None:
    """A reply sent to support@ (token lost) that references our mail joins the same case."""
    case, ack = await open_by_mail(rig)
    headers = {"In-Reply-To": str(ack.message["Message-ID"])}
    assert (
        await rig.send("jan@acme.nl", SUPPORT, "Re: phones", "More info", headers=headers)
    ).code == 250
    assert await count(rig, Case) == 1
    async with rig.services.sessions() as session:
        message = await session.scalar(
            select(CaseMessage).where(CaseMessage.kind == MessageKind.CUSTOMER)
        )
    assert message is not None and message.case_id == case.id and message.body == "More info"


async def test_staff_answer_reaches_customer_by_mail_threaded(rig: MailRig, world: World) -> None:
    """A staff answer goes to the contact with the case token and threading headers."""
    case, ack = await open_by_mail(rig)
    ctx = rig.services.context(world.staff, Channel.SLACK)
    await cases.staff_reply(ctx, cases.CaseMessageIn(case.id, "Please reboot the router."))
    answer = await rig.sink.wait_for(lambda m: "reboot" in m.text)
    message = answer.message
    assert message["Reply-To"] == ack.message["Reply-To"]
    references = str(message["References"])
    assert str(ack.message["Message-ID"]) in references
    assert str(ack.message["In-Reply-To"]) in references
    assert message["In-Reply-To"] in (ack.message["Message-ID"], ack.message["In-Reply-To"])
    assert message["Auto-Submitted"] is None


async def test_internal_note_never_mailed(rig: MailRig, world: World) -> None:
    """An internal note on an email case sends nothing to the customer."""
    case, _ = await open_by_mail(rig)
    ctx = rig.services.context(world.staff, Channel.SLACK)
    await cases.add_note(ctx, cases.CaseMessageIn(case.id, "secret: customer owes money"))
    await asyncio.sleep(0.3)
    assert not [m for m in rig.sink.received if "secret" in m.text]


async def test_command_by_email_is_answered(rig: MailRig, world: World) -> None:
    """bot@ runs the subject as a command for a known sender and mails back the answer."""
    case, _ = await open_by_mail(rig)
    assert (await rig.send("jan@acme.nl", "bot@c2.test", "case list")).code == 250
    answer = await rig.sink.wait_for(lambda m: "case list" in str(m.message["Subject"]))
    assert f"#{case.id}" in answer.text and "Phones do not register" in answer.text
    assert (await rig.send("jan@acme.nl", "bot@c2.test", "case frobnicate")).code == 250
    refusal = await rig.sink.wait_for(lambda m: "frobnicate" in str(m.message["Subject"]))
    assert "expected one of" in refusal.text


async def test_relay_failure_is_retried_not_lost(rig: MailRig, world: World) -> None:
    """When the relay refuses, the mail stays in the outbox with the error and a retry time."""
    rig.sink.refuse_with = "451 4.3.0 try later"
    reply = await rig.send("jan@acme.nl", SUPPORT, "Relay down", "x")
    assert reply.code == 250
    for _ in range(100):
        async with rig.services.sessions() as session:
            row = await session.scalar(select(OutboundMail))
        if row is not None and row.attempts:
            break
        await asyncio.sleep(0.05)
    assert row is not None and row.attempts == 1 and row.sent_at is None
    assert "try later" in row.last_error and row.next_attempt_at > row.created_at


async def test_changing_command_by_email_waits_for_confirmation(rig: MailRig, world: World) -> None:
    """`case close` by mail runs only when the sender answers the confirmation, once."""
    case, _ = await open_by_mail(rig)
    assert (await rig.send("jan@acme.nl", "bot@c2.test", f"case close {case.id}")).code == 250
    ask = await rig.sink.wait_for(lambda m: "confirm" in m.text)
    confirm_address = str(ask.message["Reply-To"])
    assert re.match(r"^bot\+[a-z2-7]{26}@c2\.test$", confirm_address)
    async with rig.services.sessions() as session:
        still = await session.get(Case, case.id)
    assert still is not None and still.status is CaseStatus.OPEN

    forged = await rig.send("mallory@evil.test", confirm_address, "Re: confirm", "yes")
    assert forged.code == 250
    denied = await rig.send(
        "jan@acme.nl",
        confirm_address,
        "Re: confirm",
        "I did NOT send this!\n\n> It changes something",
    )
    assert denied.code == 250
    refusal = await rig.sink.wait_for(lambda m: "Nothing was run" in m.text)
    assert refusal.recipients == ("jan@acme.nl",)
    async with rig.services.sessions() as session:
        untouched = await session.get(Case, case.id)
    assert untouched is not None and untouched.status is CaseStatus.OPEN
    confirmed = await rig.send("jan@acme.nl", confirm_address, "Re: confirm", "yes")
    assert confirmed.code == 250
    done = await rig.sink.wait_for(lambda m: f"Case #{case.id} closed." in m.text)
    assert done.recipients == ("jan@acme.nl",)
    async with rig.services.sessions() as session:
        closed = await session.get(Case, case.id)
    assert closed is not None and closed.status is CaseStatus.CLOSED
    again = await rig.send("jan@acme.nl", confirm_address, "Re: confirm", "yes")
    assert again.code == 550 and "confirmation" in again.text


async def test_case_opened_for_a_contact_answers_that_contact_by_mail(
    rig: MailRig, world: World
) -> None:
    """Staff open a case for Jan (a Slack user); the staff answer still reaches Jan by mail."""
    staff = rig.services.context(world.staff, Channel.SLACK)
    view = await cases.open_case(
        staff,
        cases.NewCase(
            type=CaseType.INVOICE,
            priority=Priority.LOW,
            subject="Credit note",
            description="We owe you a credit note",
            account="1001",
            contact="jan@acme.nl",
        ),
    )
    await cases.staff_reply(staff, cases.CaseMessageIn(view.number, "The credit note is sent."))
    answer = await rig.sink.wait_for(lambda m: "credit note is sent" in m.text)
    assert answer.recipients == ("jan@acme.nl",)


async def test_empty_reply_is_kept_and_not_retried(rig: MailRig, world: World) -> None:
    """A reply with nothing in it is accepted (250) and recorded as refused, not retried."""
    _, ack = await open_by_mail(rig)
    reply = await rig.send("jan@acme.nl", str(ack.message["Reply-To"]), "Re: x", "   ")
    assert reply.code == 250
    async with rig.services.sessions() as session:
        outcomes = set(await session.scalars(select(InboundMail.outcome)))
    assert "refused" in outcomes


async def test_long_display_name_is_accepted_on_every_backend(rig: MailRig, world: World) -> None:
    """An unverified reply with a 400-character display name is stored, not answered 451."""
    _, ack = await open_by_mail(rig)
    sender = '"' + "M" * 400 + '" <mallory@evil.test>'
    reply = await rig.send(
        sender, str(ack.message["Reply-To"]), "Re: x", "hello", envelope_from="mallory@evil.test"
    )
    assert reply.code == 250
    async with rig.services.sessions() as session:
        label = await session.scalar(
            select(CaseMessage.author_label).where(CaseMessage.kind == MessageKind.CUSTOMER)
        )
    assert label is not None and len(label) == 300


async def test_linked_reseller_opens_case_by_mail(rig: MailRig, world: World) -> None:
    """A linked person whose address is not a contact still opens a case on their account."""
    assert (await rig.send("rita@resell.nl", SUPPORT, "Invoice question", "Why?")).code == 250
    await rig.sink.wait_for(lambda m: m.recipients == ("rita@resell.nl",))
    async with rig.services.sessions() as session:
        case = await session.scalar(select(Case))
    assert case is not None and case.account.number == "R100"
    assert case.contact_email == "rita@resell.nl"


async def test_address_of_two_accounts_is_not_trusted(rig: MailRig, world: World) -> None:
    """Mail from an address that is a contact of two accounts opens no case on either."""
    async with rig.services.sessions.begin() as session:
        session.add(Contact(account_id=5, name="Shared", email="shared@both.nl"))
        session.add(Contact(account_id=3, name="Shared", email="shared@both.nl"))
    assert (await rig.send("shared@both.nl", SUPPORT, "Which account?", "x")).code == 250
    await rig.sink.wait_for(lambda m: m.recipients == ("shared@both.nl",))
    assert await count(rig, Case) == 0


async def test_relay_refusing_for_good_fails_at_once(rig: MailRig, world: World) -> None:
    """A 5xx from the relay marks the mail failed now, with the relay's words."""
    rig.sink.refuse_with = "550 5.7.1 relaying denied"
    assert (await rig.send("jan@acme.nl", SUPPORT, "Relay says no", "x")).code == 250
    for _ in range(100):
        async with rig.services.sessions() as session:
            row = await session.scalar(select(OutboundMail))
        if row is not None and row.failed_at is not None:
            break
        await asyncio.sleep(0.05)
    assert row is not None and row.failed_at is not None and "relaying denied" in row.last_error


async def test_revoked_reply_address_is_refused_and_replaced(rig: MailRig, world: World) -> None:
    """After staff revoke the reply addresses, RCPT refuses the old one; new mail has a new one."""
    case, ack = await open_by_mail(rig)
    staff = rig.services.context(world.staff, Channel.SLACK)
    assert await cases.revoke_reply_addresses(staff, case.id) == 1
    old = str(ack.message["Reply-To"])
    refused = await rig.send("jan@acme.nl", old, "Re: x", "still there?")
    assert refused.code == 550 and "5.1.1" in refused.text
    await cases.staff_reply(staff, cases.CaseMessageIn(case.id, "New address from here on."))
    answer = await rig.sink.wait_for(lambda m: "New address" in m.text)
    assert str(answer.message["Reply-To"]) != old
    assert (await rig.send("jan@acme.nl", str(answer.message["Reply-To"]), "Re", "ok")).code == 250


async def test_bounced_contact_shows_in_the_case(rig: MailRig, world: World) -> None:
    """After a bounce, `case show` says that mail to the contact bounces."""
    case, ack = await open_by_mail(rig)
    address = str(ack.message["Reply-To"])
    raw = _dsn(address, "jan@acme.nl", str(ack.message["Message-ID"]))
    assert (await rig.send_raw("", address, raw)).code == 250
    view = await cases.show_case(rig.services.context(world.staff, Channel.SHELL), case.id)
    assert "mail to this address bounces (5.1.1)" in view.contact


async def test_case_number_in_subject_threads_only_for_its_contact(
    rig: MailRig, world: World
) -> None:
    """`[Case #N]` from the case's contact joins case N; from another contact, a new case."""
    case, _ = await open_by_mail(rig)
    subject = f"Re: [Case #{case.id}] Phones do not register"
    assert (await rig.send("jan@acme.nl", SUPPORT, subject, "Works now, thanks")).code == 250
    assert await count(rig, Case) == 1
    assert (await rig.send("piet@other.nl", SUPPORT, subject, "Me too")).code == 250
    assert await count(rig, Case) == 2
