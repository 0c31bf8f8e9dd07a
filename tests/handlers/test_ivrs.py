"""IVRs: settings checked (recordings of the account, ranges), options to any destination
(another menu is fine, the menu itself is not), failover loops refused with the path."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.handlers import ivrs, routing_changes
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.ivrs import IvrChanges
from c2bot.storage.models import (
    Account,
    Channel,
    Did,
    Ivr,
    Recording,
    RingGroup,
    RingGroupMember,
    RoutingChange,
    SipDevice,
    TimeCondition,
)
from tests.conftest import World


def ctx(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SHELL)


async def acme(services: Services) -> int:
    async with services.sessions() as session:
        found = await session.scalar(select(Account.id).where(Account.number == "1001"))
        assert found is not None
        return found


async def pbx(services: Services) -> int:
    """Account 1001: device 100 with voicemail, ring group sales, recordings welcome and bye."""
    account_id = await acme(services)
    async with services.sessions.begin() as session:
        session.add(
            SipDevice(
                account_id=account_id,
                username="1001-100",
                extension="100",
                password_sealed="x",
                voicemail=True,
            )
        )
        session.add(
            RingGroup(
                account_id=account_id,
                name="sales",
                members=[RingGroupMember(position=1, target="1001-100")],
            )
        )
        for name in ("welcome", "bye"):
            session.add(
                Recording(
                    account_id=account_id,
                    name=name,
                    filename=f"1001/{name}-x.wav",
                    sample_rate=8000,
                    duration_ms=1000,
                    size=16044,
                )
            )
    return account_id


async def ivr(services: Services, name: str = "main") -> Ivr:
    async with services.sessions() as session:
        found = await session.scalar(select(Ivr).where(Ivr.name == name))
        assert found is not None
        return found


async def test_an_ivr_with_settings_and_options(services: Services, world: World) -> None:
    """Add with every setting, options to a ring group and to another menu, then show it."""
    await pbx(services)
    customer = ctx(services, world.customer)
    await ivrs.add_ivr(customer, "support", None, IvrChanges())
    added = await ivrs.add_ivr(
        customer,
        "main",
        None,
        IvrChanges(
            greeting="welcome",
            invalid="bye",
            exit="bye",
            timeout="8",
            retries="2",
            direct_dial="yes",
            cid_prefix="Main: ",
            ringback="uk-ring",
            failover="voicemail 100",
        ),
    )
    assert added.title == "IVR main added to account 1001."
    await ivrs.set_option(customer, "main", None, "1", "ringgroup", "sales")
    answer = await ivrs.set_option(customer, "main", None, "2", "ivr", "support")
    assert answer.title == "IVR main: pressing 2 now goes to IVR support."
    await ivrs.set_option(customer, "main", None, "3", "pstn", "06 12345678")
    await ivrs.set_option(customer, "support", None, "0", "ivr", "main")  # back to the top
    stored = await ivr(services)
    assert (stored.greeting, stored.invalid_sound, stored.exit_sound) == ("welcome", "bye", "bye")
    assert (stored.timeout, stored.retries, stored.direct_dial) == (8, 2, True)
    assert (stored.cid_name_prefix, stored.ringback) == ("Main: ", "uk-ring")
    assert (stored.failover_type, stored.failover_value) == ("voicemail", "1001-100")
    assert [(o.digit, o.dest_type, o.dest_value) for o in stored.options] == [
        ("1", "ringgroup", "sales"),
        ("2", "ivr", "support"),
        ("3", "pstn", "+31612345678"),
    ]
    shown = await ivrs.show_ivr(customer, "main")
    fields = dict(shown.fields)
    assert fields["Failover"] == "voicemail 1001-100"
    assert fields["Reached from"] == "IVR support (digit 0)"
    assert shown.table is not None and shown.table.rows[1] == ("2", "IVR support")
    listing = await ivrs.list_ivrs(ctx(services, world.reseller))
    assert listing.table is not None
    assert [r[1:5] for r in listing.table.rows] == [
        ("main", "on", "welcome", "1, 2, 3"),
        ("support", "on", "-", "0"),
    ]


async def test_settings_that_do_not_fit_are_refused(services: Services, world: World) -> None:
    """Each refusal names its field; nothing is stored."""
    await pbx(services)
    customer = ctx(services, world.customer)
    cases = [
        (IvrChanges(greeting="nope"), "greeting", "Account 1001 has no recording 'nope'"),
        (IvrChanges(timeout="0"), "timeout", "timeout must be a whole number from 1 to 60"),
        (IvrChanges(retries="x"), "retries", "retries must be a whole number from 1 to 10"),
        (IvrChanges(direct_dial="maybe"), "direct_dial", "direct_dial takes yes or no"),
        (IvrChanges(ringback="beep"), "ringback", "or one of: us-ring, ca-ring, uk-ring"),
        (IvrChanges(failover="ringgroup nosuch"), "failover", "has no ring group 'nosuch'"),
        (IvrChanges(failover="teleport x"), "failover", "not a forwarding type"),
        (IvrChanges(options="1 ringgroup sales\n1 hangup"), "options", "Digit 1 is given twice"),
        (IvrChanges(options="12 hangup"), "options", "line 1 (12 hangup): An option is one"),
    ]
    for changes, field, words in cases:
        with pytest.raises(Invalid) as refused:
            await ivrs.add_ivr(customer, "main", None, changes)
        assert list(refused.value.fields) == [field], words
        assert words in refused.value.message, refused.value.message
    async with services.sessions() as session:
        assert await session.scalar(select(Ivr.id)) is None


async def test_loops_are_refused_with_the_path(services: Services, world: World) -> None:
    """An option to its own menu, and a failover the switch would follow back, are refused."""
    account_id = await pbx(services)
    customer = ctx(services, world.customer)
    await ivrs.add_ivr(customer, "main", None, IvrChanges())
    with pytest.raises(Invalid) as refused:
        await ivrs.set_option(customer, "main", None, "1", "ivr", "main")
    assert "That would make a loop: IVR main -> IVR main." in refused.value.message
    async with services.sessions.begin() as session:
        session.add(
            TimeCondition(
                account_id=account_id, name="office", failover_type="ivr", failover_value="main"
            )
        )
    with pytest.raises(Invalid) as refused:
        await ivrs.edit_ivr(customer, "main", None, IvrChanges(failover="timecondition office"))
    assert (
        "That would make a loop: IVR main -> time condition office -> IVR main."
        in refused.value.message
    )
    assert refused.value.fields == {"failover": "loops back"}
    assert (await ivr(services)).failover_type == ""


async def test_edit_remove_and_undo(services: Services, world: World) -> None:
    """Edits are remembered and undone; options go; a menu a DID uses is not removed."""
    account_id = await pbx(services)
    customer = ctx(services, world.customer)
    await ivrs.add_ivr(customer, "main", None, IvrChanges(timeout="5"))
    await ivrs.set_option(customer, "main", None, "1", "ringgroup", "sales")
    changed = await ivrs.edit_ivr(customer, "main", None, IvrChanges(timeout="20", status="off"))
    assert changed.title == "IVR main changed."
    assert ((await ivr(services)).timeout, (await ivr(services)).enabled) == (20, False)
    undone = await routing_changes.undo_last(customer)
    assert undone.title == "Undone: IVR main changed: timeout, status"
    assert ((await ivr(services)).timeout, (await ivr(services)).enabled) == (5, True)
    with pytest.raises(NotFound, match=r"IVR main has no option 7 \(options: 1\)"):
        await ivrs.remove_option(customer, "main", None, "7")
    await ivrs.remove_option(customer, "main", None, "1")
    assert (await ivr(services)).options == []
    async with services.sessions.begin() as session:
        session.add(
            Did(
                number="+31201234567", account_id=account_id, forward_type="ivr", destination="main"
            )
        )
    with pytest.raises(Invalid, match="is in use: DID \\+31201234567"):
        await ivrs.remove_ivr(customer, "main", None)
    async with services.sessions.begin() as session:
        for did in await session.scalars(select(Did)):
            await session.delete(did)
    removed = await ivrs.remove_ivr(customer, "main", None)
    assert removed.title == "IVR main removed from account 1001."
    async with services.sessions() as session:
        summaries = list(await session.scalars(select(RoutingChange.summary)))
    assert summaries[-2:] == ["IVR main option 1 removed", "IVR main removed"]


async def test_other_accounts_are_out_of_reach(services: Services, world: World) -> None:
    """A customer neither sees nor changes another account's menus; staff must name one."""
    await pbx(services)
    await ivrs.add_ivr(ctx(services, world.customer), "main", None, IvrChanges())
    other = ctx(services, world.other)
    with pytest.raises(NotFound, match="There is no IVR 'main' you may see"):
        await ivrs.show_ivr(other, "main")
    with pytest.raises(NotAllowed):
        await ivrs.edit_ivr(other, "main", "1001", IvrChanges(timeout="3"))
    with pytest.raises(NotAllowed):
        await ivrs.add_ivr(ctx(services, world.reseller2), "x", "1001", IvrChanges())
    with pytest.raises(Invalid, match="Name the account"):
        await ivrs.add_ivr(ctx(services, world.staff), "x", None, IvrChanges())
    staff_view = await ivrs.show_ivr(ctx(services, world.staff), "main")
    assert dict(staff_view.fields)["Account"] == "1001"
