"""Destinations: words checked, objects found in the right account, loops refused with the path;
routing changes remembered and undone."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from c2bot.bot.commands import confirm_within, run_line
from c2bot.bot.services import Services
from c2bot.handlers import destinations as dest
from c2bot.handlers import routing_changes
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound, Refusal
from c2bot.storage.models import (
    Account,
    Channel,
    Did,
    Ivr,
    IvrOption,
    RingGroup,
    RingGroupMember,
    RoutingChange,
    SipDevice,
    TimeCondition,
    TimeConditionRow,
)
from tests.conftest import World


async def _account(services: Services, number: str) -> Account:
    async with services.sessions() as session:
        found = await session.scalar(select(Account).where(Account.number == number))
        assert found is not None
        return found


async def _pbx(services: Services) -> None:
    """Account 1001: devices 100 and 101, ring group sales, IVR main, time condition office."""
    acme = await _account(services, "1001")
    async with services.sessions.begin() as session:
        for ext in ("100", "101"):
            session.add(
                SipDevice(
                    account_id=acme.id,
                    username=f"1001-{ext}",
                    extension=ext,
                    password_sealed="x",
                    voicemail=ext == "100",
                )
            )
        session.add(
            RingGroup(
                account_id=acme.id,
                name="sales",
                members=[RingGroupMember(position=1, target="1001-101")],
            )
        )
        session.add(Ivr(account_id=acme.id, name="main"))
        session.add(
            TimeCondition(
                account_id=acme.id,
                name="office",
                rows=[TimeConditionRow(priority=1, dest_type="ivr", dest_value="main")],
            )
        )


def test_parse_checks_each_type_in_words() -> None:
    assert dest.parse("PSTN", "06 12345678") == dest.Destination("pstn", "+31612345678")
    assert dest.parse("local", "1001-100 | 1001-101").value == "1001-100|1001-101"
    assert dest.parse("foip", "Fax@Acme.NL").value == "fax@acme.nl"
    assert dest.parse("hangup", "busy").label() == "hang up (USER_BUSY)"
    cases = [
        ("voip", "x", "type", "not a forwarding type"),
        ("pstn", "12", "destination", "not a valid number"),
        ("local", "a,b|c", "destination", "not both"),
        ("ip", "pbx acme", "destination", "host[:port]"),
        ("direct-ip", "203.0.113.5", "destination", "user@host"),
        ("ivr", "bad name!", "destination", "letters, digits"),
        ("ringgroup", "", "destination", "needs a destination"),
        ("hangup", "later", "destination", "takes nothing or one of"),
    ]
    for kind, value, field, words in cases:
        with pytest.raises(Invalid) as refused:
            dest.parse(kind, value)
        assert words in refused.value.message, (kind, value, refused.value.message)
        assert field in refused.value.fields


async def test_check_finds_objects_in_the_account_only(services: Services, world: World) -> None:
    await _pbx(services)
    acme, other = await _account(services, "1001"), await _account(services, "2001")
    ctx = services.context(world.customer, Channel.SHELL)
    async with services.sessions() as session:
        checked = await dest.check(session, ctx, acme, dest.parse("local", "100,1001-101"))
        assert checked.value == "1001-100,1001-101"  # extensions become usernames
        await dest.check(session, ctx, acme, dest.parse("ringgroup", "sales"))
        with pytest.raises(Invalid, match="Account 2001 has no ring group 'sales'"):
            await dest.check(session, ctx, other, dest.parse("ringgroup", "sales"))
        with pytest.raises(Invalid, match="has no SIP device '1001-100'"):
            await dest.check(session, ctx, other, dest.parse("local", "1001-100"))
        with pytest.raises(Invalid, match="voicemail off"):
            await dest.check(session, ctx, acme, dest.parse("voicemail", "101"))
        with pytest.raises(Invalid, match="no recording 'closed'"):
            await dest.check(session, ctx, acme, dest.parse("playback", "closed"))
        with pytest.raises(NotAllowed, match="Only support staff"):
            await dest.check(session, ctx, acme, dest.parse("other", "loopback/9999"))
        staff = services.context(world.staff, Channel.SHELL)
        raw = await dest.check(session, staff, acme, dest.parse("other", "loopback/9999"))
        assert raw == dest.Destination("other", "loopback/9999")


async def test_loops_are_refused_with_the_path(services: Services, world: World) -> None:
    await _pbx(services)
    acme = await _account(services, "1001")
    office = dest.Destination("timecondition", "office")
    main = dest.Destination("ivr", "main")
    async with services.sessions() as session:
        # office -> ivr main already; main's failover back to office would spin for ever.
        path = await dest.find_loop(session, acme.id, main, office)
        assert path == ["IVR main", "time condition office", "IVR main"]
        with pytest.raises(Invalid, match="loop: IVR main -> time condition office -> IVR main"):
            await dest.refuse_loop(session, acme.id, main, office)
        assert await dest.find_loop(session, acme.id, office, office) is not None
        # A ring group that fails over to the IVR is no loop.
        assert (
            await dest.find_loop(session, acme.id, dest.Destination("ringgroup", "sales"), main)
            is None
        )


async def test_an_ivr_digit_back_to_a_parent_menu_is_not_a_loop(
    services: Services, world: World
) -> None:
    await _pbx(services)
    acme = await _account(services, "1001")
    async with services.sessions.begin() as session:
        session.add(
            Ivr(
                account_id=acme.id,
                name="sub",
                options=[IvrOption(digit="0", dest_type="ivr", dest_value="main")],
            )
        )
    async with services.sessions() as session:
        path = await dest.find_loop(
            session, acme.id, dest.Destination("ivr", "main"), dest.Destination("ivr", "sub")
        )
        assert path is None
        used_by = await dest.references(session, acme.id, dest.Destination("ivr", "main"))
        assert sorted(used_by) == [
            "IVR sub (digit 0)",
            "time condition office (row 1 (priority 1))",
        ]
        device = await dest.references(session, acme.id, dest.Destination("local", "1001-101"))
        assert device == ["ring group sales (member)"]


async def _change_did(services: Services, ctx: routing_changes.Context, target: str) -> None:
    async with services.sessions.begin() as session:
        did = await session.scalar(select(Did).where(Did.number == "+31201234567"))
        assert did is not None
        before = routing_changes.snapshot(did)
        did.forward_type, did.destination = "pstn", target
        await session.flush()
        await routing_changes.remember(
            session,
            ctx,
            object_type="did",
            key=did.number,
            account_id=did.account_id,
            summary=f"+31201234567 to pstn {target}",
            before=before,
            after=did,
        )


async def test_undo_puts_back_the_callers_last_change_then_the_one_before(
    services: Services, world: World
) -> None:
    acme = await _account(services, "1001")
    async with services.sessions.begin() as session:
        session.add(
            Did(
                number="+31201234567",
                account_id=acme.id,
                forward_type="foip",
                destination="f@acme.nl",
            )
        )
    jan = services.context(world.customer, Channel.SHELL)
    await _change_did(services, jan, "+31612345678")
    await _change_did(services, jan, "+31687654321")

    reply = (await run_line(jan, "route undo")).reply
    assert reply.title == "Undone: +31201234567 to pstn +31687654321"
    async with services.sessions() as session:
        did = await session.scalar(select(Did).where(Did.number == "+31201234567"))
        assert did is not None and did.destination == "+31612345678"
    await run_line(jan, "route undo")
    async with services.sessions() as session:
        did = await session.scalar(select(Did).where(Did.number == "+31201234567"))
        assert did is not None and (did.forward_type, did.destination) == ("foip", "f@acme.nl")
        changes = list(await session.scalars(select(RoutingChange).order_by(RoutingChange.id)))
        assert [c.undone_at is not None for c in changes] == [True, True, True, True]
    with pytest.raises(NotFound, match="no routing change to undo"):
        await run_line(jan, "route undo")


async def test_undo_refuses_to_throw_away_someone_elses_later_change(
    services: Services, world: World
) -> None:
    acme = await _account(services, "1001")
    async with services.sessions.begin() as session:
        session.add(Did(number="+31201234567", account_id=acme.id))
    jan = services.context(world.customer, Channel.SHELL)
    rita = services.context(world.reseller, Channel.SHELL)
    await _change_did(services, jan, "+31612345678")
    await _change_did(services, rita, "+31687654321")
    with pytest.raises(Refusal, match="changed again since your change"):
        await run_line(jan, "route undo")
    # Rita's own undo is fine; then Jan's is too.
    await run_line(rita, "route undo")
    await run_line(jan, "route undo")
    async with services.sessions() as session:
        did = await session.scalar(select(Did).where(Did.number == "+31201234567"))
        assert did is not None and did.forward_type is None


async def test_undo_recreates_children_of_a_removed_object(
    services: Services, world: World
) -> None:
    await _pbx(services)
    staff = services.context(world.staff, Channel.SHELL)
    async with services.sessions.begin() as session:
        group = await session.scalar(select(RingGroup).where(RingGroup.name == "sales"))
        assert group is not None
        before = routing_changes.snapshot(group)
        await session.delete(group)
        await session.flush()
        await routing_changes.remember(
            session,
            staff,
            object_type="ringgroup",
            key="sales",
            account_id=group.account_id,
            summary="removed ring group sales",
            before=before,
            after=None,
        )
    await run_line(staff, "route undo")
    async with services.sessions() as session:
        back = await session.scalar(select(RingGroup).where(RingGroup.name == "sales"))
        assert back is not None and [m.target for m in back.members] == ["1001-101"]


def test_routing_changes_by_email_wait_fifteen_minutes_others_a_day() -> None:
    assert confirm_within("route did set +31201234567 pstn 0612345678").total_seconds() == 900
    assert confirm_within("/c2 ringgroup edit sales strategy:sequence").total_seconds() == 900
    assert confirm_within("c2 customer add 1003 company:X email:x@x.nl").total_seconds() == 86400
    assert confirm_within("case close 4").total_seconds() == 86400
