"""Internal notes: the message shortcut opens a modal; the note stays on the staff side."""

from __future__ import annotations

from sqlalchemy import select

from c2bot.storage.models import CaseMessage, MessageKind
from tests.bot.slack.conftest import SUPPORT, SlackDriver, new_ts, shown
from tests.conftest import World


def note_values(text: str) -> dict[str, object]:
    return {"note": {"value": {"type": "plain_text_input", "value": text}}}


async def test_note_shortcut_posts_a_locked_note_only_in_the_support_thread(
    bot: SlackDriver, world: World
) -> None:
    """case_note on a thread message opens case_note_modal; its note is posted with a lock only."""
    opened = await bot.open_case(world.customer)
    reply = await bot.shortcut("USTAFF", "Customer says calls drop", new_ts(), opened.ts)
    modal = await bot.slack.wait_for("views.open")
    view = modal.params["view"]
    assert reply.status_code == 200
    assert view["callback_id"] == "case_note_modal"
    assert view["private_metadata"] == str(opened.number)
    assert "Customer says calls drop" in shown(view)

    submitted = await bot.submit(
        "USTAFF", "case_note_modal", note_values("Check trunk 3 first"), view["private_metadata"]
    )
    assert (submitted.status_code, submitted.content) == (200, b"")
    await bot.door.drain()
    posted = [
        (c.params["channel"], c.params.get("thread_ts"), c.params["text"])
        for c in bot.slack.calls_to("chat.postMessage")
        if "Check trunk 3" in c.params["text"]
    ]
    assert posted == [
        (SUPPORT, opened.ts, ":lock: Internal note by Sam Staff: Check trunk 3 first")
    ]
    async with bot.services.sessions() as session:
        note = await session.scalar(select(CaseMessage))
    assert note is not None and note.kind is MessageKind.NOTE


async def test_note_shortcut_outside_a_case_thread_explains_itself(
    bot: SlackDriver, world: World
) -> None:
    """The shortcut on a message that is not in a case thread answers how to use it."""
    await bot.shortcut("USTAFF", "random chatter", new_ts(), new_ts())
    answer = await bot.slack.wait_for("response_url")
    assert "Use this shortcut on a message in a case's thread" in shown(answer.params)
    assert bot.slack.calls_to("views.open") == []


async def test_note_shortcut_is_for_staff_only(bot: SlackDriver, world: World) -> None:
    """A customer running the shortcut is refused before any modal opens."""
    opened = await bot.open_case(world.customer)
    await bot.shortcut("UCUST", "hmm", new_ts(), opened.ts)
    answer = await bot.slack.wait_for("response_url")
    assert "Only support staff can add internal notes." in shown(answer.params)
    assert bot.slack.calls_to("views.open") == []


async def test_empty_note_is_refused_in_the_modal(bot: SlackDriver, world: World) -> None:
    """Submitting an empty note shows the error next to the note field."""
    opened = await bot.open_case(world.customer)
    reply = await bot.submit("USTAFF", "case_note_modal", note_values("  "), str(opened.number))
    assert reply.json() == {
        "response_action": "errors",
        "errors": {"note": "The message is empty."},
    }


async def test_note_by_command_works_too(bot: SlackDriver, world: World) -> None:
    """`/case note ID text` adds the same internal note through the grammar."""
    opened = await bot.open_case(world.customer)
    answer = await bot.answer_to(f"note {opened.number} Escalated to carrier", "USTAFF")
    await bot.door.drain()
    assert f"Internal note added to case #{opened.number}." in shown(answer)
    texts = [c.params["text"] for c in bot.slack.calls_to("chat.postMessage")]
    assert ":lock: Internal note by Sam Staff: Escalated to carrier" in texts
