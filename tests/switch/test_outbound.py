"""Outbound calls: a SIP device dials a number outside its account, FreeSWITCH posts the dialplan
request exactly as mod_xml_curl does (the recorded post, destination, context, device and caller
id swapped), and the XML answer is parsed and checked: rate, balance, limits, trunks in LCR
order with failover, maximum length, translations and refusals.

Prices (tests/support/ratingworld.py): 1001 buys at r100-retail (316: connection 0.010, grace
5 s, 0.090/min, 30 s then per 6 s); its reseller R100 at wholesale (316: 0.050/min, 30/6);
trunks of wholesale: alpha (gw-alpha, failovers gw-alpha2, gw-alpha3; 30 channels; 316 at
0.030) and beta (gw-beta; 316 at 0.035; 4420 at 0.008 with strip 44, prepend 0044); gamma is
inactive.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, update

from c2bot.bot.services import Services
from c2bot.handlers.routetest import RouteTest, explain
from c2bot.storage.models import (
    Account,
    Channel,
    Did,
    OriginationRate,
    RateGroupTrunk,
    SipDevice,
    TerminationRate,
    Trunk,
)
from c2bot.switch import dialplan, outbound
from tests.conftest import World
from tests.support.ratingworld import RatingWorld, add_rating_world, origination
from tests.switch.test_dialplan import (
    MONDAY_MORNING,
    SERVED_POST,
    Served,
    post_dialplan,
    post_for,
    read,
)

CALLER_NUMBER = "+31201234500"
ALPHA = ["gw-alpha", "gw-alpha2", "gw-alpha3"]


@dataclass(frozen=True)
class Out:
    world: RatingWorld

    def account(self, number: str) -> int:
        return self.world.accounts[number]


@pytest.fixture
async def out(services: Services, world: World) -> Out:
    """The rating world; 1001 (prepaid, 10.00) has device 1001-100 (caller number
    +31201234500) and 1001-101 (records its calls, no caller number); R100 has 100.00;
    direct account 3001 (postpaid, balance 0, credit limit 5) has device 3001-100."""
    async with services.sessions.begin() as session:
        rates = await add_rating_world(session, direct=True)
        session.add_all(
            [
                SipDevice(
                    account_id=rates.accounts["1001"],
                    username="1001-100",
                    extension="100",
                    password_sealed="x",
                    caller_number=CALLER_NUMBER,
                ),
                SipDevice(
                    account_id=rates.accounts["1001"],
                    username="1001-101",
                    extension="101",
                    password_sealed="x",
                    record_calls=True,
                ),
                SipDevice(
                    account_id=rates.accounts["3001"],
                    username="3001-100",
                    extension="100",
                    password_sealed="x",
                    caller_number="+31301234500",
                ),
                Did(number="+31201234599", account_id=rates.accounts["1001"]),
            ]
        )
    found = Out(rates)
    await change(services, "1001", balance=Decimal(10))
    await change(services, "R100", balance=Decimal(100))
    await change(services, "3001", billing="postpaid", credit_limit=Decimal(5))
    return found


async def change(services: Services, number: str, **values: Any) -> None:
    async with services.sessions.begin() as session:
        await session.execute(update(Account).where(Account.number == number).values(**values))


def device_post(number: str, device: str = "1001-100", caller: str = "1001") -> dict[str, str]:
    """The recorded post as a registered device's call: its context, its user variables."""
    account = device.split("-")[0]
    return post_for(
        number,
        f"c2-{account}",
        **{
            "variable_c2_device": device,
            "variable_user_name": device,
            "variable_sip_auth_username": device,
            "Caller-Caller-ID-Number": caller,
            "Hunt-Caller-ID-Number": caller,
        },
    )


async def dial(services: Services, number: str, **kwargs: Any) -> Served | None:
    params = device_post(number, **kwargs)
    return read(await dialplan.answer(services.sessions, services.settings, params, MONDAY_MORNING))


async def call_of(services: Services, number: str, **kwargs: Any) -> Served:
    found = await dial(services, number, **kwargs)
    assert found is not None, f"{number} was not found"
    return found


async def steps(services: Services, number: str, device: str = "1001-100") -> list[str]:
    async with services.sessions() as session:
        planned = await dialplan.plan(
            session,
            services.settings,
            context=f"c2-{device.split('-')[0]}",
            destination=number,
            caller="",
            now=MONDAY_MORNING,
            device=device,
        )
    return planned.steps


def dialled(call: Served) -> list[str]:
    """The dial string of every bridge, whether or not inside limit_execute, in order."""
    found = []
    for app, data in call.actions:
        if app == "bridge":
            found.append(data)
        elif app == "limit_execute":
            found.append(data.split(" bridge ", 1)[1])
    return found


def refused(call: Served) -> tuple[str, str]:
    assert "bridge" not in call.apps and "limit_execute" not in call.apps
    assert call.apps[-1] == "hangup"
    return call.variables["c2_refusal"], call.data("hangup")[-1]


# --- the whole plan -------------------------------------------------------------------------


async def test_a_mobile_call_gets_its_whole_plan(services: Services, out: Out) -> None:
    """0612345678 from 1001-100: rate 316, both trunks cheapest first, alpha's gateways in
    order inside its channel limit, failover on gateway failures only, length by balance."""
    call = await call_of(services, "0612345678")
    assert call.context == "c2-1001" and call.expression == "^0612345678$"
    assert call.extension == "c2-1001-out"
    v = call.variables
    assert v["accountcode"] == "1001" and v["c2_account"] == "1001"
    assert (v["c2_direction"], v["c2_call_type"]) == ("outbound", "STANDARD")
    assert v["c2_rate_group"] == "r100-retail"
    assert v["c2_rate_code"] == "316"
    assert v["c2_rate_per_minute"] == "0.090000"
    assert v["c2_rate_connection_cost"] == "0.010000"
    assert v["c2_trunks"] == "alpha,beta"
    assert v["c2_dialled"] == "0612345678" and v["c2_number"] == "0612345678"
    assert v["effective_caller_id_number"] == CALLER_NUMBER
    assert v["hangup_after_bridge"] == "true"
    # 10.00 at 0.010 + 0.090/min: 6660 billable seconds, + 5 s grace; R100 (100.00 at
    # 0.050/min) could pay longer, so 1001's balance decides.
    assert v["c2_max_seconds"] == "6665"
    assert v["execute_on_answer"] == "sched_hangup +6665 allotted_timeout"
    failover = v["continue_on_fail"].split(",")
    assert "NORMAL_TEMPORARY_FAILURE" in failover and "GATEWAY_DOWN" in failover
    for callee in ("USER_BUSY", "NO_ANSWER", "CALL_REJECTED", "UNALLOCATED_NUMBER"):
        assert callee not in failover
    assert v["originate_failed_cause"] == "NORMAL_CIRCUIT_CONGESTION"
    assert [d for a, d in call.actions if d.startswith("c2_trunk=")] == [
        "c2_trunk=alpha",
        "c2_trunk=beta",
    ]
    assert call.actions.index(("set", "c2_trunk=beta")) == call.apps.index("bridge") - 1
    assert [a for a in call.actions if a[0] != "set"] == [
        *[
            ("limit_execute", f"hash c2_trunk alpha 30 bridge sofia/gateway/{gw}/31612345678")
            for gw in ALPHA
        ],
        ("bridge", "sofia/gateway/gw-beta/31612345678"),
        ("hangup", "${originate_failed_cause}"),
    ]


async def test_limits_of_the_account_and_its_reseller(services: Services, out: Out) -> None:
    """Concurrent calls and calls per second: `limit hash` with the refusal cause, before any
    bridge; the reseller's own limits count its customers' calls too."""
    await change(services, "1001", max_channels=2, cps=1)
    await change(services, "R100", max_channels=40)
    call = await call_of(services, "0612345678")
    limits = call.data("limit")
    assert limits == [
        "hash c2_calls 1001 2 !NORMAL_CIRCUIT_CONGESTION",
        "hash c2_cps 1001 1/1 !SWITCH_CONGESTION",
        "hash c2_calls R100 40 !NORMAL_CIRCUIT_CONGESTION",
    ]
    first_bridge = call.apps.index("limit_execute")
    assert max(i for i, app in enumerate(call.apps) if app == "limit") < first_bridge
    words = await steps(services, "0612345678")
    assert any("At most 2 calls at once for account 1001" in s for s in words)
    # a trunk's name is one word of the limit's data, whatever it holds
    async with services.sessions.begin() as session:
        await session.execute(
            update(Trunk).where(Trunk.name == "beta").values(name="beta one", max_channels=5)
        )
    call = await call_of(services, "0612345678")
    assert call.data("limit_execute")[-1] == (
        "hash c2_trunk beta%20one 5 bridge sofia/gateway/gw-beta/31612345678"
    )
    assert call.variables["c2_trunks"] == "alpha,beta one"
    assert any("At most 1 new calls a second" in s for s in words)


async def test_strip_and_prepend_of_the_termination_rate(services: Services, out: Out) -> None:
    """London: beta has the longer prefix (4420, strip 44, prepend 0044), so it goes first."""
    call = await call_of(services, "+442071234567")
    assert call.variables["c2_trunks"] == "beta,alpha"
    assert dialled(call) == [
        "sofia/gateway/gw-beta/00442071234567",
        *[f"sofia/gateway/{gw}/442071234567" for gw in ALPHA],
    ]


async def test_a_trunk_dearer_than_the_price_is_skipped(services: Services, out: Out) -> None:
    """R100 buys 316 at 0.050/min: beta at 0.055 would lose the carrier money."""
    async with services.sessions.begin() as session:
        await session.execute(
            update(TerminationRate)
            .where(
                TerminationRate.trunk_id == out.world.trunks["beta"],
                TerminationRate.code == "316",
            )
            .values(cost_per_minute=Decimal("0.055"))
        )
    call = await call_of(services, "0612345678")
    assert call.variables["c2_trunks"] == "alpha"
    assert all("gw-beta" not in d for d in dialled(call))
    assert any(
        "Trunk beta costs 0.055000/min" in s and "skipped" in s
        for s in await steps(services, "0612345678")
    )


async def test_at_most_five_trunks_are_tried(services: Services, out: Out) -> None:
    async with services.sessions.begin() as session:
        for n in range(5):
            trunk = Trunk(name=f"extra{n}", gateway=f"gw-extra{n}", precedence=n)
            session.add(trunk)
            await session.flush()
            session.add_all(
                [
                    RateGroupTrunk(rate_group_id=out.world.groups["wholesale"], trunk_id=trunk.id),
                    TerminationRate(
                        trunk_id=trunk.id, code="316", cost_per_minute=Decimal("0.040")
                    ),
                ]
            )
    call = await call_of(services, "0612345678")
    assert call.variables["c2_trunks"] == "alpha,beta,extra0,extra1,extra2"
    assert dialled(call)[-1] == "sofia/gateway/gw-extra2/31612345678"
    words = await steps(services, "0612345678")
    assert "2 more trunk(s) could carry it: at most 5 are tried." in words


async def test_translations_of_number_and_caller_id(services: Services, out: Out) -> None:
    await change(
        services,
        "1001",
        number_translation='"00/","0/31"',
        out_callerid_translation='"+31/0"',
    )
    call = await call_of(services, "0612345678")
    assert call.variables["c2_number"] == "31612345678"
    assert call.variables["effective_caller_id_number"] == "0201234500"
    assert dialled(call)[0] == "sofia/gateway/gw-alpha/31612345678"
    international = await call_of(services, "0044207123456")
    assert international.variables["c2_number"] == "44207123456"
    words = await steps(services, "0612345678")
    assert 'Number translation "00/","0/31": 0612345678 becomes 31612345678.' in words
    assert "The caller id sent out is 0201234500." in words


async def test_a_translation_that_does_not_parse_is_not_applied(
    services: Services, out: Out
) -> None:
    await change(services, "1001", number_translation="0-31")
    call = await call_of(services, "0612345678")
    assert call.variables["c2_number"] == "0612345678"
    assert any("does not parse" in s for s in await steps(services, "0612345678"))


async def test_postpaid_spends_the_credit_limit(services: Services, out: Out) -> None:
    """3001 (direct, wholesale, postpaid): balance 0 + credit 5 at 0.050/min (30/6) = 6000 s."""
    call = await call_of(services, "0612345678", device="3001-100")
    assert call.variables["c2_rate_group"] == "wholesale"
    assert call.variables["c2_max_seconds"] == "6000"
    await change(services, "3001", credit_limit=Decimal(1000))
    rich = await call_of(services, "0612345678", device="3001-100")
    assert rich.variables["execute_on_answer"] == "sched_hangup +14400 allotted_timeout"


async def test_a_recording_device_records_its_calls_out(services: Services, out: Out) -> None:
    call = await call_of(services, "0612345678", device="1001-101", caller="101")
    assert call.variables["media_bug_answer_req"] == "true"
    assert call.one("record_session").endswith("/1001/calls/${uuid}.wav")
    assert call.apps.index("record_session") < call.apps.index("limit_execute")
    # no caller number and "101" is no phone number: the switch keeps the caller id it has
    assert "effective_caller_id_number" not in call.variables


# --- refusals ---------------------------------------------------------------------------------


async def test_no_rate_is_refused(services: Services, out: Out) -> None:
    call = await call_of(services, "+81312345678")
    assert refused(call) == ("no rate", "NO_ROUTE_DESTINATION")
    assert call.extension == "c2-1001-out-refused"
    assert call.variables["c2_direction"] == "outbound"
    assert "1001 has no rate for +81312345678 (rate group r100-retail): refused " in " ".join(
        await steps(services, "+81312345678")
    )
    # the account sells it, its reseller does not buy it: refused too
    async with services.sessions.begin() as session:
        session.add(add_rate(out.world.groups["r100-retail"], "81", "Japan", "0.5"))
    reseller = await call_of(services, "+81312345678")
    assert refused(reseller) == ("no rate (reseller)", "NO_ROUTE_DESTINATION")


def add_rate(group: int, code: str, name: str, per_minute: str) -> OriginationRate:
    return origination(group, (code, name, "0", 0, per_minute, None, None))


async def test_no_trunk_is_refused(services: Services, out: Out) -> None:
    async with services.sessions.begin() as session:
        await session.execute(
            RateGroupTrunk.__table__.delete().where(
                RateGroupTrunk.rate_group_id == out.world.groups["wholesale"]
            )
        )
    assert refused(await call_of(services, "0612345678")) == ("no route", "NO_ROUTE_DESTINATION")


async def test_no_balance_is_refused(services: Services, out: Out) -> None:
    """The connection (0.010) and the first 30 s at 0.090/min (0.045) cost 0.055."""
    await change(services, "1001", balance=Decimal("0.054999"))
    call = await call_of(services, "0612345678")
    assert refused(call) == ("no balance", "CALL_REJECTED")
    assert "less than the connection and first block (0.055000)" in " ".join(
        await steps(services, "0612345678")
    )
    await change(services, "1001", balance=Decimal("0.055"))
    just = await call_of(services, "0612345678")
    assert just.variables["c2_max_seconds"] == "35"  # 5 s grace + the first 30 s block


async def test_a_reseller_without_balance_refuses_its_customers(
    services: Services, out: Out
) -> None:
    await change(services, "R100", balance=Decimal(0))
    call = await call_of(services, "0612345678")
    assert refused(call) == ("no balance (reseller)", "CALL_REJECTED")
    await change(services, "R100", balance=Decimal(1))  # 1.00 at 0.050/min: 1200 s
    assert (await call_of(services, "0612345678")).variables["c2_max_seconds"] == "1200"


async def test_suspended_accounts_are_refused(services: Services, out: Out) -> None:
    await change(services, "1001", status="suspended")
    assert refused(await call_of(services, "0612345678")) == (
        "account suspended",
        "OUTGOING_CALL_BARRED",
    )
    await change(services, "1001", status="active")
    await change(services, "R100", status="suspended")
    assert refused(await call_of(services, "0612345678")) == (
        "reseller suspended",
        "OUTGOING_CALL_BARRED",
    )


# --- emergency, what is not outbound, other paths ---------------------------------------------


async def test_emergency_calls_go_out_whatever_the_account(services: Services, out: Out) -> None:
    """Suspended, without balance and limited: 112 still goes out, free and uncut."""
    await change(services, "1001", status="suspended", balance=Decimal(0), max_channels=1)
    call = await call_of(services, "112")
    assert call.extension == "c2-1001-out-emergency"
    assert call.variables["c2_call_type"] == "FREE"
    assert "execute_on_answer" not in call.variables and "limit" not in call.apps
    assert "c2_refusal" not in call.variables
    # the trunks that take the number (alpha has code 1), as dialled
    assert dialled(call) == [f"sofia/gateway/{gw}/112" for gw in ALPHA]
    await change(services, "R100", rate_group_id=None)  # no trunks: the PSTN gateway
    fallback = await call_of(services, "911")
    assert dialled(fallback) == [f"{services.settings.pstn_gateway}911"]


async def test_what_is_not_a_phone_number_is_not_found(services: Services, out: Out) -> None:
    for number in ("555", "*97", "12345", "+12"):
        assert await dial(services, number) is None, number
    assert await dial(services, "0612345678", device="9999-100") is None  # no such account


async def test_directions_of_other_calls(services: Services, out: Out) -> None:
    local = await call_of(services, "101")
    assert (local.variables["c2_direction"], local.variables["c2_call_type"]) == (
        "local",
        "LOCAL",
    )
    async with services.sessions.begin() as session:
        await session.execute(
            update(Did)
            .where(Did.number == "+31201234599")
            .values(forward_type="local", destination="1001-100")
        )
    inbound = read(
        await dialplan.answer(
            services.sessions, services.settings, post_for("+31201234599"), MONDAY_MORNING
        )
    )
    assert inbound is not None
    assert (inbound.variables["c2_direction"], inbound.variables["c2_call_type"]) == (
        "inbound",
        "DID",
    )


# --- over HTTP, the route test, both readers ---------------------------------------------------


async def test_the_recorded_bytes_over_http(services: Services, out: Out) -> None:
    body = SERVED_POST.calling("+31612345678", "c2-1001", b"&variable_c2_device=1001-100")
    served = read(await post_dialplan(services, body))
    assert served is not None and served.extension == "c2-1001-out"
    assert served.variables["c2_trunks"] == "alpha,beta"
    assert served.expression == r"^\+31612345678$"


async def test_the_switch_and_route_test_read_alike(services: Services, out: Out) -> None:
    await change(services, "1001", max_channels=3, cps=2)
    for number in ("0612345678", "+442071234567", "+81312345678", "112"):
        params = device_post(number, caller="")
        served = await dialplan.answer(services.sessions, services.settings, params, MONDAY_MORNING)
        async with services.sessions() as session:
            planned = await dialplan.plan(
                session,
                services.settings,
                context="c2-1001",
                destination=number,
                caller="",
                now=MONDAY_MORNING,
                device="1001-100",
            )
        assert served == dialplan.render(planned), number


async def test_route_test_explains_a_call_out(services: Services, out: Out, world: World) -> None:
    ctx = services.context(world.customer, Channel.SHELL)
    ctx.clock = lambda: MONDAY_MORNING
    reply = await explain(ctx, RouteTest("06 1234 5678", caller="1001-100"))
    lines = reply.text.splitlines()
    assert lines[0] == "1. Call to 0612345678 from 1001-100: a number outside the account."
    text = reply.text
    assert "Rate (rate group r100-retail): 316 Netherlands Mobile, 0.090000/min" in text
    assert "prepaid balance 10.000000: enough for 1 h 51 min" in text
    assert "It costs reseller R100 316 Netherlands Mobile, 0.050000/min" in text
    assert (
        "First: trunk alpha (0.030000/min for 316; at most 30 calls at once): gateway gw-alpha, "
        "then gw-alpha2, gw-alpha3; the number goes as 31612345678." in text
    )
    assert "Second: trunk beta" in text
    assert "The call is cut after 1 h 51 min of talk (what it can pay)." in text


async def test_four_reads_whatever_the_number_of_trunks(services: Services, out: Out) -> None:
    """A reseller's customer: the account with its reseller, the calling device and any device
    the number names (an extension?), two rates, the routes: four selects, none per trunk."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(services.engine.sync_engine, "before_cursor_execute", count)
    try:  # through a session, so SQLAlchemy sees each query
        words = await steps(services, "0612345678")
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 4, selects
    assert any("Second: trunk beta" in step for step in words)


def test_longest_call_is_what_the_balance_pays() -> None:
    """Against `rating.charge`: the answer fits, one second more does not."""
    rate = outbound.Rate(
        code="31",
        destination="NL",
        connection_cost=Decimal("0.01"),
        grace_time=5,
        cost_per_minute=Decimal("0.09"),
        initial_increment=30,
        increment=6,
    )
    for balance in ("0.055", "0.1", "1", "3.33", "9.99"):
        seconds = outbound.longest_call(rate, Decimal(balance))
        assert outbound.rating.charge(rate, seconds) <= Decimal(balance)
        assert outbound.rating.charge(rate, seconds + 1) > Decimal(balance)
    assert outbound.longest_call(rate, Decimal("0.054")) == 0
    free = outbound.Rate("31", "NL", Decimal(0), 0, Decimal(0), 1, 1)
    assert outbound.longest_call(free, Decimal(0)) == outbound.MAX_SECONDS
