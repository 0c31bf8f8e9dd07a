"""The card's buttons: each changes the case, redraws the card and says so in the thread."""

from __future__ import annotations

from c2bot.storage.models import Case, CaseStatus, Priority
from tests.bot.slack.conftest import SUPPORT, CaseThreads, Json, SlackDriver, effects, shown
from tests.conftest import World


def card_updates(bot: SlackDriver, threads: CaseThreads) -> list[Json]:
    return [
        c.params
        for c in bot.slack.calls_to("chat.update")
        if (c.params["channel"], c.params["ts"]) == (SUPPORT, threads.ts)
    ]


def thread_lines(bot: SlackDriver, threads: CaseThreads) -> list[str]:
    return [
        c.params["text"]
        for c in bot.slack.calls_to("chat.postMessage")
        if c.params.get("thread_ts") == threads.ts
    ]


def action_ids(card: Json) -> list[str]:
    actions = next(b for b in card["blocks"] if b["type"] == "actions")
    return [element["action_id"] for element in actions["elements"]]


async def case_row(bot: SlackDriver, number: int) -> Case:
    async with bot.services.sessions() as session:
        case = await session.get(Case, number)
        assert case is not None
        return case


async def test_buttons_assign_prioritise_pend_and_close(bot: SlackDriver, world: World) -> None:
    """Assign, priority, pending and close each update the card and add a line to the thread."""
    opened = await bot.open_case(world.customer)
    number = str(opened.number)

    await bot.press("USTAFF", "case_assign", number, opened)
    assert "Sam Staff" in shown(card_updates(bot, opened)[-1])
    await bot.press("USTAFF", "case_priority", "", opened, option=f"{number}:highest")
    assert "Highest: Complete outage" in shown(card_updates(bot, opened)[-1])
    await bot.press("USTAFF", "case_pending", number, opened)
    pending = card_updates(bot, opened)[-1]
    assert "pending" in shown(pending) and "case_pending" not in action_ids(pending)
    await bot.press("USTAFF", "case_close", number, opened)
    closed = card_updates(bot, opened)[-1]
    assert action_ids(closed) == ["case_reopen"]

    case = await case_row(bot, opened.number)
    assert (case.status, case.priority) == (CaseStatus.CLOSED, Priority.HIGHEST)
    assert case.assignee_id == world.staff.person_id
    assert thread_lines(bot, opened) == [
        "_Assigned to Sam Staff._",
        "_Priority set to highest by Sam Staff._",
        "_Set to pending (waiting for the customer) by Sam Staff._",
        "_Closed by Sam Staff._",
    ]
    dm_lines = [
        c.params["text"]
        for c in bot.slack.calls_to("chat.postMessage")
        if c.params.get("thread_ts") == opened.dm_ts
    ]
    assert dm_lines == ["_Closed by Sam Staff._"]


async def test_reopen_button_reopens_and_tells_the_customer(bot: SlackDriver, world: World) -> None:
    """Reopen on a closed case's card reopens it, in the support thread and in the DM."""
    opened = await bot.open_case(world.customer)
    await bot.press("USTAFF", "case_close", str(opened.number), opened)
    await bot.press("UADMIN", "case_reopen", str(opened.number), opened)
    assert (await case_row(bot, opened.number)).status is CaseStatus.OPEN
    assert "case_close" in action_ids(card_updates(bot, opened)[-1])
    dm = [c.params["text"] for c in bot.slack.calls_to("chat.postMessage")]
    assert "_Reopened by Ada Admin._" in dm


async def test_customer_pressing_a_staff_button_is_refused(bot: SlackDriver, world: World) -> None:
    """A customer pressing Assign to me gets the refusal ephemerally and the case is unchanged."""
    opened = await bot.open_case(world.customer)
    before = len(bot.slack.calls)
    await bot.press("UCUST", "case_assign", str(opened.number), opened)
    refusal = await bot.slack.wait_for("response_url")
    assert refusal.params["response_type"] == "ephemeral"
    assert refusal.params["replace_original"] is False
    assert shown(refusal.params).startswith("Only support staff can take a case.")
    assert [c.method for c in effects(bot.slack, before)] == ["response_url"]
    assert (await case_row(bot, opened.number)).assignee_id is None


async def test_other_customer_cannot_close_a_case_by_button(bot: SlackDriver, world: World) -> None:
    """Pressing Close on someone else's case (a forged payload) is refused by the domain."""
    opened = await bot.open_case(world.customer)
    await bot.press("UOTHER", "case_close", str(opened.number), opened)
    refusal = await bot.slack.wait_for("response_url")
    assert "among the cases you may see" in shown(refusal.params)
    assert (await case_row(bot, opened.number)).status is CaseStatus.OPEN
