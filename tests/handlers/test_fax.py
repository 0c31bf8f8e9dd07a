"""Faxes in the domain layer: numbers and the toll-fraud guard, senders, settings, jobs."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.handlers import dids, fax
from c2bot.handlers.accounts import account_by_number
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.storage.crypto import SecretUnreadable, unseal
from c2bot.storage.fax import FaxPolicy, fax_policy
from c2bot.storage.models import Channel, FaxJob, FaxSettings, FaxState
from tests.conftest import World, test_settings

PDF = fax.FaxFile("letter.pdf", "application/pdf", b"%PDF-1.4 not rendered here")


def ctx(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SHELL)


async def policy_for(services: Services, number: str = "1001") -> FaxPolicy:
    async with services.sessions() as session:
        account = await account_by_number(session, number)
        return await fax_policy(session, services.settings, account.id)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("020 123 4567", "+31201234567"),
        ("+31 20 123 4567", "+31201234567"),
        ("0031201234567", "+31201234567"),
        ("+32 2 555 12 34", "+3225551234"),
    ],
)
def test_numbers_are_normalised_to_e164(text: str, expected: str) -> None:
    assert fax.normalise_number(text, "NL") == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("hello", "is not a phone number"),
        ("020 123", "is not a valid phone number"),
        ("", "No fax number was given"),
    ],
)
def test_bad_numbers_are_refused_in_words(text: str, words: str) -> None:
    with pytest.raises(Invalid) as refused:
        fax.normalise_number(text, "NL")
    assert words in refused.value.message


async def test_guard_refuses_premium_satellite_and_unlisted(
    services: Services, world: World
) -> None:
    policy = await policy_for(services)
    assert fax.check_destination("020 123 4567", policy, "NL") == "+31201234567"
    cases = {
        "0909 123 4567": "premium-rate",  # Dutch 0909: entertainment, premium rate
        "+870 772 123 456": "satellite",  # Inmarsat
        "+7 495 123 45 67": "RU, which is not among the countries",
    }
    for number, words in cases.items():
        with pytest.raises(Invalid) as refused:
            fax.check_destination(number, policy, "NL")
        assert words in refused.value.message, number


async def test_split_numbers_from_a_subject() -> None:
    assert fax.split_numbers("020 123 4567, +32 2 555 12 34; 010-1234567") == [
        "020 123 4567",
        "+32 2 555 12 34",
        "010-1234567",
    ]
    assert fax.split_numbers("+31201234567 and 0201234568") == ["+31201234567", "0201234568"]


async def test_submit_is_idempotent_by_source_ref(services: Services, world: World) -> None:
    sub = fax.FaxSubmission(
        numbers=["020 123 4567", "+32 2 555 12 34"], files=[PDF], source_ref="mail:<a@b>"
    )
    first = await fax.submit_fax(ctx(services, world.customer), sub)
    again = await fax.submit_fax(ctx(services, world.customer), sub)
    assert not first.duplicate and again.duplicate
    assert again.request_id == first.request_id
    assert [n for _, n in first.jobs] == ["+31201234567", "+3225551234"]
    async with services.sessions() as session:
        jobs = list(await session.scalars(select(FaxJob)))
    assert len(jobs) == 2
    assert {j.max_attempts for j in jobs} == {services.settings.fax_retries + 1}
    assert {j.state for j in jobs} == {FaxState.QUEUED}


async def test_partial_submission_reports_refused_numbers(services: Services, world: World) -> None:
    sub = fax.FaxSubmission(numbers=["020 123 4567", "0909 123 4567"], files=[PDF])
    with pytest.raises(Invalid) as refused:
        await fax.submit_fax(ctx(services, world.customer), sub)
    assert "premium-rate" in refused.value.message
    accepted = await fax.submit_fax(ctx(services, world.customer), sub, partial=True)
    assert [n for _, n in accepted.jobs] == ["+31201234567"]
    assert accepted.refused[0][0] == "0909 123 4567"


async def test_nothing_to_send_is_refused(services: Services, world: World) -> None:
    with pytest.raises(Invalid) as refused:
        await fax.submit_fax(ctx(services, world.customer), fax.FaxSubmission(["0201234567"]))
    assert "nothing to fax" in refused.value.message


async def test_caller_id_must_be_the_accounts_own_number(services: Services, world: World) -> None:
    await fax.set_did_foip(ctx(services, world.staff), "+31201234500", "fax@acme.nl", "1001")
    sub = fax.FaxSubmission(numbers=["0201234567"], text="hello", caller="+31201239999")
    with pytest.raises(Invalid) as refused:
        await fax.submit_fax(ctx(services, world.customer), sub)
    assert "not a number of account 1001" in refused.value.message
    ok = await fax.submit_fax(
        ctx(services, world.customer),
        fax.FaxSubmission(numbers=["0201234567"], text="hello", caller="020 123 4500"),
    )
    async with services.sessions() as session:
        job = await session.get(FaxJob, ok.jobs[0][0])
        assert job is not None
        assert job.request.caller_number == "+31201234500"


async def test_visibility_along_the_tree(services: Services, world: World) -> None:
    accepted = await fax.submit_fax(
        ctx(services, world.customer), fax.FaxSubmission(["0201234567"], text="hi")
    )
    job_id = accepted.jobs[0][0]
    view = await fax.show_fax(ctx(services, world.reseller), job_id)
    assert view.job.number == "+31201234567"
    for outsider in (world.other, world.reseller2):
        with pytest.raises(NotFound):
            await fax.show_fax(ctx(services, outsider), job_id)
        with pytest.raises(NotFound):
            await fax.cancel_fax(ctx(services, outsider), job_id)
    listed = await fax.list_faxes(ctx(services, world.other), fax.FaxFilter())
    assert listed.table is None


async def test_cancel_and_retry(services: Services, world: World) -> None:
    accepted = await fax.submit_fax(
        ctx(services, world.customer), fax.FaxSubmission(["0201234567"], text="hi")
    )
    job_id = accepted.jobs[0][0]
    await fax.cancel_fax(ctx(services, world.customer), job_id)
    with pytest.raises(Invalid) as again:
        await fax.cancel_fax(ctx(services, world.customer), job_id)
    assert "already cancelled" in again.value.message
    await fax.retry_fax(ctx(services, world.customer), job_id)
    async with services.sessions() as session:
        job = await session.get(FaxJob, job_id)
        assert job is not None and job.state is FaxState.QUEUED


async def test_daily_page_limit(services: Services, world: World) -> None:
    await fax.set_fax_settings(
        ctx(services, world.reseller), fax.FaxSettingsChange(account="1001", daily_pages=3)
    )
    accepted = await fax.submit_fax(
        ctx(services, world.customer), fax.FaxSubmission(["0201234567"], text="hi")
    )
    async with services.sessions.begin() as session:
        job = await session.get(FaxJob, accepted.jobs[0][0])
        assert job is not None
        job.pages_sent, job.started_at, job.state = 3, services.clock(), FaxState.SENT
    with pytest.raises(Invalid) as refused:
        await fax.submit_fax(
            ctx(services, world.customer), fax.FaxSubmission(["0201234567"], text="again")
        )
    assert "has sent its 3 fax pages for today" in refused.value.message


async def test_settings_inherit_and_guard_is_set_from_above(
    services: Services, world: World
) -> None:
    await fax.set_fax_settings(
        ctx(services, world.reseller), fax.FaxSettingsChange(account="R100", retries=5)
    )
    # A reseller cannot lift its own guard; support can.
    with pytest.raises(NotAllowed):
        await fax.set_fax_settings(
            ctx(services, world.reseller), fax.FaxSettingsChange(account="R100", countries="RU")
        )
    await fax.set_fax_settings(
        ctx(services, world.staff), fax.FaxSettingsChange(account="R100", countries="NL,BE,RU")
    )
    policy = await policy_for(services, "1001")
    assert policy.retries == 5 and "RU" in policy.countries
    assert policy.set_at["retries"].startswith("account ")
    with pytest.raises(NotAllowed):
        await fax.set_fax_settings(
            ctx(services, world.customer), fax.FaxSettingsChange(allow_premium=True)
        )
    # A customer may set its own retries; others' settings are out of reach.
    await fax.set_fax_settings(ctx(services, world.customer), fax.FaxSettingsChange(retries=1))
    assert (await policy_for(services, "1001")).retries == 1
    with pytest.raises(NotAllowed):
        await fax.set_fax_settings(
            ctx(services, world.other), fax.FaxSettingsChange(account="1001", retries=9)
        )


async def test_mailbox_password_is_sealed_and_never_shown(services: Services, world: World) -> None:
    change = fax.FaxSettingsChange(
        account="R100",
        imap_host="imap.resell.nl",
        imap_user="fax@resell.nl",
        imap_password="hunter2-secret",
        imap_tls=True,
    )
    reply = await fax.set_fax_settings(ctx(services, world.reseller), change)
    shown = repr(reply)
    assert "hunter2" not in shown and "password set" in shown
    async with services.sessions() as session:
        row = await session.get(FaxSettings, world.reseller.account_id)
        assert row is not None and row.imap_password is not None
        assert "hunter2" not in row.imap_password
        assert unseal(services.settings, row.imap_password) == "hunter2-secret"
        other_key = test_settings(services.settings.database_url, C2_SECRET_KEY="another")
        with pytest.raises(SecretUnreadable):
            unseal(other_key, row.imap_password)


async def test_sender_belongs_to_one_account_and_smtp_password_checks(
    services: Services, world: World
) -> None:
    reply = await fax.allow_sender(
        ctx(services, world.reseller), "Scanner@Acme.nl", "1001", smtp_password=True
    )
    password = dict(reply.fields)["SMTP password (shown once)"]
    async with services.sessions() as session:
        sender = await fax.sender_for(session, "scanner@acme.nl")
    assert sender is not None
    assert fax.password_matches(sender.smtp_password_hash, password)
    assert not fax.password_matches(sender.smtp_password_hash, password + "x")
    with pytest.raises(Invalid) as taken:
        await fax.allow_sender(ctx(services, world.staff), "scanner@acme.nl", "2001")
    assert "already sends faxes for account 1001" in taken.value.message
    with pytest.raises(NotAllowed):
        await fax.allow_sender(ctx(services, world.other), "x@other.nl", "1001")


async def test_foip_did(services: Services, world: World) -> None:
    """Numbers come from the carrier: only staff put a new one on an account; then the
    account's own people route it as FOIP."""
    for actor in (world.customer, world.reseller):
        with pytest.raises(NotAllowed):
            await fax.set_did_foip(ctx(services, actor), "0201234567", "a@acme.nl", "1001")
    await fax.set_did_foip(ctx(services, world.staff), "0201234567", "a@acme.nl", "1001")
    reply = await fax.set_did_foip(ctx(services, world.customer), "+31201234567", "b@acme.nl", None)
    assert "b@acme.nl" in reply.title
    with pytest.raises(NotFound):
        await dids.show_did(ctx(services, world.other), "+31201234567")


async def test_a_reseller_cannot_loosen_the_guard_through_a_customer(
    services: Services, world: World
) -> None:
    """Rows below the top account only make the guard stricter."""
    change = fax.FaxSettingsChange(
        account="1001", countries="NL,BE,RU", allow_premium=True, daily_pages=0
    )
    await fax.set_fax_settings(ctx(services, world.reseller), change)
    policy = await policy_for(services, "1001")
    assert policy.countries == ("NL", "BE") and not policy.allow_premium
    assert policy.daily_pages == services.settings.fax_daily_pages
    # Support widens the reseller itself; its customers inherit, and may be narrowed again.
    await fax.set_fax_settings(
        ctx(services, world.staff), fax.FaxSettingsChange(account="R100", countries="NL,RU")
    )
    assert (await policy_for(services, "1001")).countries == ("NL", "RU")
    assert (await policy_for(services, "1002")).countries == ("NL", "RU")
