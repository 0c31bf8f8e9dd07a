"""SIP devices: user names and extensions, passwords shown once and on request, caller numbers
of the account, voicemail, codecs, removal while in use, undo, and the live registration."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.handlers import devices, dids, ringgroups, routing_changes
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.devices import DeviceFields, NewDevice
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound, Refusal
from c2bot.storage.crypto import unseal
from c2bot.storage.models import AuditEntry, Channel, RoutingChange, SipDevice
from tests.conftest import World
from tests.support.eslpeer import connected_pool, running_peer


def ctx(services: Services, actor: Actor, channel: Channel = Channel.SHELL) -> Context:
    return services.context(actor, channel)


async def stored(services: Services, username: str) -> SipDevice:
    async with services.sessions() as session:
        device = await session.scalar(select(SipDevice).where(SipDevice.username == username))
        assert device is not None
        return device


async def invalid(work: object) -> Invalid:
    with pytest.raises(Invalid) as refused:
        await work  # type: ignore[misc]
    return refused.value


async def test_add_makes_the_username_and_a_password_shown_once(
    services: Services, world: World
) -> None:
    """`100` on the customer's own account is 1001-100 with a strong password, sealed; the reply
    shows it only where the door allows, and the change is logged for undo and audit."""
    made = await devices.add_device(ctx(services, world.customer), NewDevice("100"))
    device = await stored(services, "1001-100")
    assert (made.username, made.account, device.extension) == ("1001-100", "1001", "100")
    assert len(made.password) == 20 and made.password.isalnum()
    assert device.password_sealed != made.password
    assert unseal(services.settings, device.password_sealed) == made.password
    shown = reply_text(made.reply(show_password=True))
    assert made.password in shown and "1001.sip.localhost" in shown
    hidden = reply_text(made.reply(show_password=False))
    assert made.password not in hidden and "/c2 device password 1001-100" in hidden
    view = await devices.show_device(ctx(services, world.customer), "1001-100")
    assert made.password not in reply_text(view)
    async with services.sessions() as session:
        change = await session.scalar(select(RoutingChange))
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "device.created")
        )
    assert change is not None and change.summary == "SIP device 1001-100 added"
    assert audit is not None and audit.object_id == "1001-100"
    second = await devices.add_device(ctx(services, world.customer), NewDevice("101"))
    assert second.password != made.password


async def test_names_and_extensions_that_are_refused(services: Services, world: World) -> None:
    """Extensions are 2-6 digits, not 0..., not 1800 or emergency numbers, once per account;
    a username names its account; another account's name is not the customer's to take."""
    customer = ctx(services, world.customer)
    await devices.add_device(customer, NewDevice("100"))
    cases = [
        ("1", "must be 2 to 6 digits"),
        ("1234567", "must be 2 to 6 digits"),
        ("0100", "starts with 0"),
        ("1800", "dialled to record a greeting"),
        ("112", "the emergency number"),
        ("1001-100", "There is already a SIP device 1001-100"),
    ]
    for name, words in cases:
        refused = await invalid(devices.add_device(customer, NewDevice(name)))
        assert words in refused.message, (name, refused.message)
        assert list(refused.fields) == ["name"], name
    taken = await invalid(devices.add_device(customer, NewDevice("105", username="1001-100")))
    assert taken.message == "There is already a SIP device 1001-100."
    same_ext = await invalid(devices.add_device(customer, NewDevice("100", username="jan-desk")))
    assert same_ext.message == "Extension 100 of account 1001 is already device 1001-100."
    mismatch = await invalid(devices.add_device(customer, NewDevice("1001-102", account="1002")))
    assert "belongs to account 1001, not 1002" in mismatch.message
    with pytest.raises(NotAllowed):
        await devices.add_device(customer, NewDevice("1002-100"))
    with pytest.raises(NotAllowed):
        await devices.add_device(customer, NewDevice("100", account="2001"))
    reseller = await devices.add_device(ctx(services, world.reseller), NewDevice("1002-100"))
    assert reseller.account == "1002"
    own = await devices.add_device(customer, NewDevice("102", username="jan.desk"))
    assert own.username == "jan.desk"
    squat = await invalid(devices.add_device(customer, NewDevice("103", username="2001-100")))
    assert squat.fields == {"username": "another account's pattern"}


async def test_caller_number_is_one_of_the_accounts_numbers(
    services: Services, world: World
) -> None:
    """A customer's device calls out with a DID of its account; staff may set any valid number."""
    await dids.add_did(ctx(services, world.staff), "020 123 4500", "1001")
    await dids.add_did(ctx(services, world.staff), "030 123 4500", "2001")
    customer = ctx(services, world.customer)
    refused = await invalid(
        devices.add_device(
            customer, NewDevice("100", fields=DeviceFields(caller_number="0301234500"))
        )
    )
    assert refused.fields == {"caller": "not the account's number"}
    assert "+31301234500 is not a number of account 1001" in refused.message
    bad = await invalid(
        devices.add_device(customer, NewDevice("100", fields=DeviceFields(caller_number="12")))
    )
    assert bad.fields == {"caller": "not a valid number"}
    fields = DeviceFields(caller_number="020 123 4500", caller_name="  Acme   Sales ")
    await devices.add_device(customer, NewDevice("100", fields=fields))
    device = await stored(services, "1001-100")
    assert (device.caller_number, device.caller_name) == ("+31201234500", "Acme Sales")
    staff = ctx(services, world.staff)
    await devices.edit_device(staff, "1001-100", DeviceFields(caller_number="+31612345678"))
    assert (await stored(services, "1001-100")).caller_number == "+31612345678"
    odd = await invalid(devices.edit_device(customer, "1001-100", DeviceFields(caller_name='"x"')))
    assert odd.fields == {"callername": "too long or odd characters"}


async def test_voicemail_needs_a_pin_and_stays_on_while_calls_go_there(
    services: Services, world: World
) -> None:
    """voicemail:on needs a 4-10 digit PIN; turning it off is refused while a ring group's
    no-answer leads there; the email is normalised."""
    customer = ctx(services, world.customer)
    await devices.add_device(customer, NewDevice("100"))
    no_pin = await invalid(devices.edit_device(customer, "1001-100", DeviceFields(voicemail=True)))
    assert no_pin.fields == {"pin": "needed for voicemail"}
    short = DeviceFields(voicemail=True, voicemail_pin="12")
    assert (await invalid(devices.edit_device(customer, "1001-100", short))).fields == {
        "pin": "4 to 10 digits"
    }
    good = DeviceFields(voicemail=True, voicemail_pin="4821", voicemail_email=" Jan@Acme.NL ")
    reply = await devices.edit_device(customer, "1001-100", good)
    assert "voicemail" in reply.title and "changed" in reply.title
    device = await stored(services, "1001-100")
    assert (device.voicemail, device.voicemail_pin, device.voicemail_email) == (
        True,
        "4821",
        "jan@acme.nl",
    )
    fields = ringgroups.RingGroupFields(noanswer="voicemail 1001-100")
    await ringgroups.add_ring_group(customer, "sales", None, fields)
    off = await invalid(devices.edit_device(customer, "1001-100", DeviceFields(voicemail=False)))
    assert off.message.startswith("Voicemail of 1001-100 still gets calls from ring group sales")
    await ringgroups.edit_ring_group(customer, "sales", None, replace(fields, noanswer="none"))
    await devices.edit_device(customer, "1001-100", DeviceFields(voicemail=False))
    assert (await stored(services, "1001-100")).voicemail is False


async def test_codecs_are_known_names_in_order(services: Services, world: World) -> None:
    customer = ctx(services, world.customer)
    await devices.add_device(
        customer, NewDevice("100", fields=DeviceFields(codecs="g722, pcma opus"))
    )
    assert (await stored(services, "1001-100")).codecs == "G722,PCMA,OPUS"
    refused = await invalid(
        devices.edit_device(customer, "1001-100", DeviceFields(codecs="mp3,PCMA"))
    )
    assert refused.fields == {"codecs": "unknown codec"}
    assert "Unknown codec(s) mp3" in refused.message


async def test_nothing_changed_is_not_a_change(services: Services, world: World) -> None:
    """An edit that sets what is there already records nothing (a replayed edit is harmless)."""
    customer = ctx(services, world.customer)
    await devices.add_device(customer, NewDevice("100", fields=DeviceFields(record_calls=True)))
    reply = await devices.edit_device(customer, "1001-100", DeviceFields(record_calls=True))
    assert reply.title == "Nothing to change: SIP device 1001-100."
    async with services.sessions() as session:
        changes = list(await session.scalars(select(RoutingChange)))
    assert len(changes) == 1


async def test_password_on_request_and_reset(services: Services, world: World) -> None:
    """The password again to the asker; reset makes a new one; never by email; never for
    somebody else's device. A replayed reset (same request) does not reset twice."""
    customer = ctx(services, world.customer)
    made = await devices.add_device(customer, NewDevice("100"))
    again = await devices.device_password(customer, "1001-100")
    assert ("Password", made.password) in again.fields and not again.public
    with pytest.raises(Refusal) as by_mail:
        await devices.device_password(ctx(services, world.customer, Channel.EMAIL), "1001-100")
    assert "Passwords are not sent by email" in by_mail.value.message
    with pytest.raises(NotFound):
        await devices.device_password(ctx(services, world.other), "1001-100")
    kept = replace(customer, request_ref="slack:inbox:7")
    reset = await devices.device_password(kept, "1001-100", reset=True)
    new = dict(reset.fields)["Password"]
    assert new != made.password and len(new) == 20
    replayed = await devices.device_password(kept, "1001-100", reset=True)
    assert dict(replayed.fields)["Password"] == new
    assert unseal(services.settings, (await stored(services, "1001-100")).password_sealed) == new
    async with services.sessions() as session:
        summaries = list(await session.scalars(select(RoutingChange.summary)))
    assert summaries.count("SIP device 1001-100: password reset") == 1


async def test_a_replayed_add_finds_the_device_it_made(services: Services, world: World) -> None:
    """The same kept request adds once and answers the same; another request is refused."""
    kept = replace(ctx(services, world.customer), request_ref="slack:view:V9")
    first = await devices.add_device(kept, NewDevice("100"))
    second = await devices.add_device(kept, NewDevice("100"))
    assert second.password == first.password
    other = replace(kept, request_ref="slack:view:V10")
    assert "already" in (await invalid(devices.add_device(other, NewDevice("100")))).message


async def test_given_password_is_checked(services: Services, world: World) -> None:
    customer = ctx(services, world.customer)
    weak = NewDevice("100", fields=DeviceFields(password="short"))
    assert (await invalid(devices.add_device(customer, weak))).fields == {"password": "too weak"}
    named = NewDevice("100", fields=DeviceFields(password="x1001-100-secret"))
    assert "user name" in (await invalid(devices.add_device(customer, named))).message
    mine = NewDevice("100", fields=DeviceFields(password="correct-horse-42"))
    made = await devices.add_device(customer, mine)
    assert "as you gave it" in reply_text(made.reply(show_password=True))
    assert unseal(services.settings, (await stored(services, "1001-100")).password_sealed) == (
        "correct-horse-42"
    )


async def test_removal_waits_until_nothing_sends_calls_there(
    services: Services, world: World
) -> None:
    """A device a DID rings is not removed; once re-pointed it is, and undo brings it back."""
    customer = ctx(services, world.customer)
    await devices.add_device(customer, NewDevice("100"))
    await dids.add_did(ctx(services, world.staff), "+31201234500", "1001")
    await dids.set_forwarding(customer, "+31201234500", dids.Forwarding("local", "100"))
    refused = await invalid(devices.remove_device(customer, "1001-100"))
    assert refused.message.startswith("SIP device 1001-100 still gets calls from: DID +31201234500")
    await dids.set_forwarding(customer, "+31201234500", dids.Forwarding("pstn", "0612345678"))
    with pytest.raises(NotFound):
        await devices.remove_device(ctx(services, world.other), "1001-100")
    await devices.remove_device(customer, "1001-100")
    async with services.sessions() as session:
        assert await session.scalar(select(SipDevice.id)) is None
    await routing_changes.undo_last(customer)
    assert (await stored(services, "1001-100")).extension == "100"


async def test_list_shows_what_the_asker_may_see(services: Services, world: World) -> None:
    await devices.add_device(ctx(services, world.customer), NewDevice("100"))
    await devices.add_device(ctx(services, world.reseller), NewDevice("1002-100"))
    await devices.add_device(ctx(services, world.other), NewDevice("100"))

    def usernames(reply: object) -> list[str]:
        table = getattr(reply, "table", None)
        return [row[0] for row in table.rows] if table else []

    assert usernames(await devices.list_devices(ctx(services, world.customer))) == ["1001-100"]
    reseller = await devices.list_devices(ctx(services, world.reseller))
    assert usernames(reseller) == ["1001-100", "1002-100"]
    assert usernames(await devices.list_devices(ctx(services, world.staff), "2001")) == ["2001-100"]
    with pytest.raises(NotAllowed):
        await devices.list_devices(ctx(services, world.reseller), "2001")


async def test_show_gives_the_phone_settings_and_the_registration(
    services: Services, world: World
) -> None:
    """What the guide has people type into the phone, and Registered or not from the switch
    (the strict Event Socket peer); without a switch it says so instead of "not registered"."""
    customer = ctx(services, world.customer)
    await devices.add_device(customer, NewDevice("100", fields=DeviceFields(caller_name="Jan")))
    alone = dict((await devices.show_device(customer, "1001-100")).fields)
    assert alone["Registered"] == "unknown: switch not reachable"
    assert (alone["Display name"], alone["Register name"], alone["User name"]) == (
        "Jan",
        "1001-100",
        "1001-100",
    )
    assert (alone["Server host"], alone["Server port"], alone["Transport"]) == (
        "1001.sip.localhost",
        "5060",
        "UDP",
    )
    assert (alone["Server expires"], alone["Retry counts"]) == ("3600", "3")
    assert "/c2 device password 1001-100" in alone["Password"]
    async with running_peer() as peer, connected_pool(peer) as pool:
        live = replace(customer, switch=pool)
        assert dict((await devices.show_device(live, "1001-100")).fields)["Registered"] == "no"
        peer.register("1001-100", "1001.sip.localhost", agent="Yealink SIP-T46U", port=5062)
        shown = dict((await devices.show_device(live, "1001-100")).fields)
    assert shown["Registered"].startswith("yes, until ")
    assert shown["Contact"] == "sip:1001-100@127.0.0.1:5062"
    assert shown["User agent"] == "Yealink SIP-T46U"
    assert shown["From"] == "127.0.0.1:5062 (UDP)"
