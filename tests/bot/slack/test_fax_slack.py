"""Web2Fax in Slack: the `/fax send` modal, `/fax show`'s preview, and the DM when a fax ends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy import select, update

from c2bot.bot.slack.faxnotify import SlackFaxNotifier
from c2bot.faxgw.events import FaxOutcome
from c2bot.handlers import fax
from c2bot.storage.models import (
    Channel,
    FaxAttempt,
    FaxDocument,
    FaxJob,
    FaxRequest,
    FaxState,
    SlackInbox,
)
from tests.bot.slack.conftest import Json, SlackDriver, shown
from tests.conftest import World

PDF = b"%PDF-1.4\n% a letter, rendered later by the worker\n"


def fax_values(
    numbers: str | None = "+31201234567",
    text: str | None = None,
    files: list[Json] | None = None,
    caller: str | None = None,
    account: str | None = None,
) -> Json:
    """view.state.values as Slack sends them for the fax_send modal."""

    def typed(value: str | None) -> Json:
        return {"value": {"type": "plain_text_input", "value": value}}

    values: Json = {
        "numbers": typed(numbers),
        "name": typed(None),
        "text": typed(text),
        "files": {"value": {"type": "file_input", "files": files or []}},
    }
    if caller is not None:
        option = {"text": {"type": "plain_text", "text": caller}, "value": caller}
        values["caller"] = {"value": {"type": "static_select", "selected_option": option}}
    if account is not None:
        values["account"] = typed(account)
    return values


def block(view: Json, block_id: str) -> Json:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def block_ids(view: Json) -> list[str]:
    return [b["block_id"] for b in view["blocks"]]


async def add_did(bot: SlackDriver, world: World, number: str, account: str = "1001") -> None:
    ctx = bot.services.context(world.staff, Channel.SHELL)
    await fax.set_did_foip(ctx, number, "fax@acme.nl", account)


async def a_fax(bot: SlackDriver, world: World, **job: object) -> int:
    """A text fax from the customer, its job then changed as the worker would have."""
    ctx = bot.services.context(world.customer, Channel.SLACK)
    accepted = await fax.submit_fax(ctx, fax.FaxSubmission(["+31201234567"], text="hi"))
    job_id = accepted.jobs[0][0]
    if job:
        async with bot.services.sessions.begin() as session:
            await session.execute(update(FaxJob).where(FaxJob.id == job_id).values(job))
    return job_id


async def test_fax_send_without_words_opens_the_modal(bot: SlackDriver, world: World) -> None:
    """`/fax send` opens the fax_send modal; the caller id offers the account's own numbers."""
    await add_did(bot, world, "+31201234500")
    await add_did(bot, world, "+31301234500", account="2001")
    reply = await bot.command("send", "UCUST", command="/fax", trigger_id="T-fax")
    call = await bot.slack.wait_for("views.open")
    view = call.params["view"]
    assert reply.status_code == 200 and call.params["trigger_id"] == "T-fax"
    assert view["callback_id"] == "fax_send"
    assert block_ids(view) == ["numbers", "caller", "name", "text", "files"]
    callers = block(view, "caller")["element"]["options"]
    assert [o["value"] for o in callers] == ["+31201234500"]
    assert block(view, "text")["element"]["multiline"] is True
    assert block(view, "files")["element"]["type"] == "file_input"


async def test_the_modal_asks_resellers_and_staff_for_the_account(
    bot: SlackDriver, world: World
) -> None:
    """A reseller picks one of its accounts; staff type an account number."""
    await bot.command("send", "URES", command="/fax", trigger_id="T-res")
    await bot.command("send", "USTAFF", command="/fax", trigger_id="T-staff")
    res = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-res")
    staff = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-staff")
    accounts = block(res.params["view"], "account")["element"]
    assert [o["value"] for o in accounts["options"]] == ["1001", "1002", "R100"]
    assert block(staff.params["view"], "account")["element"]["type"] == "plain_text_input"


async def test_submission_with_a_file_queues_the_fax(bot: SlackDriver, world: World) -> None:
    """The modal closes, the file is fetched from Slack, and its bytes are the fax's document."""
    await add_did(bot, world, "+31201234500")
    hosted = bot.slack.host_file("letter.pdf", PDF, "application/pdf")
    values = fax_values("020 123 4567, +32 2 555 12 34", "Cover note", [hosted], "+31201234500")
    reply = await bot.submit("UCUST", "fax_send", values)
    assert (reply.status_code, reply.content) == (200, b"")
    async with bot.services.sessions() as session:
        kept = list(await session.scalars(select(SlackInbox)))
    assert [row.kind for row in kept] == ["fax_form"]  # written down before the ack
    dm = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "UCUST")
    await bot.door.drain()
    assert "Fax queued for 2 number(s) (account 1001)." in shown(dm.params)
    async with bot.services.sessions() as session:
        request = await session.scalar(select(FaxRequest))
        documents = list(await session.scalars(select(FaxDocument)))
        numbers = list(await session.scalars(select(FaxJob.number).order_by(FaxJob.id)))
        row = await session.get(SlackInbox, kept[0].id)
    assert request is not None and request.source_ref == "slack:view:V1"
    assert (request.caller_number, request.cover_text) == ("+31201234500", "Cover note")
    assert [(d.filename, d.content_type, d.data) for d in documents] == [
        ("letter.pdf", "application/pdf", PDF)
    ]
    assert numbers == ["+31201234567", "+3225551234"]
    assert row is not None and row.done_at is not None


async def test_a_replayed_submission_sends_one_fax(bot: SlackDriver, world: World) -> None:
    """A kept submission replayed after a crash queues the fax; a second replay adds nothing."""
    payload = {"view_id": "V77", "values": fax_values(text="From the inbox")}
    await bot.door.kit.inbox.keep("fax_form", "UCUST", payload)
    await bot.door.kit.inbox.keep("fax_form", "UCUST", payload)
    assert await bot.door.replay_inbox(older_than=timedelta(0)) == 2
    await bot.door.drain()
    async with bot.services.sessions() as session:
        refs = list(await session.scalars(select(FaxRequest.source_ref)))
        jobs = list(await session.scalars(select(FaxJob.id)))
    assert refs == ["slack:view:V77"] and len(jobs) == 1


async def test_errors_are_shown_in_the_modal(bot: SlackDriver, world: World) -> None:
    """Refused numbers, nothing to send, a stranger's caller id and a missing account stay
    in the modal, next to their fields; nothing is queued."""
    await add_did(bot, world, "+31301234500", account="2001")
    cases = [
        ("UCUST", fax_values("+319091234567", "hi"), "numbers", "is a premium-rate number"),
        ("UCUST", fax_values("+870772123456", "hi"), "numbers", "satellite"),
        ("UCUST", fax_values("+74951234567", "hi"), "numbers", "is in RU, which is not among"),
        ("UCUST", fax_values("", "hi"), "numbers", "No fax number was given"),
        ("UCUST", fax_values(text=None), "text", "There is nothing to fax"),
        ("UCUST", fax_values(text="hi", caller="+31301234500"), "caller", "not a number of"),
        ("USTAFF", fax_values(text="hi"), "account", "Name the account the fax is for"),
        ("UOTHER", fax_values(text="hi", account="1001"), "account", "may not act on that"),
    ]
    for user, values, field, words in cases:
        reply = await bot.submit(user, "fax_send", values)
        answer = reply.json()
        assert answer["response_action"] == "errors", (field, words)
        assert list(answer["errors"]) == [field], (answer, words)
        assert words in answer["errors"][field], (answer, words)
    await bot.door.drain()
    async with bot.services.sessions() as session:
        assert await session.scalar(select(FaxJob.id)) is None
        assert await session.scalar(select(SlackInbox.id)) is None


async def test_fax_show_shares_page_one(bot: SlackDriver, world: World, tmp_path: Path) -> None:
    """`/fax show` answers with the fax, and DMs a PNG of page one of its rendered pages."""
    job_id = await a_fax(bot, world)
    tiff = tmp_path / "pages.tif"
    Image.new("1", (1728, 2292), 1).save(tiff, compression="group4", dpi=(204, 196))
    async with bot.services.sessions.begin() as session:
        await session.execute(update(FaxRequest).values(tiff_path=str(tiff), pages=1))
    answer = await bot.answer_to(f"show {job_id}", "UCUST", command="/fax")
    assert answer["response_type"] == "ephemeral"
    assert f"Fax #{job_id} to +31201234567" in shown(answer)
    await bot.slack.wait_for("files.completeUploadExternal")
    upload = next(iter(bot.slack.uploads.values()))
    assert upload.filename == f"fax-{job_id}-page-1.png" and upload.channel_id == "DUCUST"
    assert upload.data.startswith(b"\x89PNG")
    with Image.open(tiff) as page:
        assert page.size == (1728, 2292)


async def test_fax_show_says_when_the_pages_are_gone(
    bot: SlackDriver, world: World, tmp_path: Path
) -> None:
    """A fax whose TIFF was cleaned up is still shown, with a sentence instead of a picture."""
    job_id = await a_fax(bot, world)
    async with bot.services.sessions.begin() as session:
        await session.execute(update(FaxRequest).values(tiff_path=str(tmp_path / "gone.tif")))
    await bot.answer_to(f"show {job_id}", "UCUST", command="/fax")
    await bot.door.drain()
    said = [shown(c.params) for c in bot.slack.calls_to("response_url")]
    assert any(f"The pages of fax #{job_id} are no longer kept" in text for text in said)
    assert bot.slack.uploads == {}


async def test_smtp_password_is_told_to_the_asker_alone(bot: SlackDriver, world: World) -> None:
    """`/fax allow ... smtp` answers ephemerally: the password is never posted in the channel."""
    answer = await bot.answer_to("allow scanner@acme.nl account:1001 smtp", "URES", command="/fax")
    assert answer["response_type"] == "ephemeral"
    assert "SMTP password (shown once)" in shown(answer)
    assert bot.slack.calls_to("chat.postMessage") == []


async def test_notifier_dms_the_sender_when_a_fax_is_sent(bot: SlackDriver, world: World) -> None:
    """A sent fax: its sender gets "Fax #N to ... sent (pages, seconds, remote station)"."""
    now = bot.services.clock()
    job_id = await a_fax(
        bot, world, state=FaxState.SENT, pages_sent=2, remote_station_id="ACME FAX", attempts=1
    )
    async with bot.services.sessions.begin() as session:
        session.add(
            FaxAttempt(
                job_id=job_id,
                call_uuid="7f4de4bc-17d7-11dd-b7a0-db4edd065621",
                server="default",
                answered_at=now,
                ended_at=now + timedelta(seconds=41),
                outcome="sent",
            )
        )
    notifier = SlackFaxNotifier(bot.door.kit)
    async with bot.services.sessions() as session:
        await notifier.within(session, FaxOutcome("sent", job_id=job_id))
    await notifier.after(FaxOutcome("sent", job_id=job_id))
    await bot.door.drain()
    dm = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "DUCUST")
    assert dm.params["text"] == (
        f"Fax #{job_id} to +31201234567 sent (2 pages, 41 s, remote station ACME FAX)."
    )


async def test_notifier_finds_the_sender_by_address(bot: SlackDriver, world: World) -> None:
    """A failed Mail2Fax fax (no person, only a sender address) reaches the linked person."""
    job_id = await a_fax(bot, world, state=FaxState.FAILED, attempts=3, result_text="Far end busy")
    async with bot.services.sessions.begin() as session:
        await session.execute(update(FaxRequest).values(person_id=None, sender_email="jan@acme.nl"))
    notifier = SlackFaxNotifier(bot.door.kit)
    await notifier.after(FaxOutcome("failed", job_id=job_id))
    await bot.door.drain()
    dm = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "DUCUST")
    assert dm.params["text"] == f"Fax #{job_id} to +31201234567 failed: Far end busy (3 attempts)."


async def test_notifier_stays_quiet_and_never_raises(bot: SlackDriver, world: World) -> None:
    """No DM for a sender not on Slack, for received faxes, or when Slack fails."""
    job_id = await a_fax(bot, world, state=FaxState.SENT, pages_sent=1)
    notifier = SlackFaxNotifier(bot.door.kit)
    await notifier.after(FaxOutcome("received", received_id=1))
    await notifier.after(FaxOutcome("sent", job_id=999))
    bot.slack.fail_next("conversations.open", "account_inactive")
    await notifier.after(FaxOutcome("sent", job_id=job_id))
    await bot.door.drain()
    async with bot.services.sessions.begin() as session:
        await session.execute(
            update(FaxRequest).values(person_id=None, sender_email="stranger@acme.nl")
        )
    await notifier.after(FaxOutcome("sent", job_id=job_id))
    await bot.door.drain()
    assert bot.slack.calls_to("chat.postMessage") == []
    assert len(bot.slack.calls_to("conversations.open")) == 1
