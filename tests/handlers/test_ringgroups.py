"""Ring groups: members (devices or numbers, at most ten, with delay and timeout) by message,
sounds of the account, a no-answer destination without loops, removal while in use, undo."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from c2bot.bot.services import Services
from c2bot.handlers import devices, dids, ringgroups, routing_changes
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.devices import NewDevice
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.ringgroups import Member, MemberChange, RingGroupFields
from c2bot.storage.models import Account, Channel, Recording, RingGroup, RoutingChange
from tests.conftest import World


def ctx(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SHELL)


async def devices_of_acme(services: Services, world: World, *extensions: str) -> None:
    for ext in extensions or ("100", "101", "102"):
        await devices.add_device(ctx(services, world.customer), NewDevice(ext))


async def a_recording(services: Services, account: str, name: str) -> None:
    async with services.sessions.begin() as session:
        owner = await session.scalar(select(Account.id).where(Account.number == account))
        assert owner is not None
        session.add(
            Recording(
                account_id=owner,
                name=name,
                filename=f"{name}.wav",
                sample_rate=8000,
                duration_ms=1500,
                size=24044,
            )
        )


async def group(services: Services, name: str = "sales", account: str = "1001") -> RingGroup:
    async with services.sessions() as session:
        found = await session.scalar(
            select(RingGroup)
            .join(Account, Account.id == RingGroup.account_id)
            .where(RingGroup.name == name, Account.number == account)
        )
        assert found is not None
        return found


def members(found: RingGroup) -> list[tuple[str, int, int]]:
    return [(m.target, m.delay, m.timeout) for m in found.members]


async def invalid(work: object) -> Invalid:
    with pytest.raises(Invalid) as refused:
        await work  # type: ignore[misc]
    return refused.value


async def test_add_with_devices_and_numbers(services: Services, world: World) -> None:
    """Extensions become usernames and numbers E.164, in the order given; `show` has the
    members as a table and the settings in words."""
    await devices_of_acme(services, world)
    fields = RingGroupFields(
        strategy="Sequence",
        members=(
            Member("100"),
            Member("1001-101", delay=5, timeout=20),
            Member("06 1234 5678"),
            Member("020-123 4599"),
        ),
        cid_name_prefix="Sales: ",
        cid_number_prefix="+",
        recording="on",
        skip_busy=True,
    )
    reply = await ringgroups.add_ring_group(ctx(services, world.customer), "sales", None, fields)
    assert reply.title == "Ring group sales added to account 1001."
    found = await group(services)
    assert found.strategy == "sequence" and found.recording == "on" and found.skip_busy
    assert found.cid_name_prefix == "Sales: "
    assert members(found) == [
        ("1001-100", 0, 30),
        ("1001-101", 5, 20),
        ("+31612345678", 0, 30),
        ("+31201234599", 0, 30),
    ]
    shown = await ringgroups.show_ring_group(ctx(services, world.reseller), "sales")
    assert shown.table is not None
    assert shown.table.rows[1] == ("2", "1001-101", "5 s", "20 s")
    assert dict(shown.fields)["Strategy"] == "sequence: members ring one after another, in order"
    assert dict(shown.fields)["No answer"] == "not set: the call ends"
    listed = await ringgroups.list_ring_groups(ctx(services, world.customer))
    assert listed.table is not None and listed.table.rows[0][:3] == ("sales", "1001", "sequence")


async def test_members_are_checked_one_by_one(services: Services, world: World) -> None:
    """Errors name the member's row (member_N): unknown devices, twice the same, delay and
    timeout out of range, more than ten."""
    await devices_of_acme(services, world)
    customer = ctx(services, world.customer)
    cases = [
        ((Member("100"), Member("1001-999")), {"member_2": "no device 1001-999"}),
        ((Member("100"), Member("1001-100")), {"member_2": "named twice"}),
        ((Member("100", delay=301),), {"member_1": "delay 0 to 300"}),
        ((Member("100", timeout=2),), {"member_1": "timeout 5 to 300"}),
        ((*(Member(f"+3161234567{i}") for i in range(10)), Member("100")), None),
    ]
    for given, fields in cases:
        refused = await invalid(
            ringgroups.add_ring_group(customer, "sales", None, RingGroupFields(members=given))
        )
        if fields is not None:
            assert refused.fields == fields, refused.message
        else:
            assert refused.message == "A ring group has at most 10 members (11 given)."
    async with services.sessions() as session:
        assert await session.scalar(select(func.count(RingGroup.id))) == 0


async def test_members_added_changed_and_removed_by_message(
    services: Services, world: World
) -> None:
    await devices_of_acme(services, world)
    customer = ctx(services, world.customer)
    await ringgroups.add_ring_group(
        customer, "sales", None, RingGroupFields(members=(Member("100"),))
    )
    added = await ringgroups.add_member(customer, MemberChange("sales", "101", delay=5, timeout=20))
    assert added.title == "Ring group sales (1001): member 1001-101 added."
    changed = await ringgroups.add_member(customer, MemberChange("sales", "1001-101", timeout=25))
    assert changed.title == "Ring group sales (1001): member 1001-101 changed."
    same = await ringgroups.add_member(customer, MemberChange("sales", "101"))
    assert same.title == "1001-101 is already in ring group sales."
    assert members(await group(services)) == [("1001-100", 0, 30), ("1001-101", 5, 25)]
    removed = await ringgroups.remove_member(customer, MemberChange("sales", "100"))
    assert removed.title == "Ring group sales (1001): member 1001-100 removed."
    assert members(await group(services)) == [("1001-101", 5, 25)]
    assert [m.position for m in (await group(services)).members] == [1]
    with pytest.raises(NotFound) as absent:
        await ringgroups.remove_member(customer, MemberChange("sales", "102"))
    assert absent.value.message == "102 is not a member of ring group sales (members: 1001-101)."
    await routing_changes.undo_last(customer)
    assert members(await group(services)) == [("1001-100", 0, 30), ("1001-101", 5, 25)]


async def test_no_answer_goes_anywhere_but_back(services: Services, world: World) -> None:
    """Any destination type; one that would come back to the group by itself is refused with
    the path."""
    await devices_of_acme(services, world, "100")
    await devices.edit_device(
        ctx(services, world.customer),
        "1001-100",
        devices.DeviceFields(voicemail=True, voicemail_pin="1234"),
    )
    customer = ctx(services, world.customer)
    await ringgroups.add_ring_group(customer, "sales", None, RingGroupFields())
    await ringgroups.add_ring_group(
        customer, "backup", None, RingGroupFields(noanswer="ringgroup sales")
    )
    loop = await invalid(
        ringgroups.edit_ring_group(
            customer, "sales", None, RingGroupFields(noanswer="ringgroup backup")
        )
    )
    assert loop.message.startswith(
        "That would make a loop: ring group sales -> ring group backup -> ring group sales."
    )
    assert loop.fields == {"noanswer": "loops back"}
    itself = await invalid(
        ringgroups.edit_ring_group(
            customer, "sales", None, RingGroupFields(noanswer="ringgroup sales")
        )
    )
    assert "ring group sales -> ring group sales" in itself.message
    for words, label in (
        ("voicemail 100", "voicemail 1001-100"),
        ("pstn 0612345678", "pstn +31612345678"),
        ("hangup busy", "hang up (USER_BUSY)"),
    ):
        reply = await ringgroups.edit_ring_group(
            customer, "sales", None, RingGroupFields(noanswer=words)
        )
        assert dict(reply.fields)["No answer"] == label
    unknown = await invalid(
        ringgroups.edit_ring_group(customer, "sales", None, RingGroupFields(noanswer="queue nope"))
    )
    assert unknown.fields == {"noanswer": "no queue nope"}
    with pytest.raises(NotAllowed):
        await ringgroups.edit_ring_group(
            customer, "sales", None, RingGroupFields(noanswer="other bridge(user/1)")
        )


async def test_sounds_are_recordings_of_the_account(services: Services, world: World) -> None:
    await a_recording(services, "1001", "welcome")
    await a_recording(services, "1002", "theirs")
    customer = ctx(services, world.customer)
    fields = RingGroupFields(announcement="welcome", ringback="uk-ring")
    await ringgroups.add_ring_group(customer, "sales", None, fields)
    found = await group(services)
    assert (found.announcement, found.ringback) == ("welcome", "uk-ring")
    refused = await invalid(
        ringgroups.edit_ring_group(customer, "sales", None, RingGroupFields(announcement="theirs"))
    )
    assert refused.fields == {"announcement": "no recording theirs"}
    await ringgroups.edit_ring_group(customer, "sales", None, RingGroupFields(ringback="none"))
    assert (await group(services)).ringback == ""


async def test_names_within_accounts_and_who_may_act(services: Services, world: World) -> None:
    """Two of the reseller's customers may both have `sales`: the reseller names the account;
    another account's group is not found, and naming that account is not allowed."""
    await ringgroups.add_ring_group(ctx(services, world.customer), "sales", None, RingGroupFields())
    reseller = ctx(services, world.reseller)
    await ringgroups.add_ring_group(reseller, "sales", "1002", RingGroupFields())
    several = await invalid(ringgroups.show_ring_group(reseller, "sales"))
    assert several.message == (
        "Several accounts have a ring group 'sales' (1001, 1002); add account:NUMBER."
    )
    shown = await ringgroups.show_ring_group(reseller, "sales", "1002")
    assert shown.title == "Ring group sales (account 1002)"
    with pytest.raises(NotFound):
        await ringgroups.show_ring_group(ctx(services, world.other), "sales")
    with pytest.raises(NotAllowed):
        await ringgroups.show_ring_group(ctx(services, world.other), "sales", "1001")
    bad = await invalid(
        ringgroups.add_ring_group(
            ctx(services, world.customer), "sales team", None, RingGroupFields()
        )
    )
    assert bad.fields == {"name": "letters, digits, - _ . only"}
    taken = await invalid(
        ringgroups.add_ring_group(
            ctx(services, world.customer), "sales", None, RingGroupFields(strategy="sequence")
        )
    )
    assert taken.fields == {"name": "already exists"}
    replayed = await ringgroups.add_ring_group(
        ctx(services, world.customer), "sales", None, RingGroupFields()
    )
    assert replayed.title == "Ring group sales added to account 1001."


async def test_removal_waits_until_nothing_sends_calls_there(
    services: Services, world: World
) -> None:
    customer = ctx(services, world.customer)
    await ringgroups.add_ring_group(customer, "sales", None, RingGroupFields())
    await dids.add_did(ctx(services, world.staff), "+31201234500", "1001")
    await dids.set_forwarding(customer, "+31201234500", dids.Forwarding("ringgroup", "sales"))
    refused = await invalid(ringgroups.remove_ring_group(customer, "sales", None))
    assert refused.message.startswith("Ring group sales still gets calls from: DID +31201234500.")
    await dids.set_forwarding(customer, "+31201234500", dids.Forwarding("pstn", "+31612345678"))
    await ringgroups.remove_ring_group(customer, "sales", None)
    with pytest.raises(NotFound):
        await ringgroups.show_ring_group(customer, "sales")
    await routing_changes.undo_last(customer)
    assert (await group(services)).name == "sales"


async def test_an_edit_that_changes_nothing_is_not_a_change(
    services: Services, world: World
) -> None:
    await devices_of_acme(services, world, "100")
    customer = ctx(services, world.customer)
    fields = RingGroupFields(members=(Member("100", delay=3),), strategy="sequence")
    await ringgroups.add_ring_group(customer, "sales", None, fields)
    reply = await ringgroups.edit_ring_group(customer, "sales", None, fields)
    assert reply.title == "Nothing to change: ring group sales (1001)."
    edited = await ringgroups.edit_ring_group(
        customer, "sales", None, RingGroupFields(strategy="simultaneous", enabled=False)
    )
    assert edited.title == "Ring group sales (1001): strategy, status changed."
    async with services.sessions() as session:
        kinds = list(await session.scalars(select(RoutingChange.object_type)))
    assert kinds.count("ringgroup") == 2
