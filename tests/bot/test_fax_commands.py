"""`fax` and `route did` through the shared grammar: help, who sees what, the guard, settings."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from c2bot.bot.commands import changes_something, run_line
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.bot.shell import run_shell, shell_context
from c2bot.handlers import fax
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound, Refusal
from c2bot.storage.db import create_engine
from c2bot.storage.models import Channel, Did, FaxJob, FaxRequest, FaxSender, FaxState
from tests.conftest import World, test_settings
from tests.support.mail import build_mail, running_gateway, running_sink, send_mail


def ctx(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SHELL)


async def say(services: Services, actor: Actor, line: str) -> str:
    """The text answer to one command line, as the shell and email show it."""
    return reply_text((await run_line(ctx(services, actor), line)).reply)


def flat(text: str) -> str:
    """Text with every run of spaces and newlines as one space (aligned columns vary)."""
    return " ".join(text.split())


async def refusal(services: Services, actor: Actor, line: str) -> Refusal:
    with pytest.raises(Refusal) as refused:
        await run_line(ctx(services, actor), line)
    return refused.value


async def send_text_fax(services: Services, actor: Actor, to: str = "+31201234567") -> int:
    answer = await say(services, actor, f"fax send {to} Please call us back about order 42")
    async with services.sessions() as session:
        job_id = await session.scalar(select(FaxJob.id).order_by(FaxJob.id.desc()).limit(1))
    assert job_id is not None and f"#{job_id}" in answer
    return job_id


async def test_help_lists_every_verb(services: Services, world: World) -> None:
    """`fax help` and `route did help` name each verb with its words; the overview names both."""
    fax_help = await say(services, world.customer, "fax help")
    for usage in (
        "fax send NUMBERS [account:",
        "fax list [account:",
        "state:queued|rendering|dialing|sending|sent|retry-wait|failed|cancelled",
        "fax show ID",
        "fax retry ID",
        "fax cancel ID",
        "fax allow EMAIL [account:",
        "[smtp]",
        "fax disallow EMAIL",
        "fax senders",
        "fax settings",
        "fax set [account:",
        "password:",
        "clear:",
    ):
        assert usage in fax_help, usage
    route_help = await say(services, world.customer, "route did help")
    for usage in (
        "route did list",
        "route did show NUMBER",
        "route did set NUMBER TYPE DESTINATION",
    ):
        assert usage in route_help, usage
    overview = await say(services, world.customer, "help")
    assert "fax:" in overview and "route did:" in overview
    # A text door has no form: `fax send` alone explains the one-line form.
    assert "fax send NUMBER[,NUMBER...] TEXT..." in await say(services, world.customer, "fax send")


@pytest.mark.parametrize(
    ("line", "changes"),
    [
        ("fax list", False),
        ("fax list state:failed", False),
        ("fax show 3", False),
        ("fax senders account:1001", False),
        ("fax settings", False),
        ("fax help", False),
        ("fax send", False),  # only opens the form
        ("route did list", False),
        ("route did show +31201234567", False),
        ("fax send +31201234567 hello", True),
        ("fax retry 3", True),
        ("fax cancel 3", True),
        ("fax allow a@acme.nl smtp", True),
        ("fax disallow a@acme.nl", True),
        ("fax set retries:3", True),
        ("route did set +31201234567 foip a@acme.nl", True),
    ],
)
def test_changes_something_knows_the_reading_verbs(line: str, changes: bool) -> None:
    """Reading verbs (list, show, senders, settings) change nothing; the others do."""
    assert changes_something(line) is changes


async def test_customer_sends_a_text_fax_and_follows_it(services: Services, world: World) -> None:
    """A customer's text fax is queued for its account and shows in list and show."""
    answer = await say(
        services, world.customer, 'fax send 0201234567,+3225551234 "Call us back" name:"Acme desk"'
    )
    assert "Fax queued for 2 number(s) (account 1001)." in answer
    async with services.sessions() as session:
        jobs = list(await session.scalars(select(FaxJob).order_by(FaxJob.id)))
        request = await session.scalar(select(FaxRequest))
    assert [j.number for j in jobs] == ["+31201234567", "+3225551234"]
    assert request is not None
    assert (request.cover_text, request.caller_name) == ("Call us back", "Acme desk")
    listed = await say(services, world.customer, "fax list")
    assert f"#{jobs[0].id}" in listed and "+3225551234" in listed and "queued" in listed
    assert "No faxes." in await say(services, world.customer, "fax list state:failed")
    shown = await say(services, world.customer, f"fax show #{jobs[0].id}")
    assert f"Fax #{jobs[0].id} to +31201234567" in shown
    assert "State queued" in flat(shown) and "Attempts 0 of 4" in flat(shown)


async def test_another_account_cannot_see_or_cancel(services: Services, world: World) -> None:
    """Outside the account's tree a fax does not exist; its reseller sees and cancels it."""
    job_id = await send_text_fax(services, world.customer)
    for outsider in (world.other, world.reseller2):
        for verb in ("show", "cancel", "retry"):
            refused = await refusal(services, outsider, f"fax {verb} {job_id}")
            assert isinstance(refused, NotFound)
            assert refused.message == f"There is no fax #{job_id} among the faxes you may see."
        assert "No faxes." in await say(services, outsider, "fax list")
    assert "#" + str(job_id) in await say(services, world.reseller, "fax list account:1001")
    assert "cancelled" in await say(services, world.reseller, f"fax cancel {job_id}")
    async with services.sessions() as session:
        job = await session.get(FaxJob, job_id)
    assert job is not None and job.state is FaxState.CANCELLED


@pytest.mark.parametrize(
    ("number", "words"),
    [
        ("+319091234567", "is a premium-rate number"),
        ("+870772123456", "is a satellite or international network number"),
        ("+74951234567", "is in RU, which is not among the countries your account may fax"),
        ("+3120123", "is not a valid phone number"),
        ("hello", "is not a phone number"),
    ],
)
async def test_the_guard_refuses_in_words(
    services: Services, world: World, number: str, words: str
) -> None:
    """Premium-rate, satellite, unlisted countries and broken numbers are each refused."""
    refused = await refusal(services, world.customer, f"fax send {number} hello there")
    assert isinstance(refused, Invalid) and words in refused.message
    async with services.sessions() as session:
        assert await session.scalar(select(FaxJob.id)) is None


async def test_daily_page_limit(services: Services, world: World) -> None:
    """Once the account's pages for today are sent, the next fax is refused until midnight."""
    await say(services, world.reseller, "fax set account:1001 pages:3")
    job_id = await send_text_fax(services, world.customer)
    async with services.sessions.begin() as session:
        job = await session.get(FaxJob, job_id)
        assert job is not None
        job.pages_sent, job.started_at, job.state = 3, services.clock(), FaxState.SENT
    refused = await refusal(services, world.customer, "fax send +31201234567 again")
    assert "Account 1001 has sent its 3 fax pages for today" in refused.message


async def test_reseller_allows_a_sender_with_an_smtp_password(
    services: Services, world: World
) -> None:
    """`fax allow ... smtp` shows the password once; it is stored hashed, listed as SMTP AUTH."""
    answer = await run_line(
        ctx(services, world.reseller), "fax allow Scanner@Acme.nl account:1001 smtp"
    )
    reply = answer.reply
    assert not reply.public
    password = dict(reply.fields)["SMTP password (shown once)"]
    assert len(password) >= 12
    senders = await say(services, world.reseller, "fax senders account:1001")
    assert "scanner@acme.nl" in senders and "yes" in senders and password not in senders
    async with services.sessions() as session:
        sender = await session.scalar(select(FaxSender))
    assert sender is not None and sender.smtp_password_hash
    assert password not in sender.smtp_password_hash
    assert fax.password_matches(sender.smtp_password_hash, password)
    assert "may no longer send" in await say(
        services, world.reseller, "fax disallow scanner@acme.nl"
    )
    refused = await refusal(services, world.other, "fax allow x@other.nl account:1001")
    assert isinstance(refused, NotAllowed)


async def test_fax_settings_by_message(services: Services, world: World) -> None:
    """A customer cannot lift its own guard; the mailbox password is never shown back."""
    refused = await refusal(services, world.customer, "fax set pages:1000")
    assert (
        isinstance(refused, NotAllowed) and "set by its reseller or by support" in refused.message
    )
    assert "Fax send retries 1 " in flat(await say(services, world.customer, "fax set retries:1"))
    answer = await say(
        services,
        world.reseller,
        "fax set account:R100 mailbox:imap.resell.nl:993 user:fax@resell.nl "
        "password:hunter2-secret tls:yes",
    )
    assert "hunter2" not in answer
    assert "fax@resell.nl@imap.resell.nl:993 (TLS), password set" in answer
    guard = await say(services, world.reseller, "fax set account:1001 countries:NL,BE premium:no")
    assert "Countries NL, BE " in flat(guard) and "Premium-rate numbers refused" in flat(guard)
    shown = await say(services, world.reseller, "fax settings account:R100")
    assert "hunter2" not in shown and "password set" in shown
    cleared = await say(services, world.reseller, "fax set account:R100 clear:mailbox,password")
    assert "Fax mailbox" in cleared and "not set" in cleared
    bad = await refusal(services, world.reseller, "fax set account:R100 clear:colour")
    assert "clear: knows no setting colour" in bad.message
    bad_port = await refusal(services, world.reseller, "fax set mailbox:imap.resell.nl:http")
    assert "mailbox must be host or host:port" in bad_port.message
    bad_tls = await refusal(services, world.reseller, "fax set tls:maybe")
    assert "tls must be one of yes, no" in bad_tls.message


async def test_route_did_set_foip(services: Services, world: World) -> None:
    """`route did set NUMBER foip EMAIL` routes a number support added to Fax2Mail; other types
    are checked against the account (here: a device it does not have)."""
    added = await refusal(
        services, world.reseller, "route did set 0201234500 foip Fax@Acme.nl account:1001"
    )
    assert isinstance(added, NotAllowed) and "support adds them" in added.message
    await say(services, world.staff, "c2 did add 0201234500 account:1001")
    answer = await say(
        services, world.reseller, "route did set 0201234500 foip Fax@Acme.nl account:1001"
    )
    assert "+31201234500 now receives faxes and mails them as PDF to fax@acme.nl." in answer
    async with services.sessions() as session:
        did = await session.scalar(select(Did))
    assert did is not None and (did.forward_type, did.destination) == ("foip", "fax@acme.nl")
    listed = await say(services, world.customer, "route did list")
    assert "+31201234500" in listed and "foip" in listed and "fax@acme.nl" in listed
    shown = await say(services, world.customer, "route did show +31201234500")
    assert "+31201234500 receives faxes and mails them as PDF to fax@acme.nl" in shown
    later = await refusal(services, world.reseller, "route did set +31201234500 local 1001-100")
    assert isinstance(later, Invalid)
    assert later.message.startswith("Account 1001 has no SIP device '1001-100'")
    unknown = await refusal(services, world.reseller, "route did set +31201234500 teleport x")
    assert "type must be one of local, ip," in unknown.message
    hidden = await refusal(services, world.other, "route did show +31201234500")
    assert isinstance(hidden, NotFound)


async def test_the_shell_gets_fax_commands(services: Services, world: World) -> None:
    """The shell runs fax lines like any other: send, then list, exit status 0."""
    out = io.StringIO()
    script = ["fax send +31201234567 Hello from the shell", "fax list", "fax show 999"]
    status = await run_shell(shell_context(services, world.customer), script, out, False)
    text = out.getvalue()
    assert "Fax queued for 1 number(s) (account 1001)." in text
    assert "+31201234567" in text and "queued" in text
    assert "There is no fax #999 among the faxes you may see." in text and status == 1


async def test_fax_list_by_email(services: Services, world: World, database_url: str) -> None:
    """bot@ answers `fax list` from a linked address with the account's faxes."""
    job_id = await send_text_fax(services, world.customer)
    async with running_sink() as sink:
        settings = test_settings(database_url, C2_SMTP_RELAY=f"127.0.0.1:{sink.port}")
        engine = create_engine(settings.database_url)
        try:
            mail_services = Services(settings=settings, engine=engine)
            async with running_gateway(mail_services) as (gateway, _):
                raw = build_mail(
                    sender="jan@acme.nl", to="bot@c2.test", subject="fax list", body=""
                )
                reply = await send_mail(gateway.port, "jan@acme.nl", ["bot@c2.test"], raw)
                assert reply.code == 250
                answer = await sink.wait_for(lambda m: "fax list" in str(m.message["Subject"]))
        finally:
            await engine.dispose()
    assert f"#{job_id}" in answer.text and "+31201234567" in answer.text
