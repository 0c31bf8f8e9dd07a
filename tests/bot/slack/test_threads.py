"""Case threads: staff answer in the support thread, customers in their DM thread."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from c2bot.handlers import cases
from c2bot.storage.models import Case, CaseMessage, Channel, MessageKind
from tests.bot.slack.conftest import SUPPORT, SlackDriver, effects, new_ts, shown
from tests.conftest import World
from tests.support.slack import SlackCall, message_event


async def test_staff_answer_in_the_thread_reaches_the_customers_dm(
    bot: SlackDriver, world: World
) -> None:
    """A staff message in the card's thread is stored as the answer and posted in the DM thread."""
    opened = await bot.open_case(world.customer)
    await bot.say("USTAFF", SUPPORT, "Please reboot the <b>phone</b>", thread_ts=opened.ts)
    dm = await bot.slack.wait_for(
        "chat.postMessage", lambda c: c.params.get("thread_ts") == opened.dm_ts
    )
    assert dm.params["channel"] == "DUCUST"
    assert dm.params["text"] == "*Sam Staff* (support): Please reboot the &lt;b&gt;phone&lt;/b&gt;"
    await bot.door.drain()
    async with bot.services.sessions() as session:
        message = await session.scalar(select(CaseMessage))
        case = await session.get(Case, opened.number)
    assert message is not None and message.kind is MessageKind.STAFF
    assert message.slack_ts is not None and message.channel is Channel.SLACK
    assert case is not None and case.first_response_at is not None
    support_posts = [
        c for c in bot.slack.calls_to("chat.postMessage") if c.params.get("thread_ts") == opened.ts
    ]
    assert support_posts == []


async def test_staff_file_in_the_thread_reaches_the_customer(
    bot: SlackDriver, world: World
) -> None:
    """A file staff attach in the thread is fetched with the bot token and shared in the DM."""
    opened = await bot.open_case(world.customer)
    hosted = bot.slack.host_file("config.xml", b"<gateway/>", "text/xml")
    await bot.say("USTAFF", SUPPORT, "New config", thread_ts=opened.ts, files=[hosted])
    await bot.slack.wait_for("files.completeUploadExternal")
    await bot.door.drain()
    upload = next(iter(bot.slack.uploads.values()))
    assert (upload.channel_id, upload.thread_ts, upload.data) == (
        "DUCUST",
        opened.dm_ts,
        b"<gateway/>",
    )


async def test_customer_reply_in_dm_thread_lands_in_the_support_thread(
    bot: SlackDriver, world: World
) -> None:
    """The customer's reply in its DM thread is stored and posted in the support thread."""
    opened = await bot.open_case(world.customer)
    assert opened.dm_channel == "DUCUST" and opened.dm_ts is not None
    await bot.say("UCUST", "DUCUST", "Still dropping", thread_ts=opened.dm_ts, channel_type="im")
    post = await bot.slack.wait_for(
        "chat.postMessage", lambda c: c.params.get("thread_ts") == opened.ts
    )
    assert post.params["channel"] == SUPPORT
    assert post.params["text"] == "*Customer* (Jan Jansen, via slack): Still dropping"


async def test_customer_in_the_support_thread_is_told_only_staff_answer(
    bot: SlackDriver, world: World
) -> None:
    """A non-staff message in a case thread gets an ephemeral refusal and is not stored."""
    opened = await bot.open_case(world.customer)
    await bot.say("URES", SUPPORT, "me too", thread_ts=opened.ts)
    refusal = await bot.slack.wait_for("chat.postEphemeral")
    await bot.door.drain()
    assert refusal.params["user"] == "URES" and refusal.params["thread_ts"] == opened.ts
    assert "Only support staff answer in case threads" in shown(refusal.params)
    async with bot.services.sessions() as session:
        assert list(await session.scalars(select(CaseMessage))) == []


async def test_messages_outside_case_threads_and_edits_are_ignored(
    bot: SlackDriver, world: World
) -> None:
    """Top-level channel messages, other threads and message_changed events change nothing."""
    opened = await bot.open_case(world.customer)
    before = len(bot.slack.calls)
    await bot.say("USTAFF", SUPPORT, "lunch?")
    await bot.say("USTAFF", SUPPORT, "in another thread", thread_ts=new_ts())
    changed = {
        "type": "message",
        "subtype": "message_changed",
        "channel": SUPPORT,
        "ts": new_ts(),
        "message": {"type": "message", "user": "USTAFF", "text": "edit", "ts": opened.ts},
    }
    await bot.event(changed)
    await bot.door.drain()
    assert effects(bot.slack, before) == []
    async with bot.services.sessions() as session:
        assert list(await session.scalars(select(CaseMessage))) == []


async def test_answer_given_outside_slack_shows_in_both_threads(
    bot: SlackDriver, world: World
) -> None:
    """A staff answer from the shell is posted in the support thread and in the customer's DM."""
    opened = await bot.open_case(world.customer)
    ctx = bot.services.context(world.staff, Channel.SHELL)
    await cases.staff_reply(ctx, cases.CaseMessageIn(opened.number, "Fixed on our side"))
    await bot.door.drain()
    texts = {
        c.params.get("thread_ts"): c.params["text"] for c in bot.slack.calls_to("chat.postMessage")
    }
    assert texts[opened.ts] == "*Sam Staff* answered (via shell): Fixed on our side"
    assert texts[opened.dm_ts] == "*Sam Staff* (support): Fixed on our side"


async def test_unverified_customer_reply_is_marked(bot: SlackDriver, world: World) -> None:
    """A reply from a sender that does not match the case is posted with a clear warning."""
    opened = await bot.open_case(world.customer)
    ctx = bot.services.context(world.other, Channel.EMAIL)
    message = cases.CaseMessageIn(
        opened.number, "Close it now", verified=False, author_label="mallory@evil.test"
    )
    await cases.customer_reply(ctx, message)
    post = await bot.slack.wait_for(
        "chat.postMessage", lambda c: c.params.get("thread_ts") == opened.ts
    )
    assert post.params["text"].startswith(":warning: UNVERIFIED sender")
    assert "*Customer* (mallory@evil.test, via email): Close it now" in post.params["text"]


async def test_reminder_mentions_the_assignee_or_here(bot: SlackDriver, world: World) -> None:
    """A first-response reminder mentions nobody in particular until someone is assigned."""
    opened = await bot.open_case(world.customer, priority=cases.Priority.HIGHEST)
    later = bot.services.clock() + timedelta(minutes=20)
    system = replace(bot.services.context(world.admin, Channel.SYSTEM), clock=lambda: later)
    assert await cases.due_reminders(system) == [opened.number]
    post = await bot.slack.wait_for(
        "chat.postMessage", lambda c: c.params.get("thread_ts") == opened.ts
    )
    assert post.params["text"].startswith(":alarm_clock: <!here> First-response target")


async def test_missing_card_is_posted_later(bot: SlackDriver, world: World) -> None:
    """When Slack refuses the card, the case stays without a thread until the periodic repost."""
    bot.slack.fail_next("chat.postMessage", "internal_error")
    ctx = bot.services.context(world.customer, Channel.SLACK)
    view = await cases.open_case(
        ctx,
        cases.NewCase(cases.CaseType.PRICING, cases.Priority.LOW, "Price list", "For 2026"),
    )
    await bot.door.drain()
    async with bot.services.sessions() as session:
        case = await session.get(Case, view.number)
        assert case is not None and case.slack_ts is None
    assert await bot.door.catch_up(older_than=timedelta(0)) == 1
    reposted = await bot.threads(view.number)
    assert reposted.ts is not None
    cards = [c for c in bot.slack.calls_to("chat.postMessage") if c.params["channel"] == SUPPORT]
    assert len(cards) == 2  # the refused one and the repost
    assert await bot.door.catch_up(older_than=timedelta(0)) == 0


async def test_reply_missed_during_outage_is_shown_later(bot: SlackDriver, world: World) -> None:
    """A customer reply Slack refused is posted into the thread by the periodic repost, once."""
    threads = await bot.open_case(world.customer)
    bot.slack.fail_next("chat.postMessage", "internal_error")
    ctx = bot.services.context(world.customer, Channel.EMAIL)
    await cases.customer_reply(ctx, cases.CaseMessageIn(threads.number, "Still broken here"))
    await bot.door.drain()

    def in_thread(call: SlackCall) -> bool:
        return call.params.get("thread_ts") == threads.ts and "Still broken" in call.params["text"]

    before = [c for c in bot.slack.calls_to("chat.postMessage") if in_thread(c)]
    assert len(before) == 1  # the refused attempt
    assert await bot.door.catch_up(older_than=timedelta(0)) == 1
    after = [c for c in bot.slack.calls_to("chat.postMessage") if in_thread(c)]
    assert len(after) == 2
    assert await bot.door.catch_up(older_than=timedelta(0)) == 0


async def test_redelivered_event_is_stored_once(bot: SlackDriver, world: World) -> None:
    """Slack's retry of the same message event does not store or send the answer twice."""
    opened = await bot.open_case(world.customer)
    event = message_event("USTAFF", SUPPORT, "Once only", new_ts(), opened.ts)
    await bot.event(event)
    await bot.door.drain()
    await bot.event(event)
    await bot.door.drain()
    async with bot.services.sessions() as session:
        assert len(list(await session.scalars(select(CaseMessage)))) == 1
    sent = [c for c in bot.slack.calls_to("chat.postMessage") if "Once only" in c.params["text"]]
    assert len(sent) == 1


async def test_file_slack_will_not_give_keeps_the_message(bot: SlackDriver, world: World) -> None:
    """A file that cannot be fetched is named in the stored message and the author is told."""
    opened = await bot.open_case(world.customer)
    hosted = bot.slack.host_file("log.txt", b"x")
    broken = hosted | {"url_private_download": f"{bot.slack.base_url}/files/FNOPE/log.txt"}
    await bot.say("USTAFF", SUPPORT, "See log", thread_ts=opened.ts, files=[broken])
    warning = await bot.slack.wait_for("chat.postEphemeral")
    await bot.door.drain()
    assert "Slack would not give us log.txt" in shown(warning.params)
    async with bot.services.sessions() as session:
        message = await session.scalar(select(CaseMessage))
    assert message is not None
    assert message.body == "See log\n(Files Slack would not give us: log.txt)"


async def test_case_opened_by_staff_gets_no_dm_copy(bot: SlackDriver, world: World) -> None:
    """Staff opening a case for a customer work in the support thread; nobody gets a DM card."""
    opened = await bot.open_case(world.staff, account="1001", contact="jan@acme.nl")
    assert (opened.dm_channel, opened.dm_ts) == (None, None)
    assert bot.slack.calls_to("conversations.open") == []
