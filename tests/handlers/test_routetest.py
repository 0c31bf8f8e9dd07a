"""`/route test`: the steps a call would take, from the walk that answers FreeSWITCH, for the
numbers and devices the asker may see, now or at a time in the account's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from c2bot.bot.commands import changes_something, run_line
from c2bot.bot.grammar import UsageError
from c2bot.bot.routecommands import ROUTE_ACTIONS
from c2bot.bot.services import Services
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.routetest import RouteTest, explain
from c2bot.storage.models import (
    Account,
    Channel,
    Did,
    Ivr,
    RingGroup,
    RingGroupMember,
    SipDevice,
    TimeCondition,
    TimeConditionRow,
)
from c2bot.switch import dialplan
from tests.conftest import World

MONDAY_MORNING = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # 10:30 in Amsterdam


async def _account_id(services: Services, number: str) -> int:
    async with services.sessions() as session:
        found = await session.scalar(select(Account.id).where(Account.number == number))
        assert found is not None
        return found


@pytest.fixture
async def office(services: Services, world: World) -> None:
    """1001: +31201234567 -> time condition office (mon-fri 09-17 -> IVR main, else the
    voicemail of 1001-100); the IVR fails over to ring group sales. 2001 has +31301234567."""
    acme = await _account_id(services, "1001")
    other = await _account_id(services, "2001")
    async with services.sessions.begin() as session:
        for ext in ("100", "101"):
            session.add(
                SipDevice(
                    account_id=acme,
                    username=f"1001-{ext}",
                    extension=ext,
                    password_sealed="x",
                    voicemail=ext == "100",
                )
            )
        session.add_all(
            [
                RingGroup(
                    account_id=acme,
                    name="sales",
                    members=[RingGroupMember(position=1, target="1001-101", timeout=20)],
                ),
                Ivr(
                    account_id=acme, name="main", failover_type="ringgroup", failover_value="sales"
                ),
                TimeCondition(
                    account_id=acme,
                    name="office",
                    failover_type="voicemail",
                    failover_value="1001-100",
                    rows=[
                        TimeConditionRow(
                            priority=10,
                            start_time="09:00",
                            end_time="17:00",
                            weekdays="mon-fri",
                            dest_type="ivr",
                            dest_value="main",
                        )
                    ],
                ),
                Did(
                    number="+31201234567",
                    account_id=acme,
                    forward_type="timecondition",
                    destination="office",
                ),
                Did(number="+31301234567", account_id=other, forward_type="pstn", destination="x"),
            ]
        )


def _ctx(services: Services, actor: Actor) -> Context:
    ctx = services.context(actor, Channel.SHELL)
    ctx.clock = lambda: MONDAY_MORNING
    return ctx


async def test_steps_from_did_to_devices(services: Services, world: World, office: None) -> None:
    """Now (Monday 10:30): DID -> time condition row -> IVR -> failover ring group -> device."""
    reply = await explain(_ctx(services, world.customer), RouteTest("020 123 4567"))
    steps = reply.text.splitlines()
    assert steps[0] == "1. Call to +31201234567: a number of account 1001."
    assert steps[1].startswith("2. Time condition office: Mon 2026-11-23 10:30 Europe/Amsterdam")
    assert "matches row 1 (mon-fri 09:00-17:00, priority 10)" in steps[1]
    assert steps[2] == "3. Row 1 sends the call to IVR main."
    assert steps[3].startswith("4. Answers with voice menu (IVR) main")
    assert any("on to ring group sales" in step for step in steps)
    assert any("Rings 1001-101 (for 20 s)" in step for step in steps)
    assert dict(reply.fields)["At"] == "Mon 2026-11-23 10:30 (Europe/Amsterdam)"
    assert reply.table is None  # switch actions are for staff


async def test_at_is_read_in_the_accounts_zone(
    services: Services, world: World, office: None
) -> None:
    ctx = _ctx(services, world.customer)
    evening = await explain(ctx, RouteTest("+31201234567", at="2026-11-23T17:00"))
    assert "matches no row: the failover" in evening.text
    assert "voicemail of 1001-100" in evening.text.lower()
    morning = await explain(ctx, RouteTest("+31201234567", at="2026-11-23T09:00"))
    assert "matches row 1" in morning.text
    with pytest.raises(Invalid, match="YYYY-MM-DDTHH:MM"):
        await explain(ctx, RouteTest("+31201234567", at="tomorrow"))


async def test_only_numbers_the_asker_may_see(
    services: Services, world: World, office: None
) -> None:
    for actor in (world.customer, world.reseller2):
        with pytest.raises(NotFound, match="not one of the numbers you may see"):
            await explain(
                _ctx(services, actor),
                RouteTest("+31301234567" if actor is world.customer else "+31201234567"),
            )
    reseller = await explain(_ctx(services, world.reseller), RouteTest("+31201234567"))
    assert "account 1001" in reseller.text
    with pytest.raises(NotFound):
        await explain(_ctx(services, world.customer), RouteTest("+31209999999"))
    with pytest.raises(Invalid, match="not a phone number"):
        await explain(_ctx(services, world.customer), RouteTest("sales"))


async def test_staff_see_the_switch_actions_the_dialplan_serves(
    services: Services, world: World, office: None
) -> None:
    """Same walk: the table is what FreeSWITCH gets for the same call at the same time."""
    reply = await explain(_ctx(services, world.staff), RouteTest("+31201234567"))
    assert reply.table is not None
    async with services.sessions() as session:
        served = await dialplan.plan(
            session,
            services.settings,
            context="public",
            destination="+31201234567",
            caller="",
            now=MONDAY_MORNING,
        )
    variables = [("set", f"{k}={v}") for k, v in served.variables.items()]
    assert list(reply.table.rows) == variables + served.actions
    assert ("ivr", "c2-1001-main") in reply.table.rows


async def test_a_call_from_a_device(services: Services, world: World, office: None) -> None:
    ctx = _ctx(services, world.customer)
    reply = await explain(ctx, RouteTest("101", caller="1001-100"))
    assert reply.text.splitlines()[0] == "1. Call to 101 from 1001-100: device 1001-101."
    assert dict(reply.fields)["From"] == "1001-100"
    unknown = await explain(ctx, RouteTest("555", caller="1001-100"))
    assert 'told "not found"' in unknown.text
    # another account's device is not a way in: it is read as a caller number
    with pytest.raises(NotFound):
        await explain(_ctx(services, world.other), RouteTest("101", caller="1001-100"))


async def test_route_test_by_command(services: Services, world: World, office: None) -> None:
    """The same through the command grammar every front door runs."""
    ctx = _ctx(services, world.customer)
    outcome = await run_line(ctx, 'route test "020 123 4567" at:2026-11-28T12:00 from:0612345678')
    reply = outcome.reply
    assert reply.title == "What a call to 020 123 4567 does"
    assert reply.text.startswith("1. Call to +31201234567 from 0612345678:")
    assert "Sat 2026-11-28 12:00 Europe/Amsterdam matches no row" in reply.text
    help_text = ROUTE_ACTIONS.help()
    assert "`route test NUMBER [at:" in help_text and "route undo" in help_text
    with pytest.raises(UsageError, match="route test needs number"):
        await run_line(ctx, "route test")
    assert not changes_something("route test +31201234567")
    assert changes_something("route undo")
