"""`c2 device|did|ringgroup|queue` and `route did` through the shared grammar, as customer,
reseller and staff: help, forms, who may do what, loops, undo, and what email confirms."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from c2bot.bot.commands import ROUTING_CONFIRM, changes_something, confirm_within, run_line
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound, Refusal
from c2bot.handlers.replies import OpenForm
from c2bot.storage.crypto import unseal
from c2bot.storage.models import Channel, Did, RingGroup, SipDevice
from tests.conftest import World

NUMBER = "+31201234500"


def ctx(services: Services, actor: Actor, channel: Channel = Channel.SHELL) -> Context:
    return services.context(actor, channel)


async def say(services: Services, actor: Actor, line: str, channel: Channel = Channel.SHELL) -> str:
    """The text answer to one command line, as the shell and email show it."""
    return reply_text((await run_line(ctx(services, actor, channel), line)).reply)


async def refusal(services: Services, actor: Actor, line: str) -> Refusal:
    with pytest.raises(Refusal) as refused:
        await run_line(ctx(services, actor), line)
    return refused.value


def flat(text: str) -> str:
    return " ".join(text.split())


async def test_help_names_every_verb(services: Services, world: World) -> None:
    for line, usages in (
        (
            "c2 device help",
            (
                "c2 device add NAME [account:",
                "[caller-name:",
                "[voicemail:on|off]",
                "c2 device password NAME [reset]",
                "c2 device show NAME",
                "c2 device remove NAME",
            ),
        ),
        ("c2 did help", ("c2 did add NUMBER account:", "c2 did edit NUMBER", "c2 did remove")),
        (
            "c2 ringgroup help",
            (
                "c2 ringgroup member NAME ACTION TARGET [delay:N] [timeout:N]",
                "[strategy:simultaneous|sequence]",
                "c2 ringgroup member sales add 1001-102 delay:5 timeout:20",
            ),
        ),
        ("c2 queue help", ("c2 queue agent NAME ACTION TARGET", "ring-all|longest-idle-agent")),
        ("route did help", ("route did set NUMBER TYPE DESTINATION", "route did list")),
    ):
        text = await say(services, world.customer, line)
        for usage in usages:
            assert usage in text, (line, usage)
    overview = await say(services, world.customer, "help")
    for name in ("c2 device:", "c2 did:", "c2 ringgroup:", "c2 queue:", "route did:"):
        assert name in overview


async def test_a_customer_sets_up_a_phone_by_message(services: Services, world: World) -> None:
    """Add shows the password once (not by email), show gives the phone's settings, the
    password again on request; a word-less add and a name-only edit ask for the details."""
    answer = await say(services, world.customer, 'c2 device add 100 caller-name:"Jan Desk"')
    async with services.sessions() as session:
        device = await session.scalar(select(SipDevice))
    assert device is not None and device.username == "1001-100"
    password = unseal(services.settings, device.password_sealed)
    assert "SIP device 1001-100 added to account 1001." in answer and password in answer
    shown = flat(await say(services, world.customer, "c2 device show 1001-100"))
    assert "Display name Jan Desk" in shown and "Server host 1001.sip.localhost" in shown
    assert "Registered unknown: switch not reachable" in shown and password not in shown
    again = await say(services, world.customer, "c2 device password 1001-100")
    assert password in again
    mailed = await say(services, world.customer, "c2 device add 101", Channel.EMAIL)
    assert "SIP device 1001-101 added" in mailed and "/c2 device password 1001-101" in mailed
    form = await say(services, world.customer, "c2 device add")
    assert form.startswith("Give the details in one line:\nc2 device add EXTENSION")
    edit = await run_line(ctx(services, world.customer), "c2 device edit 1001-100")
    assert isinstance(edit.result, OpenForm) and edit.result.form == "device_edit"
    assert edit.result.initial == {"name": "1001-100", "account": "1001"}
    changed = await say(services, world.customer, "c2 device edit 1001-100 voicemail:on pin:4821")
    assert "SIP device 1001-100: voicemail, voicemail PIN changed." in changed
    listed = await say(services, world.customer, "c2 device list")
    assert "1001-100" in listed and "1001-101" in listed


async def test_who_may_do_what(services: Services, world: World) -> None:
    """Another account's objects are not found (or not allowed when its account is named);
    numbers come from support; `other` forwarding is staff's."""
    await say(services, world.other, "c2 device add 100")
    await say(services, world.other, "c2 ringgroup add sales")
    hidden = await refusal(services, world.customer, "c2 device show 2001-100")
    assert isinstance(hidden, NotFound)
    assert isinstance(
        await refusal(services, world.reseller, "c2 device remove 2001-100"), NotFound
    )
    named = await refusal(services, world.reseller, "c2 ringgroup show sales account:2001")
    assert isinstance(named, NotAllowed)
    assert isinstance(await refusal(services, world.customer, "c2 ringgroup show sales"), NotFound)
    did = await refusal(services, world.customer, f"c2 did add {NUMBER} account:1001")
    assert isinstance(did, NotAllowed)
    assert did.message == "Only support staff can add numbers: they come from the carrier."
    await say(services, world.staff, f"c2 did add {NUMBER} account:1001")
    other = await refusal(services, world.reseller, f'route did set {NUMBER} other "bridge(x)"')
    assert isinstance(other, NotAllowed) and "staff" in other.message
    done = await say(services, world.staff, f'route did set {NUMBER} other "bridge(user/x)"')
    assert "runs the dial string bridge(user/x)" in done
    foreign = await refusal(services, world.other, f"route did set {NUMBER} pstn +31612345678")
    assert isinstance(foreign, NotAllowed)
    unknown = await refusal(services, world.customer, f"route did set {NUMBER} local 1001-999")
    assert isinstance(unknown, Invalid)
    assert unknown.message.startswith("Account 1001 has no SIP device '1001-999'")


async def test_ring_groups_and_queues_by_message(services: Services, world: World) -> None:
    """Members and agents by message; a loop is refused with its path; `route undo` reverts
    the asker's last change."""
    for ext in ("100", "101", "102"):
        await say(services, world.customer, f"c2 device add {ext}")
    await say(services, world.reseller, "c2 ringgroup add sales account:1001 members:100,101")
    member = await say(services, world.customer, "c2 ringgroup member sales add 102 delay:5")
    assert "Ring group sales (1001): member 1001-102 added." in member
    await say(services, world.customer, "c2 ringgroup member sales remove 1001-101")
    await say(
        services, world.customer, 'c2 queue add support agents:100 failover:"ringgroup sales"'
    )
    agent = await say(services, world.customer, "c2 queue agent support add 1001-102")
    assert "Queue support (1001): agent 1001-102 added." in agent
    loop = await refusal(
        services, world.customer, 'c2 ringgroup edit sales noanswer:"queue support"'
    )
    assert isinstance(loop, Invalid)
    assert "ring group sales -> queue support -> ring group sales" in loop.message
    shown = flat(await say(services, world.customer, "c2 ringgroup show sales"))
    assert "1 1001-100 0 s 30 s 2 1001-102 5 s 30 s" in shown
    assert "Used by queue support (failover)" in shown
    undone = await say(services, world.customer, "route undo")
    assert undone.startswith("Undone: Queue support (1001): agent 1001-102 added")
    assert "1001-102" not in await say(services, world.customer, "c2 queue show support")
    await say(services, world.customer, "route undo")  # the queue itself
    await say(services, world.customer, "route undo")  # member 1001-101 removed: back again
    async with services.sessions() as session:
        group = await session.scalar(select(RingGroup))
    assert group is not None
    assert [m.target for m in group.members] == ["1001-100", "1001-101", "1001-102"]


async def test_route_did_every_type_by_message_and_undo(services: Services, world: World) -> None:
    await say(services, world.customer, "c2 device add 100")
    await say(services, world.staff, "c2 did add 020-1234500 account:1001")
    for line, words in (
        (f"route did set {NUMBER} local 100", "rings SIP device 1001-100"),
        (f'route did set {NUMBER} local "100|100"', "rings SIP devices 1001-100, then 1001-100"),
        (f"route did set {NUMBER} pstn 0612345678", "forwards the call to +31612345678"),
        (f"route did set {NUMBER} ip sip.acme.nl", f"as sip:{NUMBER}@sip.acme.nl"),
    ):
        assert words in await say(services, world.customer, line), line
    shown = flat(await say(services, world.customer, f"route did show {NUMBER}"))
    assert f"Calls {NUMBER} sends the call to SIP server sip.acme.nl" in shown
    await say(services, world.customer, "route undo")
    async with services.sessions() as session:
        did = await session.scalar(select(Did))
    assert did is not None and (did.forward_type, did.destination) == ("pstn", "+31612345678")


async def test_what_email_must_confirm(services: Services) -> None:
    """Changes wait for a confirming reply (15 minutes for routing); reading, help and the
    word-less forms run at once. `password` may reset, so it is confirmed too."""
    for line in (
        "c2 device add 100",
        "c2 device edit 1001-100 record:on",
        "c2 device password 1001-100 reset",
        "c2 device password 1001-100",
        "c2 did add +31201234500 account:1001",
        "c2 ringgroup member sales add 100",
        "c2 queue agent support remove 100",
        "route did set +31201234500 pstn +31612345678",
    ):
        assert changes_something(line), line
        assert confirm_within(line) == ROUTING_CONFIRM, line
    for line in (
        "c2 device show 1001-100",
        "c2 device list",
        "c2 did list",
        "route did show +31201234500",
        "c2 ringgroup show sales",
        "c2 queue list",
        "c2 device add",
        "c2 device help",
    ):
        assert not changes_something(line), line
