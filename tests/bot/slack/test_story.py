"""A whole case in Slack, from the customer's modal to staff closing it."""

from __future__ import annotations

from c2bot.storage.models import CaseStatus
from tests.bot.slack.conftest import SUPPORT, SlackDriver, shown
from tests.bot.slack.test_case_form import form_values
from tests.conftest import World


async def test_customer_opens_staff_answers_customer_replies_staff_closes(
    bot: SlackDriver, world: World
) -> None:
    """Open by modal, answer in the thread, reply in the DM thread, close by button."""
    await bot.command("new", "UCUST")
    await bot.slack.wait_for("views.open")
    reply = await bot.submit("UCUST", "case_new", form_values(subject="No dial tone"))
    assert reply.content == b""
    await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "DUCUST")
    await bot.door.drain()
    threads = await bot.threads((await bot.last_case()).id)

    await bot.say("USTAFF", SUPPORT, "Which handset?", thread_ts=threads.ts)
    await bot.slack.wait_for(
        "chat.postMessage",
        lambda c: (
            c.params.get("thread_ts") == threads.dm_ts and "Which handset?" in c.params["text"]
        ),
    )
    await bot.say("UCUST", "DUCUST", "Yealink T54W", thread_ts=threads.dm_ts, channel_type="im")
    await bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == threads.ts and "Yealink T54W" in c.params["text"],
    )
    await bot.press("USTAFF", "case_close", str(threads.number), threads)
    await bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == threads.dm_ts and "Closed by" in c.params["text"],
    )

    case = await bot.last_case()
    assert case.status is CaseStatus.CLOSED and case.first_response_at is not None
    history = shown(await bot.answer_to(f"show {threads.number}", "UCUST"))
    for line in ("No dial tone", "Sam Staff: Which handset?", "Jan Jansen: Yealink T54W"):
        assert line in history, line
    assert "Closed by Sam Staff." in history
