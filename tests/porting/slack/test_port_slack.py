"""Number porting through signed Slack requests: the modal, its errors, the cards with the staff
buttons in the support thread, the customer's DM, and the signed letter uploaded back."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pypdf
from sqlalchemy import func, select

from c2bot.bot.portnotices import PortNotices
from c2bot.storage.models import Channel, Did, PortRequest, PortState, SlackInbox
from tests.bot.slack.conftest import SUPPORT, Json, SlackDriver, shown
from tests.conftest import World
from tests.porting.conftest import Clock, signed_pdf
from tests.support.slack import block_actions_payload, view_submission_payload


def typed(value: str | None) -> Json:
    return {"value": {"type": "plain_text_input", "value": value}}


def picked(kind: str, value: str | None) -> Json:
    option = {"text": {"type": "plain_text", "text": str(value)}, "value": value}
    return {"value": {"type": kind, "selected_option": option if value else None}}


def new_values(**overrides: str | None) -> Json:
    """view.state.values of the port_new modal, as Slack sends them."""
    fields: dict[str, str | None] = {
        "company": "Acme BV",
        "contact": "Jan Jansen",
        "email": None,
        "street": "Dorpsstraat",
        "house": "12",
        "addition": None,
        "postcode": "1234AB",
        "city": "Amsterdam",
        "donor": "KPN",
        "donor_customer": "KPN-4711",
        "numbers": "020 123 4567\n0301234500-0301234599",
    }
    date = overrides.pop("date", "2026-12-07")
    fields.update(overrides)
    values: Json = {name: typed(value) for name, value in fields.items()}
    values["contract"] = picked("radio_buttons", "terminate")
    values["line"] = picked("static_select", None)
    values["date"] = {"value": {"type": "datepicker", "selected_date": date}}
    return values


async def submit(
    bot: SlackDriver, user: str, callback: str, values: Json, view_id: str, metadata: str = ""
) -> Any:
    payload = view_submission_payload(user, callback, values, metadata, view_id=view_id)
    return await bot.interact(payload)


async def press(bot: SlackDriver, user: str, action: str, number: int, ts: str) -> None:
    payload = block_actions_payload(
        user, action, str(number), SUPPORT, ts, response_url=bot.slack.response_url()
    )
    assert (await bot.interact(payload)).status_code == 200
    await bot.door.drain()


async def request_made(bot: SlackDriver, user: str = "UCUST", view_id: str = "V10") -> PortRequest:
    reply = await submit(bot, user, "port_new", new_values(), view_id)
    assert (reply.status_code, reply.content) == (200, b"")
    await bot.door.drain()
    async with bot.services.sessions() as session:
        port = await session.scalar(select(PortRequest).order_by(PortRequest.id.desc()).limit(1))
    assert port is not None
    return port


def block_ids(view: Json) -> list[str]:
    return [b.get("block_id", "") for b in view["blocks"]]


def buttons(params: Json) -> list[str]:
    actions = [b for b in params["blocks"] if b["type"] == "actions"]
    return [e["action_id"] for b in actions for e in b["elements"]]


async def test_port_new_opens_the_modal_with_the_portals_fields(
    bot: SlackDriver, world: World, clock: Clock
) -> None:
    """The customer's modal is prefilled with company and contact and the earliest date; a
    reseller picks one of its accounts."""
    reply = await bot.command("new", "UCUST", command="/port", trigger_id="T-port")
    call = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-port")
    view = call.params["view"]
    assert reply.status_code == 200 and view["callback_id"] == "port_new"
    assert block_ids(view) == [
        "company",
        "contact",
        "email",
        "street",
        "house",
        "addition",
        "postcode",
        "city",
        "donor",
        "donor_customer",
        "contract",
        "line",
        "numbers",
        "date",
    ]
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert blocks["company"]["element"]["initial_value"] == "Acme BV"
    assert blocks["contact"]["element"]["initial_value"] == "Jan Jansen"
    assert blocks["date"]["element"] == {
        "type": "datepicker",
        "action_id": "value",
        "initial_date": "2026-12-03",
    }
    assert blocks["numbers"]["element"]["multiline"] is True
    await bot.command("new", "URES", command="/port", trigger_id="T-res")
    res = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-res")
    accounts = res.params["view"]["blocks"][0]
    assert accounts["block_id"] == "account"
    assert [o["value"] for o in accounts["element"]["options"]] == ["1001", "1002", "R100"]


async def test_errors_stay_in_the_modal_next_to_their_fields(
    bot: SlackDriver, world: World, clock: Clock
) -> None:
    """Bad numbers, a weekend date and a bad postcode: all shown at once; nothing is kept."""
    values = new_values(numbers="020, +32 2 555 12 34", postcode="12", date="2026-12-05")
    reply = await submit(bot, "UCUST", "port_new", values, "V1")
    answer = reply.json()
    assert answer["response_action"] == "errors"
    assert answer["errors"] == {
        "numbers": "2 problems: 020 is not a valid NL number; +32 2 555 12 34 is a number in "
        "Belgium, not NL: only NL numbers are ported here",
        "postcode": "The postcode must look like 1234AB (got '12').",
        "date": "2026-12-05 is a Saturday: porting happens on working days.",
    }
    stranger = await submit(bot, "UOTHER", "port_new", new_values(account="1001"), "V2")
    assert list(stranger.json()["errors"]) == ["account"]
    await bot.door.drain()
    async with bot.services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SlackInbox)) == 0
        assert await session.scalar(select(func.count()).select_from(PortRequest)) == 0


async def test_a_submitted_request_gets_its_cards_and_the_letter_in_the_dm(
    bot: SlackDriver, world: World, clock: Clock, notices: PortNotices
) -> None:
    """Kept before the ack, made after it: the support card with staff buttons, the customer's
    card with the upload button, and the filled-in letter as a PDF in the customer's thread."""
    port = await request_made(bot)
    assert port.source_ref == "slack:view:V10" and port.state is PortState.DRAFT
    async with bot.services.sessions() as session:
        kinds = list(await session.scalars(select(SlackInbox.kind)))
    assert kinds == ["port_form"]
    reply = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "UCUST")
    assert f"Port request #{port.id} made" in shown(reply.params)
    card = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == SUPPORT)
    assert buttons(card.params) == ["port_upload", "port_cancel"]
    assert f"Port request #{port.id}" in shown(card.params)
    dm = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "DUCUST")
    assert buttons(dm.params) == ["port_upload", "port_letter", "port_cancel"]
    await bot.slack.wait_for("files.completeUploadExternal")
    letter = next(u for u in bot.slack.uploads.values() if u.filename.endswith(".pdf"))
    assert letter.channel_id == "DUCUST"
    text = pypdf.PdfReader(io.BytesIO(letter.data)).pages[0].extract_text()
    assert "Acme BV" in text and "+31 30 123 4500 to +31 30 123 4599" in text
    async with bot.services.sessions() as session:
        fresh = await session.get(PortRequest, port.id)
    assert fresh is not None and fresh.slack_channel == SUPPORT and fresh.dm_channel == "DUCUST"
    assert letter.thread_ts == fresh.dm_ts
    line = await bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == fresh.slack_ts and "made by" in c.params["text"],
    )
    assert "Waiting for the signed letter" in line.params["text"]


async def test_the_signed_letter_is_uploaded_and_staff_work_the_request_with_buttons(
    bot: SlackDriver, world: World, clock: Clock, notices: PortNotices
) -> None:
    """Upload -> submitted; a customer's Accept is refused; staff accept, reject through the
    modal (its errors in place), and the customer hears each step in the DM."""
    port = await request_made(bot)
    await bot.command(f"sign {port.id}", "UCUST", command="/port", trigger_id="T-sign")
    opened = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-sign")
    assert opened.params["view"]["callback_id"] == "port_sign"
    assert opened.params["view"]["private_metadata"] == str(port.id)
    hosted = bot.slack.host_file("signed.pdf", signed_pdf(), "application/pdf")
    empty = await submit(bot, "UCUST", "port_sign", {"file": typed(None)}, "V20", str(port.id))
    assert empty.json()["errors"] == {"file": "Attach the signed letter."}
    files = {"file": {"value": {"type": "file_input", "files": [hosted]}}}
    sent = await submit(bot, "UCUST", "port_sign", files, "V21", str(port.id))
    assert (sent.status_code, sent.content) == (200, b"")
    await bot.door.drain()
    async with bot.services.sessions() as session:
        signed = await session.get(PortRequest, port.id)
    assert signed is not None and signed.state is PortState.SUBMITTED
    assert signed.slack_ts is not None
    shared = [u for u in bot.slack.uploads.values() if u.filename == "signed.pdf"]
    assert [(u.channel_id, u.thread_ts) for u in shared] == [(SUPPORT, signed.slack_ts)]
    update = await bot.slack.wait_for(
        "chat.update",
        lambda c: c.params["channel"] == SUPPORT and "port_accept" in buttons(c.params),
    )
    assert buttons(update.params) == ["port_accept", "port_reject", "port_delay", "port_cancel"]

    before = len(bot.slack.calls_to("response_url"))
    await press(bot, "UCUST", "port_accept", port.id, signed.slack_ts)
    refusal = await bot.next_call("response_url", before)
    assert "Only support staff can change the state" in shown(refusal.params)

    await press(bot, "USTAFF", "port_reject", port.id, signed.slack_ts)
    modal = await bot.slack.wait_for(
        "views.open", lambda c: c.params["view"]["callback_id"] == "port_status"
    )
    metadata = modal.params["view"]["private_metadata"]
    unpicked = {"code": picked("static_select", None), "reason": typed(None)}
    no_code = await submit(bot, "USTAFF", "port_status", unpicked, "V30", metadata)
    assert list(no_code.json()["errors"]) == ["code"]
    values = {"code": picked("static_select", "customer-number"), "reason": typed("Unknown 4711")}
    done = await submit(bot, "USTAFF", "port_status", values, "V31", metadata)
    assert (done.status_code, done.content) == (200, b"")
    await bot.door.drain()
    async with bot.services.sessions() as session:
        rejected = await session.get(PortRequest, port.id)
    assert rejected is not None and rejected.state is PortState.REJECTED
    assert (rejected.reason_code, rejected.reason) == ("customer-number", "Unknown 4711")
    told = await bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params["channel"] == "DUCUST" and "rejected" in c.params["text"],
    )
    assert "customer number at the current operator does not match" in told.params["text"]
    assert told.params["thread_ts"] == rejected.dm_ts


async def test_staff_schedule_and_complete_and_the_numbers_become_dids(
    bot: SlackDriver, world: World, clock: Clock, notices: PortNotices
) -> None:
    """Accept, Schedule… (date in the modal), Complete: 101 DIDs, and the customer is told to
    set their forwarding."""
    port = await request_made(bot)
    early = await bot.answer_to(f"status {port.id} accepted", "USTAFF", command="/port")
    assert "is draft; it can become cancelled or submitted, not accepted" in shown(early)
    hosted = bot.slack.host_file("signed.jpg", _jpeg(), "image/jpeg")
    files = {"file": {"value": {"type": "file_input", "files": [hosted]}}}
    await submit(bot, "USTAFF", "port_sign", files, "V40", str(port.id))
    await bot.door.drain()
    async with bot.services.sessions() as session:
        card = await session.get(PortRequest, port.id)
    assert card is not None and card.slack_ts is not None and card.state is PortState.SUBMITTED
    await press(bot, "USTAFF", "port_accept", port.id, card.slack_ts)
    await press(bot, "USTAFF", "port_schedule", port.id, card.slack_ts)
    modal = await bot.slack.wait_for(
        "views.open", lambda c: c.params["view"]["callback_id"] == "port_status"
    )
    date_block = next(b for b in modal.params["view"]["blocks"] if b.get("block_id") == "date")
    assert date_block["element"]["initial_date"] == "2026-12-07"
    picked_date = {"date": {"value": {"type": "datepicker", "selected_date": "2026-12-08"}}}
    meta = modal.params["view"]["private_metadata"]
    await submit(bot, "USTAFF", "port_status", picked_date, "V41", meta)
    await bot.door.drain()
    await press(bot, "USTAFF", "port_complete", port.id, card.slack_ts)
    async with bot.services.sessions() as session:
        done = await session.get(PortRequest, port.id)
        dids = await session.scalar(select(func.count()).select_from(Did))
    assert done is not None and done.state is PortState.COMPLETED and dids == 101
    assert done.port_date is not None and done.port_date.isoformat() == "2026-12-08"
    told = await bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params["channel"] == "DUCUST" and "Opgeleverd" in c.params["text"],
    )
    assert "/route did set NUMBER TYPE DESTINATION" in told.params["text"]
    final = bot.slack.calls_to("chat.update")[-1]
    assert "completed" in shown(final.params) and buttons(final.params) == []


async def test_port_letter_puts_the_pdf_in_the_dm_and_list_answers(
    bot: SlackDriver, world: World, clock: Clock
) -> None:
    port = await request_made(bot)
    answer = await bot.answer_to(f"letter {port.id}", "UCUST", command="/port")
    assert "is in your DM" in shown(answer)
    await bot.door.drain()
    upload = await bot.slack.wait_for("files.completeUploadExternal")
    assert upload.params
    letter = next(u for u in bot.slack.uploads.values() if u.channel_id == "DUCUST")
    assert letter.filename == f"letter-of-authorisation-port-{port.id}.pdf"
    listed = await bot.answer_to("list", "UCUST", command="/port")
    assert f"#{port.id}" in shown(listed) and "draft" in shown(listed)
    other = await bot.answer_to(f"show {port.id}", "UOTHER", command="/port")
    assert f"There is no port request #{port.id} you may see." in shown(other)


async def test_a_kept_submission_replayed_makes_one_request(
    bot: SlackDriver, world: World, clock: Clock
) -> None:
    payload = {"view_id": "V77", "values": new_values()}
    await bot.door.kit.inbox.keep("port_form", "UCUST", payload)
    await bot.door.kit.inbox.keep("port_form", "UCUST", payload)
    assert await bot.door.replay_inbox(older_than=timedelta(0)) == 2
    await bot.door.drain()
    async with bot.services.sessions() as session:
        refs = list(await session.scalars(select(PortRequest.source_ref)))
    assert refs == ["slack:view:V77"]


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (60, 80), "white").save(out, "JPEG")
    return out.getvalue()


async def test_housekeeping_reminds_staff_in_the_thread_and_the_customer_in_the_dm(
    bot: SlackDriver, world: World, clock: Clock, notices: PortNotices
) -> None:
    """An unsigned letter a day on: the customer's DM gets a reminder with the letter again.
    A signed request two working days before its date, not scheduled: staff are called in
    the support thread."""
    port = await request_made(bot)
    system = bot.services.context(world.admin, Channel.SYSTEM)
    uploads_before = len(bot.slack.uploads)
    clock.advance(days=1, hours=1)
    await notices.housekeeping(system)
    await bot.door.drain()
    async with bot.services.sessions() as session:
        fresh = await session.get(PortRequest, port.id)
    assert fresh is not None
    reminded = await bot.slack.wait_for(
        "chat.postMessage",
        lambda c: (
            c.params.get("thread_ts") == fresh.dm_ts and "Reminder 1 of 5" in c.params["text"]
        ),
    )
    assert reminded.params["channel"] == "DUCUST"
    assert len(bot.slack.uploads) == uploads_before + 1  # the letter, once more

    # The customer asks for the upload form from the card in the DM.
    dm_press = block_actions_payload(
        "UCUST", "port_upload", str(port.id), "DUCUST", str(fresh.dm_ts), trigger_id="T-up"
    )
    await bot.interact(dm_press)
    await bot.door.drain()
    form = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-up")
    assert form.params["view"]["private_metadata"] == str(port.id)

    hosted = bot.slack.host_file("signed.pdf", signed_pdf(), "application/pdf")
    files = {"file": {"value": {"type": "file_input", "files": [hosted]}}}
    await submit(bot, "UCUST", "port_sign", files, "V50", str(port.id))
    await bot.door.drain()
    clock.advance(days=1)  # Wednesday 2 December; the date is Monday 7: three working days
    await notices.housekeeping(system)
    assert not [c for c in bot.slack.calls_to("chat.postMessage") if "<!here>" in c.params["text"]]
    clock.advance(days=1)  # Thursday: two working days to go
    await notices.housekeeping(system)
    await bot.door.drain()
    call = await bot.slack.wait_for("chat.postMessage", lambda c: "<!here>" in c.params["text"])
    assert call.params["channel"] == SUPPORT and call.params["thread_ts"] == fresh.slack_ts
    assert (
        "is in 2 working days and the request is still submitted, not scheduled"
        in (call.params["text"])
    )
    assert not [
        c
        for c in bot.slack.calls_to("chat.postMessage")
        if c.params["channel"] == "DUCUST" and "working days" in c.params["text"]
    ]


async def test_port_sign_without_words_offers_the_requests_waiting_for_a_letter(
    bot: SlackDriver, world: World, clock: Clock
) -> None:
    port = await request_made(bot)
    await bot.command("sign", "UCUST", command="/port", trigger_id="T-pick")
    form = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-pick")
    picker = form.params["view"]["blocks"][0]
    assert picker["block_id"] == "request"
    assert [o["value"] for o in picker["element"]["options"]] == [str(port.id)]
    answer = await bot.answer_to("sign", "UOTHER", command="/port")
    assert "You have no port request waiting for a signed letter." in shown(answer)
