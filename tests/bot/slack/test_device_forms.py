"""Slack modals for devices, ring groups and queues: opened by a word-less slash command (filled
in for an edit), refused in place field by field, kept before the ack, applied once."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from c2bot.handlers import devices
from c2bot.handlers.devices import NewDevice
from c2bot.storage.crypto import unseal
from c2bot.storage.models import CallQueue, Channel, RingGroup, SipDevice, SlackInbox
from tests.bot.slack.conftest import Json, SlackDriver, shown
from tests.conftest import World
from tests.support.slack import view_submission_payload


def typed(value: str | None) -> Json:
    return {"value": {"type": "plain_text_input", "value": value}}


def chosen(value: str) -> Json:
    option = {"text": {"type": "plain_text", "text": value}, "value": value}
    return {"value": {"type": "static_select", "selected_option": option}}


def many(*values: str) -> Json:
    options = [{"text": {"type": "plain_text", "text": v}, "value": v} for v in values]
    return {"value": {"type": "multi_static_select", "selected_options": options}}


def device_values(name: str = "100", **typed_values: str) -> Json:
    """view.state.values of the new-device modal, as a customer (no account box) sends them."""
    values: Json = {
        "name": typed(name),
        "caller": typed(typed_values.get("caller")),
        "callername": typed(typed_values.get("callername")),
        "voicemail": chosen(typed_values.get("voicemail", "off")),
        "pin": typed(typed_values.get("pin")),
        "vmemail": typed(None),
        "codecs": many("PCMA", "G722"),
        "record": chosen("off"),
    }
    return values


def ringgroup_values(name: str = "sales", **rows: str) -> Json:
    values: Json = {"name": typed(name), "strategy": chosen(rows.pop("strategy", "sequence"))}
    values |= {f"member_{n}": typed(rows.pop(f"member_{n}", None)) for n in range(1, 11)}
    values |= {
        "noanswer": typed(rows.pop("noanswer", None)),
        "announcement": typed(None),
        "ringback": typed(None),
        "cidname": typed(None),
        "cidnumber": typed(None),
        "record": chosen("device"),
        "skipbusy": chosen("no"),
    }
    return values


def meta(form: str, name: str = "", account: str = "") -> str:
    return json.dumps({"form": form, "name": name, "account": account})


def block(view: Json, block_id: str) -> Json:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


async def submit(bot: SlackDriver, user: str, callback: str, values: Json, metadata: str) -> Json:
    reply = await bot.submit(user, callback, values, metadata)
    assert reply.status_code == 200
    return reply.json() if reply.content else {}


async def kept(bot: SlackDriver) -> list[SlackInbox]:
    async with bot.services.sessions() as session:
        return list(await session.scalars(select(SlackInbox).order_by(SlackInbox.id)))


async def test_device_add_opens_the_modal(bot: SlackDriver, world: World) -> None:
    """`/c2 device add` opens the device modal; a customer is not asked for the account."""
    reply = await bot.command("device add", "UCUST", command="/c2", trigger_id="T-dev")
    call = await bot.slack.wait_for("views.open")
    view = call.params["view"]
    assert reply.status_code == 200 and call.params["trigger_id"] == "T-dev"
    assert view["callback_id"] == "routing_device"
    assert json.loads(view["private_metadata"])["form"] == "device_add"
    ids = [b.get("block_id") for b in view["blocks"]]
    assert ids == [
        "name",
        "caller",
        "callername",
        "voicemail",
        "pin",
        "vmemail",
        "codecs",
        "record",
    ]
    codecs = block(view, "codecs")["element"]
    assert codecs["type"] == "multi_static_select"
    assert [o["value"] for o in codecs["initial_options"]] == ["PCMA", "PCMU", "G722", "OPUS"]
    await bot.command("device add", "URES", command="/c2", trigger_id="T-res")
    res = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-res")
    accounts = block(res.params["view"], "account")["element"]["options"]
    assert [o["value"] for o in accounts] == ["1001", "1002", "R100"]


async def test_device_errors_are_shown_next_to_their_fields(bot: SlackDriver, world: World) -> None:
    """Each refusal is answered in the modal at its field; nothing is kept or made."""
    cases = [
        (device_values("1800"), "name", "dialled to record a greeting"),
        (device_values(caller="+31301234500"), "caller", "is not a number of account 1001"),
        (device_values(voicemail="on"), "pin", "Voicemail needs a PIN"),
        (device_values(voicemail="on", pin="12"), "pin", "A voicemail PIN is 4 to 10 digits."),
    ]
    for values, field, words in cases:
        answer = await submit(bot, "UCUST", "routing_device", values, meta("device_add"))
        assert answer["response_action"] == "errors", field
        assert list(answer["errors"]) == [field], answer
        assert words in answer["errors"][field], answer
    other = device_values() | {"account": typed("2001")}
    answer = await submit(bot, "URES", "routing_device", other, meta("device_add"))
    assert "may not act on that account" in answer["errors"]["account"]
    await bot.door.drain()
    assert await kept(bot) == []
    async with bot.services.sessions() as session:
        assert await session.scalar(select(SipDevice.id)) is None


async def test_a_good_device_submission_adds_it_once(bot: SlackDriver, world: World) -> None:
    """The modal closes; the kept submission makes the device and a DM says so, without the
    password; replayed, it makes nothing more."""
    values = device_values(callername="Jan Desk")
    reply = await bot.submit("UCUST", "routing_device", values, meta("device_add"))
    assert (reply.status_code, reply.content) == (200, b"")
    assert [row.kind for row in await kept(bot)] == ["routing_form"]
    dm = await bot.slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == "UCUST")
    await bot.door.drain()
    text = shown(dm.params)
    assert "SIP device 1001-100 added to account 1001." in text
    assert "/c2 device password 1001-100" in text
    async with bot.services.sessions() as session:
        device = await session.scalar(select(SipDevice))
    assert device is not None
    assert (device.caller_name, device.codecs) == ("Jan Desk", "PCMA,G722")
    assert unseal(bot.services.settings, device.password_sealed) not in text
    row = (await kept(bot))[0]
    assert row.done_at is not None
    await bot.door.kit.inbox.keep("routing_form", "UCUST", row.payload)
    assert await bot.door.replay_inbox(older_than=timedelta(0)) == 1
    await bot.door.drain()
    async with bot.services.sessions() as session:
        devices_now = list(await session.scalars(select(SipDevice.username)))
        again = await session.scalar(select(SipDevice))
    assert devices_now == ["1001-100"]
    assert again is not None and again.password_sealed == device.password_sealed
    said = [shown(c.params) for c in bot.slack.calls_to("chat.postMessage")]
    assert sum("SIP device 1001-100 added" in text for text in said) == 2


async def test_device_edit_opens_filled_in_and_saves(bot: SlackDriver, world: World) -> None:
    """`edit NAME` opens the modal as the device is; `edit` alone asks which device first and
    then shows the same modal in its place."""
    ctx = bot.services.context(world.customer, Channel.SHELL)
    fields = devices.DeviceFields(caller_name="Jan", voicemail=True, voicemail_pin="4821")
    await devices.add_device(ctx, NewDevice("100", fields=fields))
    await bot.command("device edit 1001-100", "UCUST", command="/c2", trigger_id="T-edit")
    call = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-edit")
    view = call.params["view"]
    assert "SIP device 1001-100" in view["blocks"][0]["text"]["text"]
    assert block(view, "callername")["element"]["initial_value"] == "Jan"
    assert block(view, "voicemail")["element"]["initial_option"]["value"] == "on"
    assert block(view, "pin")["element"]["initial_value"] == "4821"
    assert block(view, "status")["element"]["initial_option"]["value"] == "on"
    await bot.command("device edit", "UCUST", command="/c2", trigger_id="T-pick")
    pick = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-pick")
    assert pick.params["view"]["callback_id"] == "routing_pick"
    options = block(pick.params["view"], "object")["element"]["options"]
    assert [o["value"] for o in options] == ["1001-100"]
    picked = await submit(
        bot, "UCUST", "routing_pick", {"object": chosen("1001-100")}, meta("device_edit")
    )
    assert picked["response_action"] == "update"
    assert picked["view"]["callback_id"] == "routing_device"
    values = device_values() | {"callername": typed("Jan Jansen"), "status": chosen("off")}
    values |= {"voicemail": chosen("on"), "pin": typed("4821")}
    del values["name"]
    saved = await bot.submit(
        "UCUST", "routing_device", values, meta("device_edit", "1001-100", "1001")
    )
    assert saved.content == b""
    dm = await bot.slack.wait_for("chat.postMessage", lambda c: "changed" in shown(c.params))
    await bot.door.drain()
    assert "SIP device 1001-100: caller name, codecs, status changed." in shown(dm.params)
    async with bot.services.sessions() as session:
        device = await session.scalar(select(SipDevice))
    assert device is not None and (device.caller_name, device.enabled) == ("Jan Jansen", False)


async def test_ring_group_modal_rows_and_errors(bot: SlackDriver, world: World) -> None:
    """Member rows map errors back to the row typed in (empty rows skipped); a loop is shown at
    the no-answer box; a good form makes the group with its members in order."""
    ctx = bot.services.context(world.customer, Channel.SHELL)
    for ext in ("100", "101"):
        await devices.add_device(ctx, NewDevice(ext))
    await bot.command("ringgroup add", "UCUST", command="/c2", trigger_id="T-rg")
    opened = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-rg")
    ids = [b.get("block_id") for b in opened.params["view"]["blocks"]]
    assert ids[:3] == ["name", "strategy", "member_1"] and "member_10" in ids
    bad_row = ringgroup_values(member_1="100", member_3="1001-999")
    answer = await submit(bot, "UCUST", "routing_ringgroup", bad_row, meta("ringgroup_add"))
    assert list(answer["errors"]) == ["member_3"]
    assert "no SIP device '1001-999'" in answer["errors"]["member_3"]
    odd = ringgroup_values(member_2="100 soon")
    answer = await submit(bot, "UCUST", "routing_ringgroup", odd, meta("ringgroup_add"))
    assert list(answer["errors"]) == ["member_2"]
    itself = ringgroup_values(member_1="100", noanswer="ringgroup sales")
    answer = await submit(bot, "UCUST", "routing_ringgroup", itself, meta("ringgroup_add"))
    assert list(answer["errors"]) == ["noanswer"]
    good = ringgroup_values(member_1="101 delay:5 timeout:20", member_4="100 0 25")
    assert await submit(bot, "UCUST", "routing_ringgroup", good, meta("ringgroup_add")) == {}
    await bot.slack.wait_for("chat.postMessage", lambda c: "Ring group sales" in shown(c.params))
    await bot.door.drain()
    async with bot.services.sessions() as session:
        group = await session.scalar(select(RingGroup))
    assert group is not None and group.strategy == "sequence"
    assert [(m.target, m.delay, m.timeout) for m in group.members] == [
        ("1001-101", 5, 20),
        ("1001-100", 0, 25),
    ]
    await bot.command("ringgroup edit sales", "UCUST", command="/c2", trigger_id="T-rge")
    edit = await bot.slack.wait_for("views.open", lambda c: c.params["trigger_id"] == "T-rge")
    row = block(edit.params["view"], "member_1")["element"]["initial_value"]
    assert row == "1001-101 delay:5 timeout:20"


async def test_queue_modal_adds_the_queue(bot: SlackDriver, world: World) -> None:
    ctx = bot.services.context(world.customer, Channel.SHELL)
    await devices.add_device(ctx, NewDevice("100"))
    values: Json = {
        "name": typed("support"),
        "strategy": chosen("round-robin"),
        "agents": typed("100\n+31612345678"),
        "timeout": typed("soon"),
        "failover": typed(None),
        "moh": typed(None),
        "agenttone": typed(None),
        "customertone": typed(None),
    }
    answer = await submit(bot, "UCUST", "routing_queue", values, meta("queue_add"))
    assert answer["errors"] == {"timeout": "The longest wait is a number of seconds."}
    answer = await submit(
        bot, "UCUST", "routing_queue", values | {"timeout": typed("5")}, meta("queue_add")
    )
    assert list(answer["errors"]) == ["timeout"]
    bad_agent = values | {"timeout": typed("120"), "agents": typed("100, 105")}
    answer = await submit(bot, "UCUST", "routing_queue", bad_agent, meta("queue_add"))
    assert list(answer["errors"]) == ["agents"] and "105" in answer["errors"]["agents"]
    good = values | {"timeout": typed("120")}
    payload = view_submission_payload("UCUST", "routing_queue", good, meta("queue_add"), "V9")
    assert (await bot.interact(payload)).content == b""
    await bot.slack.wait_for("chat.postMessage", lambda c: "Queue support" in shown(c.params))
    await bot.door.drain()
    async with bot.services.sessions() as session:
        queue = await session.scalar(select(CallQueue))
    assert queue is not None and (queue.strategy, queue.timeout) == ("round-robin", 120)
    assert [a.target for a in queue.agents] == ["1001-100", "+31612345678"]


async def test_password_is_told_to_the_asker_alone(bot: SlackDriver, world: World) -> None:
    """`/c2 device password NAME` answers ephemerally, never in the channel."""
    ctx = bot.services.context(world.customer, Channel.SHELL)
    made = await devices.add_device(ctx, NewDevice("100"))
    answer = await bot.answer_to("device password 1001-100", "UCUST", command="/c2")
    assert answer["response_type"] == "ephemeral"
    assert made.password in shown(answer)
    assert bot.slack.calls_to("chat.postMessage") == []
