"""Numbers (DIDs): support adds, moves and removes them; the account's people forward them, to
every forwarding type, checked against the account, shown back in words, undone."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.handlers import devices, dids, routing_changes
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.devices import NewDevice
from c2bot.handlers.dids import Forwarding
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.storage.models import (
    Account,
    CallQueue,
    Channel,
    Conference,
    Did,
    Ivr,
    RingGroup,
    RoutingChange,
    TimeCondition,
)
from tests.conftest import World

NUMBER = "+31201234500"


def ctx(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SHELL)


async def account_id(services: Services, number: str) -> int:
    async with services.sessions() as session:
        found = await session.scalar(select(Account.id).where(Account.number == number))
        assert found is not None
        return found


async def a_pbx(services: Services, world: World) -> None:
    """Account 1001: devices 100 and 101 (and a trunk), and one object of every kind."""
    for ext in ("100", "101", "900"):
        await devices.add_device(ctx(services, world.customer), NewDevice(ext))
    acme = await account_id(services, "1001")
    async with services.sessions.begin() as session:
        session.add_all(
            [
                RingGroup(account_id=acme, name="sales"),
                Conference(account_id=acme, name="weekly"),
                CallQueue(account_id=acme, name="support"),
                Ivr(account_id=acme, name="main"),
                TimeCondition(account_id=acme, name="office", enabled=False),
            ]
        )


async def forwarding(services: Services) -> tuple[str | None, str | None]:
    async with services.sessions() as session:
        did = await session.scalar(select(Did).where(Did.number == NUMBER))
        assert did is not None
        return did.forward_type, did.destination


async def test_numbers_come_from_the_carrier(services: Services, world: World) -> None:
    """Only staff add (once per account), move and remove numbers; others are told who does."""
    for actor in (world.customer, world.reseller):
        with pytest.raises(NotAllowed) as refused:
            await dids.add_did(ctx(services, actor), NUMBER, "1001")
        assert refused.value.message == (
            "Only support staff can add numbers: they come from the carrier."
        )
    staff = ctx(services, world.staff)
    added = await dids.add_did(staff, "020 123 4500", "1001")
    assert added.title == f"{NUMBER} added to account 1001."
    again = await dids.add_did(staff, NUMBER, "1001")
    assert again.title == f"{NUMBER} already belongs to account 1001."
    with pytest.raises(Invalid) as taken:
        await dids.add_did(staff, NUMBER, "1002")
    assert f"`/c2 did edit {NUMBER} account:1002`" in taken.value.message
    with pytest.raises(Invalid) as missing:
        await dids.add_did(staff, NUMBER, None)
    assert missing.value.fields == {"account": "missing"}
    with pytest.raises(NotAllowed):
        await dids.remove_did(ctx(services, world.reseller), NUMBER)
    with pytest.raises(NotAllowed):
        await dids.edit_did(ctx(services, world.reseller), NUMBER, "1002", None)


FORWARDINGS = [
    ("local", "100", "1001-100", "rings SIP device 1001-100"),
    (
        "local",
        "1001-100,101",
        "1001-100,1001-101",
        "rings SIP devices 1001-100 and 1001-101 together",
    ),
    ("local", "100|101", "1001-100|1001-101", "rings SIP devices 1001-100, then 1001-101, in turn"),
    ("ip", "pbx.acme.nl:5060", "pbx.acme.nl:5060", f"as sip:{NUMBER}@pbx.acme.nl:5060"),
    ("direct-ip", "100@203.0.113.5", "100@203.0.113.5", "to the SIP address 100@203.0.113.5"),
    ("pstn", "06 1234 5678", "+31612345678", "forwards the call to +31612345678"),
    ("sip-did", "900", "1001-900", f"trunk device 1001-900, with {NUMBER} as the number dialled"),
    ("ringgroup", "sales", "sales", "rings ring group sales"),
    ("conference", "weekly", "weekly", "joins the caller to conference weekly"),
    ("queue", "support", "support", "puts the caller in queue support"),
    ("ivr", "main", "main", "plays the voice menu (IVR) main"),
    ("timecondition", "office", "office", "follows time condition office"),
    ("foip", "Fax@Acme.NL", "fax@acme.nl", "receives faxes and mails them as PDF to fax@acme.nl"),
]


async def test_every_forwarding_type_is_set_and_told_in_words(
    services: Services, world: World
) -> None:
    """The customer points its number at each type; device words become usernames, numbers
    E.164; `show` says where calls go; each change is remembered."""
    await a_pbx(services, world)
    await dids.add_did(ctx(services, world.staff), NUMBER, "1001")
    customer = ctx(services, world.customer)
    for kind, value, stored, words in FORWARDINGS:
        reply = await dids.set_forwarding(customer, NUMBER, Forwarding(kind, value))
        assert words in reply.title, (kind, reply.title)
        assert await forwarding(services) == (kind, stored)
        shown = dict((await dids.show_did(customer, NUMBER)).fields)
        assert words in shown["Calls"], kind
        if kind == "timecondition":
            assert shown["Note"] == "time condition office is disabled"
        else:
            assert "Note" not in shown, kind
    async with services.sessions() as session:
        about = select(RoutingChange.summary).where(RoutingChange.object_type == "did")
        summaries = list(await session.scalars(about.order_by(RoutingChange.id)))
    assert summaries[:3] == [
        f"DID {NUMBER} added to account 1001",
        f"DID {NUMBER}: local 1001-100",
        f"DID {NUMBER}: local 1001-100,1001-101",
    ]
    assert len(summaries) == 1 + len(FORWARDINGS)
    same = await dids.set_forwarding(customer, NUMBER, Forwarding("foip", "fax@acme.nl"))
    assert same.title == f"{NUMBER} already receives faxes and mails them as PDF to fax@acme.nl."


async def test_bad_destinations_are_refused_in_words(services: Services, world: World) -> None:
    await a_pbx(services, world)
    await dids.add_did(ctx(services, world.staff), NUMBER, "1001")
    customer = ctx(services, world.customer)
    cases = [
        ("local", "1001-999", "Account 1001 has no SIP device '1001-999'"),
        ("local", "100,101|102", "either ',' (ring together) or '|'"),
        ("ip", "not a host!", "is not a SIP server"),
        ("direct-ip", "nobody", "is not a SIP address"),
        ("pstn", "12", "not a valid number"),
        ("ringgroup", "nosuch", "Account 1001 has no ring group 'nosuch'"),
        ("queue", "sales", "Account 1001 has no queue 'sales'"),
        ("foip", "not-an-address", "is not an email address"),
        ("voicemail", "100", "is not a forwarding type for a number"),
        ("teleport", "x", "is not a forwarding type for a number"),
    ]
    for kind, value, words in cases:
        with pytest.raises(Invalid) as refused:
            await dids.set_forwarding(customer, NUMBER, Forwarding(kind, value))
        assert words in refused.value.message, (kind, refused.value.message)
    with pytest.raises(NotAllowed) as other:
        await dids.set_forwarding(customer, NUMBER, Forwarding("other", "bridge(user/100)"))
    assert "Only support staff" in other.value.message
    staff = await dids.set_forwarding(
        ctx(services, world.staff), NUMBER, Forwarding("other", "bridge(sofia/gw/x)")
    )
    assert "runs the dial string bridge(sofia/gw/x) (set by support)" in staff.title
    assert await forwarding(services) == ("other", "bridge(sofia/gw/x)")


async def test_who_may_forward_and_see_a_number(services: Services, world: World) -> None:
    """The account, its reseller and staff; another account gets neither the number nor a
    hint that it exists."""
    await dids.add_did(ctx(services, world.staff), NUMBER, "1001")
    pstn = Forwarding("pstn", "+31612345678")
    await dids.set_forwarding(ctx(services, world.reseller), NUMBER, pstn)
    for actor in (world.other, world.reseller2):
        with pytest.raises(NotAllowed) as refused:
            await dids.set_forwarding(ctx(services, actor), NUMBER, pstn)
        assert "is not one of your numbers" in refused.value.message
        with pytest.raises(NotFound):
            await dids.show_did(ctx(services, actor), NUMBER)
        assert (await dids.list_dids(ctx(services, actor))).title == "No numbers."
    listed = await dids.list_dids(ctx(services, world.customer))
    assert listed.table is not None
    assert listed.table.rows == ((NUMBER, "1001", "pstn", "+31612345678"),)
    with pytest.raises(Invalid) as named:
        await dids.set_forwarding(ctx(services, world.reseller), NUMBER, pstn, "1002")
    assert named.value.fields == {"account": "not this number's account"}


async def test_staff_add_a_new_number_by_forwarding_it(services: Services, world: World) -> None:
    """`route did set` by staff with account:N puts a number nobody has on that account."""
    staff = ctx(services, world.staff)
    with pytest.raises(Invalid) as unnamed:
        await dids.set_forwarding(staff, NUMBER, Forwarding("foip", "fax@acme.nl"))
    assert unnamed.value.fields == {"account": "missing"}
    await dids.set_forwarding(staff, NUMBER, Forwarding("foip", "fax@acme.nl"), "1001")
    assert await forwarding(services) == ("foip", "fax@acme.nl")
    await routing_changes.undo_last(staff)
    async with services.sessions() as session:
        assert await session.scalar(select(Did.id)) is None


async def test_moving_a_number_keeps_only_forwarding_that_fits(
    services: Services, world: World
) -> None:
    """Moved to another account, a number keeps a PSTN forward but not the old account's
    device; removal and undo put it back as it was."""
    await a_pbx(services, world)
    staff = ctx(services, world.staff)
    await dids.add_did(staff, NUMBER, "1001")
    await dids.set_forwarding(staff, NUMBER, Forwarding("local", "1001-100"))
    moved = await dids.edit_did(staff, NUMBER, "1002", None)
    assert moved.title == (
        f"DID {NUMBER} moved from account 1001 to 1002. "
        "Its forwarding (local 1001-100) was 1001's: cleared."
    )
    assert await forwarding(services) == (None, None)
    await dids.edit_did(staff, NUMBER, None, Forwarding("pstn", "+31612345678"))
    back = await dids.edit_did(staff, NUMBER, "1001", None)
    assert "cleared" not in back.title
    assert await forwarding(services) == ("pstn", "+31612345678")
    await dids.remove_did(staff, NUMBER)
    with pytest.raises(NotFound):
        await dids.show_did(staff, NUMBER)
    await routing_changes.undo_last(staff)
    shown = dict((await dids.show_did(staff, NUMBER)).fields)
    assert shown["Account"] == "1001 Acme BV"
    assert shown["Calls"] == f"{NUMBER} forwards the call to +31612345678"


async def test_a_number_comes_with_its_fees(services: Services, world: World) -> None:
    """What the account pays for a number is set when staff give it; bad amounts are named."""
    staff = ctx(services, world.staff)
    with pytest.raises(Invalid) as negative:
        await dids.add_did(staff, NUMBER, "1001", setup_fee="-5", monthly_fee="1.50")
    assert negative.value.fields == {"setup": "cannot be negative (-5)"}
    with pytest.raises(Invalid) as garbled:
        await dids.add_did(staff, NUMBER, "1001", monthly_fee="one fifty")
    assert garbled.value.fields == {"monthly": "bad number 'one fifty'"}
    await dids.add_did(staff, NUMBER, "1001", setup_fee="5", monthly_fee="1.50")
    async with services.sessions() as session:
        did = await session.scalar(select(Did))
    assert did is not None
    assert (did.setup_fee, did.monthly_fee) == (Decimal("5.000000"), Decimal("1.500000"))
    # Undo and redo keep the exact amounts (the change log stores them as text).
    await routing_changes.undo_last(staff)
    async with services.sessions() as session:
        assert await session.scalar(select(Did.id)) is None
