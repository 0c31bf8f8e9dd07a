"""Slash commands through the shared grammar: help, list, show, and who may see which case."""

from __future__ import annotations

from tests.bot.slack.conftest import SlackDriver, shown
from tests.conftest import World


async def test_case_help(bot: SlackDriver, world: World) -> None:
    """`/case help` lists the verbs, as an ephemeral Block Kit reply."""
    answer = await bot.answer_to("help", "UCUST")
    text = shown(answer)
    assert answer["response_type"] == "ephemeral"
    assert answer["blocks"][0]["type"] == "section"
    for verb in ("case new", "case list", "case show", "case close", "case reopen"):
        assert verb in text


async def test_c2_without_object_gives_the_overview(bot: SlackDriver, world: World) -> None:
    """`/c2` alone answers with the command overview."""
    answer = await bot.answer_to("", "USTAFF", command="/c2")
    assert "c2bot commands" in shown(answer)


async def test_unknown_verb_names_what_was_expected(bot: SlackDriver, world: World) -> None:
    """A verb the grammar does not know is refused with the verbs it expected."""
    answer = await bot.answer_to("frobnicate", "UCUST")
    assert "case has no verb 'frobnicate'" in shown(answer)


async def test_staff_list_shows_cases_as_a_table(bot: SlackDriver, world: World) -> None:
    """`/case list` for staff shows every open case in a monospace table."""
    first = await bot.open_case(world.customer)
    second = await bot.open_case(world.other, subject="Invoice wrong")
    answer = await bot.answer_to("list", "USTAFF")
    tables = [
        b["text"]["text"] for b in answer["blocks"] if "```" in b.get("text", {}).get("text", "")
    ]
    assert len(tables) == 1
    assert f"#{first.number}" in tables[0] and f"#{second.number}" in tables[0]
    assert "Invoice wrong" in tables[0]


async def test_customer_sees_own_case(bot: SlackDriver, world: World) -> None:
    """A customer's `/case show` of its own case shows the details as fields."""
    opened = await bot.open_case(world.customer)
    answer = await bot.answer_to(f"show {opened.number}", "UCUST")
    text = shown(answer)
    assert f"Case #{opened.number}: Calls drop" in text
    assert "High: (Partial) outage on selected services, a workaround exists" in text


async def test_customer_of_another_account_cannot_see_the_case(
    bot: SlackDriver, world: World
) -> None:
    """Piet (account 2001) asking for a case of 1001 is refused, ephemerally."""
    opened = await bot.open_case(world.customer)
    answer = await bot.answer_to(f"show {opened.number}", "UOTHER")
    assert answer["response_type"] == "ephemeral"
    assert "among the cases you may see" in shown(answer)
    assert "Calls drop" not in shown(answer)


async def test_reseller_cannot_see_another_resellers_customers_case(
    bot: SlackDriver, world: World
) -> None:
    """Reseller R200 cannot see a case of R100's customer 1001; R100 can."""
    opened = await bot.open_case(world.customer)
    refused = await bot.answer_to(f"show {opened.number}", "URES2")
    allowed = await bot.answer_to(f"show {opened.number}", "URES")
    assert "among the cases you may see" in shown(refused)
    assert "Calls drop" in shown(allowed)


async def test_text_form_of_case_new_opens_a_case(bot: SlackDriver, world: World) -> None:
    """`/case new` with words opens the case directly and answers with its number."""
    answer = await bot.answer_to(
        'new type:invoice priority:low subject:"Invoice 42" description:"Twice billed"', "UCUST"
    )
    case = await bot.last_case()
    assert f"Case #{case.id} opened: Invoice 42" in shown(answer)
    card = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "CSUPPORT")
    assert "Question about my invoice / financial details" in shown(card.params)
