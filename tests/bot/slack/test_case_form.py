"""The new-case modal: what it offers, how it refuses, and what a submission sets in motion."""

from __future__ import annotations

from sqlalchemy import select

from c2bot.storage.models import CaseFile, CaseStatus, CaseType, Priority
from tests.bot.slack.conftest import SUPPORT, Json, SlackDriver, shown
from tests.conftest import World


def form_values(
    subject: str | None = "Calls drop",
    description: str | None = "Since 10:00 every call drops after 30 s",
    kind: str = "technical",
    priority: str = "high",
    contact: str | None = None,
    account: str | None = None,
    files: list[Json] | None = None,
) -> Json:
    """view.state.values as Slack sends them for the case_new modal."""

    def chosen(kind: str, value: str | None) -> Json:
        option = {"text": {"type": "plain_text", "text": str(value)}, "value": value}
        return {"value": {"type": kind, "selected_option": option if value else None}}

    def typed(value: str | None) -> Json:
        return {"value": {"type": "plain_text_input", "value": value}}

    values: Json = {
        "type": chosen("static_select", kind),
        "priority": chosen("radio_buttons", priority),
        "subject": typed(subject),
        "description": typed(description),
        "files": {"value": {"type": "file_input", "files": files or []}},
    }
    if contact is not None:
        values["contact"] = chosen("static_select", contact)
    if account is not None:
        values["account"] = typed(account)
    return values


def block(view: Json, block_id: str) -> Json:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


async def test_case_new_without_words_opens_the_modal(bot: SlackDriver, world: World) -> None:
    """`/case new` opens the case_new modal with the portal's choices, the requester preselected."""
    reply = await bot.command("new", "UCUST", trigger_id="T-open-1")
    call = await bot.slack.wait_for("views.open")
    view = call.params["view"]
    assert reply.status_code == 200
    assert call.params["trigger_id"] == "T-open-1"
    assert view["callback_id"] == "case_new"
    types = [o["text"]["text"] for o in block(view, "type")["element"]["options"]]
    assert types == [
        "Technical question about a service",
        "Question about my invoice / financial details",
        "Question about pricing",
    ]
    contact = block(view, "contact")["element"]
    assert [o["value"] for o in contact["options"]] == ["jan@acme.nl", "boss@acme.nl"]
    assert contact["initial_option"]["value"] == "jan@acme.nl"
    priorities = block(view, "priority")["element"]
    assert priorities["type"] == "radio_buttons"
    highest = next(o for o in priorities["options"] if o["value"] == "highest")
    assert highest["description"]["text"] == "Complete outage with big impact, no alternative"
    assert block(view, "description")["element"]["multiline"] is True
    assert block(view, "files")["element"]["type"] == "file_input"
    assert block(view, "files")["optional"] is True
    assert not any(b.get("block_id") == "account" for b in view["blocks"])


async def test_modal_for_staff_and_resellers_asks_for_the_account(
    bot: SlackDriver, world: World
) -> None:
    """Staff type an account number; a reseller picks one of its own accounts."""
    await bot.command("new", "USTAFF", trigger_id="T-staff")
    await bot.command("new", "URES", trigger_id="T-res")
    staff = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-staff")
    res = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-res")
    assert block(staff.params["view"], "account")["element"]["type"] == "plain_text_input"
    accounts = block(res.params["view"], "account")["element"]
    assert [o["value"] for o in accounts["options"]] == ["1001", "1002", "R100"]
    assert accounts["initial_option"]["value"] == "R100"


async def test_empty_subject_is_shown_in_the_modal(bot: SlackDriver, world: World) -> None:
    """Submitting without a subject answers response_action errors keyed by the subject block."""
    reply = await bot.submit("UCUST", "case_new", form_values(subject="  "))
    await bot.door.drain()
    assert reply.status_code == 200
    assert reply.json() == {
        "response_action": "errors",
        "errors": {"subject": "Give the case a subject."},
    }
    assert bot.slack.calls_to("chat.postMessage") == []


async def test_unknown_account_is_shown_in_the_modal(bot: SlackDriver, world: World) -> None:
    """Staff naming an account that does not exist see it next to the account field."""
    reply = await bot.submit("USTAFF", "case_new", form_values(account="9999"))
    assert reply.json() == {
        "response_action": "errors",
        "errors": {"account": "There is no account 9999."},
    }


async def test_reseller_cannot_open_for_another_resellers_customer(
    bot: SlackDriver, world: World
) -> None:
    """A reseller typing an account outside its tree is refused in the modal."""
    reply = await bot.submit("URES", "case_new", form_values(account="2001"))
    errors = reply.json()["errors"]
    assert list(errors) == ["account"]
    assert "may not act on that account" in errors["account"]


async def test_valid_submission_opens_the_case_with_its_file(
    bot: SlackDriver, world: World
) -> None:
    """A valid form closes, opens the case, posts its card with buttons, files it, DMs the card."""
    hosted = bot.slack.host_file("trace.txt", b"INVITE sip:1001@acme", "text/plain")
    values = form_values(contact="boss@acme.nl", priority="highest", files=[hosted])
    reply = await bot.submit("UCUST", "case_new", values)
    assert (reply.status_code, reply.content) == (200, b"")

    card = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == SUPPORT)
    dm = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "DUCUST")
    await bot.door.drain()
    case = await bot.last_case()
    assert (case.type, case.priority, case.status) == (
        CaseType.TECHNICAL,
        Priority.HIGHEST,
        CaseStatus.OPEN,
    )
    assert (case.contact_name, case.source.value) == ("Boss Acme", "slack")
    assert case.slack_channel == SUPPORT and case.slack_ts is not None
    assert case.customer_dm_channel == "DUCUST" and case.customer_dm_ts is not None

    card_text = shown(card.params)
    for detail in (
        f"Case #{case.id}",
        "1001 Acme BV",
        "Technical question about a service",
        "Highest: Complete outage with big impact, no alternative",
        "Boss Acme &lt;boss@acme.nl&gt;",
        "Calls drop",
        "Since 10:00 every call drops after 30 s",
        "due ",
        "slack",
    ):
        assert detail in card_text, detail
    actions = next(b for b in card.params["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        "case_assign",
        "case_priority",
        "case_pending",
        "case_close",
    ]
    assert not any(b["type"] == "actions" for b in dm.params["blocks"])
    assert "Reply in this thread" in shown(dm.params)

    upload = next(iter(bot.slack.uploads.values()))
    assert (upload.filename, upload.data) == ("trace.txt", b"INVITE sip:1001@acme")
    assert (upload.channel_id, upload.thread_ts) == (SUPPORT, case.slack_ts)
    async with bot.services.sessions() as session:
        stored = list(await session.scalars(select(CaseFile)))
    assert [(f.filename, f.posted_to_slack) for f in stored] == [("trace.txt", True)]
