"""Mail2Fax over real SMTP: authorised senders, SMTP AUTH, numbers in the subject, answers."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import timedelta

from sqlalchemy import func, select

from c2bot.bot.mail.faxmail import FaxMailIntake, FaxMailNotifier
from c2bot.bot.mailparse import parse_mail
from c2bot.faxgw.events import FaxOutcome
from c2bot.handlers import fax
from c2bot.storage.models import (
    Channel,
    FaxDocument,
    FaxJob,
    FaxRequest,
    FaxState,
    InboundMail,
    PendingCommand,
)
from tests.bot.mail.conftest import MailRig
from tests.conftest import World
from tests.support.mail import SmtpReply, build_mail

FAX = "fax@c2.test"
PDF = b"%PDF-1.4\n% a small document\n"


async def allow(rig: MailRig, world: World, email: str, smtp: bool = False) -> str:
    reply = await fax.allow_sender(
        rig.services.context(world.reseller, Channel.SHELL), email, "1001", smtp_password=smtp
    )
    return dict(reply.fields).get("SMTP password (shown once)", "")


async def count(rig: MailRig, model: type[object]) -> int:
    async with rig.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def outcomes(rig: MailRig) -> list[str]:
    async with rig.services.sessions() as session:
        rows = await session.scalars(select(InboundMail.outcome).order_by(InboundMail.id))
        return list(rows)


async def test_authorised_sender_queues_one_job_per_number(rig: MailRig, world: World) -> None:
    await allow(rig, world, "scanner@acme.nl")
    raw = build_mail(
        sender="Scanner <scanner@acme.nl>",
        to=FAX,
        subject="020 123 4567, +32 2 555 12 34",
        body="Please sign and return.",
        attachments=[("contract.pdf", "application/pdf", PDF), ("logo.png", "image/png", b"PNG")],
    )
    reply = await rig.send_raw("scanner@acme.nl", FAX, raw)
    assert reply.code == 250, reply.text
    async with rig.services.sessions() as session:
        request = await session.scalar(select(FaxRequest))
        assert request is not None
        assert request.account.number == "1001" and request.sender_email == "scanner@acme.nl"
        assert request.cover_text == "Please sign and return."
        docs = list(await session.scalars(select(FaxDocument).order_by(FaxDocument.position)))
        jobs = list(await session.scalars(select(FaxJob).order_by(FaxJob.id)))
    assert [(d.filename, d.data) for d in docs] == [("contract.pdf", PDF), ("logo.png", b"PNG")]
    assert [(j.number, j.state) for j in jobs] == [
        ("+31201234567", FaxState.QUEUED),
        ("+3225551234", FaxState.QUEUED),
    ]
    # The same message again (same Message-ID) makes no second request.
    assert (await rig.send_raw("scanner@acme.nl", FAX, raw)).code == 250
    assert await count(rig, FaxRequest) == 1 and await count(rig, FaxJob) == 2
    assert await outcomes(rig) == ["fax-queued", "duplicate"]


async def test_unknown_sender_is_told_once_and_nothing_is_sent(rig: MailRig, world: World) -> None:
    for _ in range(2):
        reply = await rig.send("who@nowhere.nl", FAX, "0201234567", attachments=[])
        assert reply.code == 250
    answer = await rig.sink.wait_for(lambda m: m.recipients == ("who@nowhere.nl",))
    assert "may not send faxes" in answer.text and "fax allow who@nowhere.nl" in answer.text
    assert answer.message["Auto-Submitted"] == "auto-replied"
    await asyncio.sleep(0.3)
    assert len([m for m in rig.sink.received if m.recipients == ("who@nowhere.nl",)]) == 1
    assert await count(rig, FaxJob) == 0
    assert await outcomes(rig) == ["fax-unknown-sender", "fax-unknown-sender"]


async def test_wrong_numbers_are_answered_in_words(rig: MailRig, world: World) -> None:
    await allow(rig, world, "scanner@acme.nl")
    reply = await rig.send("scanner@acme.nl", FAX, "0909 123 4567", "text fax")
    assert reply.code == 250
    answer = await rig.sink.wait_for(lambda m: m.recipients == ("scanner@acme.nl",))
    assert "Your fax was not sent" in answer.text and "premium-rate" in answer.text
    assert await count(rig, FaxJob) == 0
    reply = await rig.send("scanner@acme.nl", FAX, "0201234567; +870772123456", "two")
    answer = await rig.sink.wait_for(
        lambda m: m.recipients == ("scanner@acme.nl",) and "on its way" in m.text
    )
    assert "+870772123456" in answer.text and "satellite" in answer.text
    assert await count(rig, FaxJob) == 1


async def test_empty_subject_or_nothing_to_fax(rig: MailRig, world: World) -> None:
    await allow(rig, world, "scanner@acme.nl")
    assert (await rig.send("scanner@acme.nl", FAX, "", "body only")).code == 250
    answer = await rig.sink.wait_for(lambda m: m.recipients == ("scanner@acme.nl",))
    assert "No fax number was given" in answer.text
    assert await outcomes(rig) == ["fax-refused"]


def _send_authenticated(
    port: int, login: str, password: str, from_header: str, mechanism: str
) -> SmtpReply:
    raw = build_mail(sender=from_header, to=FAX, subject="0201234567", body="Scanned")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("scanner.test")
        try:
            client.user, client.password = login, password
            if mechanism == "PLAIN":
                code, text = client.auth("PLAIN", client.auth_plain)
            else:
                code, text = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        except smtplib.SMTPAuthenticationError as error:
            return SmtpReply(error.smtp_code, error.smtp_error.decode())
        assert code == 235, text
        code, text = client.mail("copier@device.local")
        client.rcpt(FAX)
        code, text = client.data(raw)
        return SmtpReply(code, text.decode())


async def test_smtp_auth_binds_the_fax_to_the_login(rig: MailRig, world: World) -> None:
    password = await allow(rig, world, "copier@acme.nl", smtp=True)
    for mechanism in ("PLAIN", "LOGIN"):
        reply = await asyncio.to_thread(
            _send_authenticated, rig.gateway.port, "copier@acme.nl", password,
            "Copier <noreply@device.local>", mechanism,
        )  # fmt: skip
        assert reply.code == 250, reply.text
    await rig.gateway.handler.intake.drain()
    async with rig.services.sessions() as session:
        senders = set(await session.scalars(select(FaxRequest.sender_email)))
    assert senders == {"copier@acme.nl"}
    wrong = await asyncio.to_thread(
        _send_authenticated, rig.gateway.port, "copier@acme.nl", "guess", "x@y.z", "PLAIN"
    )
    assert wrong.code == 535 and "invalid" in wrong.text


async def test_result_mails_thread_under_the_request(rig: MailRig, world: World) -> None:
    await allow(rig, world, "scanner@acme.nl")
    raw = build_mail(sender="scanner@acme.nl", to=FAX, subject="0201234567", body="x")
    assert (await rig.send_raw("scanner@acme.nl", FAX, raw)).code == 250
    notifier = FaxMailNotifier(rig.services, rig.outbox.wake)
    async with rig.services.sessions() as session:
        job = await session.scalar(select(FaxJob))
        assert job is not None
        job.state, job.attempts, job.result_text = FaxState.FAILED, 4, "the line was busy"
        await notifier.within(session, FaxOutcome("failed", job_id=job.id))
        await session.commit()
    await notifier.after(FaxOutcome("failed", job_id=job.id))
    mail = await rig.sink.wait_for(lambda m: "could not be sent" in m.text)
    assert mail.message["Subject"] == "Fax to +31201234567 failed"
    assert "the line was busy" in mail.text and "Attempts: 4 of 4" in mail.text
    assert mail.message["In-Reply-To"] is not None
    assert mail.message["In-Reply-To"] in raw.decode()


async def test_malformed_mail_to_fax_is_refused_or_answered(rig: MailRig, world: World) -> None:
    await allow(rig, world, "scanner@acme.nl")
    headless = b"this is not a mail at all, just bytes\r\n"
    reply = await rig.send_raw("scanner@acme.nl", FAX, headless)
    assert reply.code == 554 and "5.6.0" in reply.text
    # A multipart without its boundary parses to nothing usable: accepted, then answered.
    broken = (
        b"From: scanner@acme.nl\r\nTo: fax@c2.test\r\nSubject: 0201234567\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n"
    )
    assert (await rig.send_raw("scanner@acme.nl", FAX, broken)).code == 250
    answer = await rig.sink.wait_for(lambda m: m.recipients == ("scanner@acme.nl",))
    assert "nothing to fax" in answer.text
    assert await count(rig, FaxJob) == 0


async def test_a_resellers_mailbox_faxes_only_for_its_own_tree(rig: MailRig, world: World) -> None:
    """Mail fetched from R200's own fax mailbox may not fax for R100's customer."""
    await allow(rig, world, "scanner@acme.nl")
    intake = FaxMailIntake(rig.services)
    raw = build_mail(sender="scanner@acme.nl", to="fax@r200.test", subject="0201234567", body="x")
    mail = parse_mail(raw, "")
    outcome, detail = await intake.deliver(mail, raw, via="imap", scope=world.reseller2.account_id)
    assert outcome == "fax-wrong-mailbox" and "scanner@acme.nl" in detail
    outcome, _ = await intake.deliver(mail, raw, via="imap", scope=world.reseller.account_id)
    assert outcome == "fax-queued"
    assert await count(rig, FaxJob) == 1


async def test_passwords_are_not_taken_by_email(rig: MailRig, world: World) -> None:
    subject = 'fax set account:1001 mailbox:imap.acme.nl user:fax password:"s3cret pw"'
    assert (await rig.send("jan@acme.nl", "bot@c2.test", subject, "")).code == 250
    answer = await rig.sink.wait_for(lambda m: m.recipients == ("jan@acme.nl",))
    assert "Passwords are not taken by email" in answer.text
    assert "s3cret" not in answer.text and "s3cret" not in str(answer.message["Subject"])
    assert "password:[hidden]" in answer.text
    async with rig.services.sessions() as session:
        pending = await session.scalar(select(func.count()).select_from(PendingCommand))
        detail = await session.scalar(select(InboundMail.detail))
    assert pending == 0 and detail is not None and "s3cret" not in detail


async def test_a_fax_mail_kept_before_a_crash_is_taken_up(rig: MailRig, world: World) -> None:
    """250 was given once the raw mail was kept; a later round acts on it exactly once."""
    await allow(rig, world, "scanner@acme.nl")
    raw = build_mail(sender="scanner@acme.nl", to=FAX, subject="0201234567", body="later")
    intake = rig.gateway.handler.intake
    kept = await intake.keep_fax("scanner@acme.nl", FAX, raw, None)  # the process died here
    assert await outcomes(rig) == ["fax-pending"]
    assert await intake.resume_faxes(older_than=timedelta(0)) == 1
    assert await intake.resume_faxes(older_than=timedelta(0)) == 0
    async with rig.services.sessions() as session:
        row = await session.get(InboundMail, kept)
        assert row is not None and row.outcome == "fax-queued"
    assert await count(rig, FaxJob) == 1


async def test_an_address_with_a_password_must_log_in(rig: MailRig, world: World) -> None:
    """A copier with an SMTP password: a mail merely claiming its From: address is not faxed."""
    await allow(rig, world, "copier@acme.nl", smtp=True)
    reply = await rig.send("copier@acme.nl", FAX, "0201234567", "forged")
    assert reply.code == 250
    assert await count(rig, FaxJob) == 0
    assert await outcomes(rig) == ["fax-login-required"]


async def test_the_same_message_id_from_another_account_is_its_own_fax(
    rig: MailRig, world: World
) -> None:
    await allow(rig, world, "scanner@acme.nl")
    await fax.allow_sender(
        rig.services.context(world.staff, Channel.SHELL), "piet@other.nl", "2001"
    )
    raw = build_mail(sender="scanner@acme.nl", to=FAX, subject="0201234567", body="one")
    other = raw.replace(b"From: scanner@acme.nl", b"From: piet@other.nl")
    assert (await rig.send_raw("scanner@acme.nl", FAX, raw)).code == 250
    assert (await rig.send_raw("piet@other.nl", FAX, other)).code == 250
    assert await count(rig, FaxRequest) == 2
