"""What we ack is written down first: replies and case forms survive a crash after the ack."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from c2bot.storage.models import Case, CaseMessage, MessageKind, SlackInbox
from tests.bot.slack.conftest import SUPPORT, SlackDriver, message_event, new_ts
from tests.bot.slack.test_case_form import form_values
from tests.conftest import World


async def inbox_rows(bot: SlackDriver) -> list[SlackInbox]:
    async with bot.services.sessions() as session:
        return list(await session.scalars(select(SlackInbox).order_by(SlackInbox.id)))


async def test_thread_reply_is_kept_and_marked_done(bot: SlackDriver, world: World) -> None:
    """A staff reply in a case thread is in the inbox when acked, and done once stored."""
    threads = await bot.open_case(world.customer)
    reply = await bot.say("USTAFF", SUPPORT, "On it", thread_ts=threads.ts)
    assert reply.status_code == 200
    rows = await inbox_rows(bot)
    assert [(r.kind, r.payload["text"]) for r in rows] == [("thread_message", "On it")]
    await bot.door.drain()
    assert (await inbox_rows(bot))[0].done_at is not None


async def test_thread_reply_acked_before_a_crash_is_replayed(
    bot: SlackDriver, world: World
) -> None:
    """A reply whose work never ran (the process died after the ack) is stored by the replay."""
    threads = await bot.open_case(world.customer)
    event = message_event("USTAFF", SUPPORT, "Replayed answer", new_ts(), threads.ts)
    await bot.door.kit.inbox.keep("thread_message", "USTAFF", event)
    assert await bot.door.replay_inbox(older_than=timedelta(0)) == 1
    assert await bot.door.replay_inbox(older_than=timedelta(0)) == 0
    async with bot.services.sessions() as session:
        bodies = list(
            await session.scalars(
                select(CaseMessage.body).where(CaseMessage.kind == MessageKind.STAFF)
            )
        )
    assert bodies == ["Replayed answer"]


async def test_case_form_replayed_twice_opens_one_case(bot: SlackDriver, world: World) -> None:
    """A submitted form whose case was not opened is opened by the replay, and only once."""
    payload = {"view_id": "V123", "values": form_values(subject="From the inbox")}
    row = await bot.door.kit.inbox.keep("case_form", "UCUST", payload)
    await bot.door.kit.inbox.keep("case_form", "UCUST", payload)  # as if the first was not marked
    assert await bot.door.replay_inbox(older_than=timedelta(0)) == 2
    async with bot.services.sessions() as session:
        subjects = list(await session.scalars(select(Case.subject)))
        done = await session.scalar(
            select(func.count()).select_from(SlackInbox).where(SlackInbox.done_at.is_not(None))
        )
    assert subjects == ["From the inbox"] and done == 2 and row > 0


async def test_request_of_a_person_no_longer_linked_is_dropped(
    bot: SlackDriver, world: World
) -> None:
    """A kept request whose person is no longer linked does nothing and is marked done."""
    payload = {"view_id": "V9", "values": form_values(subject="Ghost")}
    await bot.door.kit.inbox.keep("case_form", "UGONE", payload)
    assert await bot.door.replay_inbox(older_than=timedelta(0)) == 1
    async with bot.services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 0


async def test_changing_command_is_kept_reading_one_is_not(bot: SlackDriver, world: World) -> None:
    """`/case close N` is written down before its ack; `/case list` and `/case new` are not."""
    threads = await bot.open_case(world.customer)
    await bot.answer_to("list", "UCUST")
    await bot.command("new", "UCUST")
    await bot.answer_to(f"close {threads.number}", "UCUST")
    await bot.door.drain()
    rows = await inbox_rows(bot)
    assert [(r.kind, r.payload["text"]) for r in rows] == [("command", f"close {threads.number}")]
    assert rows[0].done_at is not None


async def test_command_acked_before_a_crash_is_replayed(bot: SlackDriver, world: World) -> None:
    """A kept `/case close N` whose work never ran closes the case on replay and says so."""
    threads = await bot.open_case(world.customer)
    payload = {
        "command": "/case",
        "text": f"close {threads.number}",
        "channel_id": "C0CMDS",
        "user_id": "UCUST",
    }
    await bot.door.kit.inbox.keep("command", "UCUST", payload)
    assert await bot.door.replay_inbox(older_than=timedelta(0)) == 1
    told = await bot.slack.wait_for("chat.postEphemeral", lambda c: c.params["user"] == "UCUST")
    assert f"Case #{threads.number} closed." in str(told.params)
    async with bot.services.sessions() as session:
        case = await session.get(Case, threads.number)
    assert case is not None and case.status.value == "closed"


async def test_a_password_typed_into_a_command_is_not_kept(bot: SlackDriver, world: World) -> None:
    """`/fax set ... password:...` is kept until done, then only with the password hidden."""
    text = 'set account:R100 mailbox:imap.resell.nl user:fax password:"hunter 2"'
    answer = await bot.answer_to(text, "URES", command="/fax")
    assert "hunter" not in str(answer)
    await bot.door.drain()
    [row] = await inbox_rows(bot)
    assert row.done_at is not None
    assert (
        row.payload["text"] == "set account:R100 mailbox:imap.resell.nl user:fax password:[hidden]"
    )
