"""Rating: the pricing rule against hand-computed cases, rate lookups (own rates, longest prefix
among 100 000, markup, group defaults), least-cost routes and a call rated along the account
tree, on SQLite and PostgreSQL through the driver-level lookup reader."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, update

from c2bot.bot.services import Services
from c2bot.storage.models import Account, OriginationRate, RateGroup, TerminationRate
from c2bot.switch import lookups, rating
from c2bot.switch.rating import CallCharges, Rate
from tests.conftest import World
from tests.support.ratingworld import RatingWorld, add_rating_world, origination


def a_rate(**overrides: Any) -> Rate:
    values: dict[str, Any] = {
        "code": "31",
        "destination": "Netherlands",
        "connection_cost": Decimal("0.01"),
        "grace_time": 5,
        "cost_per_minute": Decimal("0.025"),
        "initial_increment": 30,
        "increment": 6,
    }
    values.update(overrides)
    return Rate(**values)


@pytest.mark.parametrize(
    ("billsec", "seconds", "money"),
    [
        (0, 0, "0"),  # not answered: nothing, not even the connection cost
        (4, 0, "0"),  # inside the grace time
        (5, 0, "0"),  # exactly the grace time
        (6, 30, "0.0225"),  # 1 s past grace: the whole initial block (0.01 + 30 s)
        (20, 30, "0.0225"),  # initial block longer than the call
        (35, 30, "0.0225"),  # 30 s after grace: still the block
        (36, 36, "0.025"),  # one second more: one increment
        (47, 42, "0.0275"),  # 42 s after grace: 30 + 2 x 6
        (3605, 3600, "1.51"),  # an hour: 0.01 + 60 x 0.025
    ],
)
def test_billable_seconds_and_charge(billsec: int, seconds: int, money: str) -> None:
    """Grace seconds off, the initial block whole, the rest rounded up to the increment."""
    rate = a_rate()
    assert rating.billable_seconds(rate, billsec) == seconds
    assert rating.charge(rate, billsec) == Decimal(money)


def test_charge_without_blocks_and_exact_rounding() -> None:
    """Per-second rating (0/1), and money rounded half up to six places, never a float."""
    rate = a_rate(connection_cost=Decimal(0), grace_time=0, initial_increment=0, increment=1)
    assert rating.billable_seconds(rate, 7) == 7
    per_second = a_rate(
        connection_cost=Decimal(0),
        grace_time=0,
        cost_per_minute=Decimal("0.035"),
        initial_increment=1,
        increment=1,
    )
    money = rating.charge(per_second, 47)  # 0.035 * 47 / 60 = 0.0274166...
    assert money == Decimal("0.027417") and isinstance(money, Decimal)
    minute = a_rate(grace_time=0, initial_increment=60, increment=60)
    assert rating.billable_seconds(minute, 61) == 120


def test_numbers_are_normalised_and_placed() -> None:
    """E.164, 00-international, national and bare international digits give the same digits;
    the country comes from the number."""
    for form in (
        "+31 20 123 4567",
        "0031201234567",
        "020-1234567",
        "31201234567",
        "tel:+31201234567",
    ):
        assert rating.international_digits(form) == "31201234567", form
    assert rating.international_digits("call me") == ""
    assert rating.country_of("31201234567") == "NL"
    assert rating.country_of("442071234567") == "GB"
    assert rating.country_of("12025550123") == "US"
    assert rating.country_of("99912") == ""
    assert rating.country_of("") == ""


async def _world(services: Services, direct: bool = False) -> RatingWorld:
    async with services.sessions.begin() as session:
        return await add_rating_world(session, direct=direct)


async def _origination(
    services: Services, account: int | None, group: int | None, number: str
) -> Rate | None:
    async with lookups.reader(services.sessions, services.settings) as read:
        return await rating.origination_rate(
            read, account_id=account, rate_group_id=group, number=number
        )


async def _rate_call(
    services: Services, account: int, number: str, billsec: int, trunk: int | None
) -> CallCharges:
    async with lookups.reader(services.sessions, services.settings) as read:
        return await rating.rate_call(
            read, account_id=account, number=number, billsec=billsec, trunk_id=trunk
        )


async def test_longest_prefix_and_group_defaults(services: Services, world: World) -> None:
    """The longest matching code of the group wins; empty increments take the group's."""
    rates = await _world(services)
    retail = rates.groups["r100-retail"]
    mobile = await _origination(services, None, retail, "+31 6 12345678")
    assert mobile is not None and (mobile.code, mobile.destination) == ("316", "Netherlands Mobile")
    assert (mobile.grace_time, mobile.initial_increment, mobile.increment) == (5, 30, 6)
    fixed = await _origination(services, None, retail, "0201234567")
    assert fixed is not None and fixed.code == "31"
    async with services.sessions.begin() as session:
        await session.execute(
            update(RateGroup)
            .where(RateGroup.id == retail)
            .values(initial_increment=60, increment=30)
        )
    london = await _origination(services, None, retail, "00442071234567")
    assert london is not None and london.code == "44"  # r100-retail has no 4420
    assert (london.initial_increment, london.increment) == (60, 30)
    assert london.cost_per_minute == Decimal("0.03")
    assert await _origination(services, None, retail, "8861234567") is None
    assert await _origination(services, None, None, "31201234567") is None
    assert await _origination(services, None, retail, "not a number") is None


async def test_own_rates_first_and_markup(services: Services, world: World) -> None:
    """An account's own rate wins over its group's, even a longer one; the group's markup
    raises the group's prices, not the account's own."""
    rates = await _world(services)
    retail, acme = rates.groups["r100-retail"], rates.accounts["1001"]
    async with services.sessions.begin() as session:
        session.add(origination(None, ("3", "Europe deal", "0", 0, "0.001", None, None), acme))
        await session.execute(
            update(RateGroup).where(RateGroup.id == retail).values(markup=Decimal("12.5"))
        )
    own = await _origination(services, acme, retail, "31612345678")
    assert own is not None and (own.code, own.cost_per_minute) == ("3", Decimal("0.001"))
    assert (own.initial_increment, own.increment) == (1, 1)  # the group's defaults
    beta = await _origination(services, rates.accounts["1002"], retail, "31612345678")
    assert beta is not None and beta.code == "316"
    # 0.090 + 12.5% = 0.10125; connection 0.010 + 12.5% = 0.01125
    assert beta.cost_per_minute == Decimal("0.10125")
    assert beta.connection_cost == Decimal("0.01125")
    # 47 s: 42 s after grace = 30 + 2 x 6 -> 0.01125 + 0.10125 * 42 / 60 = 0.0821250
    assert rating.charge(beta, 47) == Decimal("0.082125")


async def test_longest_prefix_among_100000(services: Services, world: World) -> None:
    """With 100 000 codes in one group the longest matching one is found, and shorter ones
    still answer numbers the long ones do not cover."""
    async with services.sessions.begin() as session:
        group = RateGroup(name="big")
        session.add(group)
        await session.flush()
        group_id = group.id
        rows = [
            {
                "rate_group_id": group_id,
                "code": f"49{n:05d}",
                "destination": f"Germany {n}",
                "connection_cost": Decimal(0),
                "grace_time": 0,
                "cost_per_minute": Decimal(n) / 1000000,
                "initial_increment": 1,
                "increment": 1,
            }
            for n in range(99_998)
        ]
        rows += [
            {**rows[0], "code": "49", "destination": "Germany", "cost_per_minute": Decimal("0.5")},
            {**rows[0], "code": "4", "destination": "Zone 4", "cost_per_minute": Decimal("0.9")},
        ]
        await session.execute(insert(OriginationRate), rows)
    found = await _origination(services, None, group_id, "+49 123 45 678")
    assert found is not None
    assert (found.code, found.destination, found.cost_per_minute) == (
        "4912345",
        "Germany 12345",
        Decimal("0.012345"),
    )
    found = await _origination(services, None, group_id, "+49 99999 1")  # 4999999 not loaded
    assert found is not None and found.code == "49"
    found = await _origination(services, None, group_id, "4512345")
    assert found is not None and found.code == "4"


async def test_routes_in_least_cost_order(services: Services, world: World) -> None:
    """Active trunks of the group with a matching rate: longest prefix, cheapest, precedence."""
    rates = await _world(services)
    wholesale = rates.groups["wholesale"]

    async def order(number: str) -> list[str]:
        async with lookups.reader(services.sessions, services.settings) as read:
            found = await rating.routes(read, rate_group_id=wholesale, number=number)
        return [route.trunk for route in found]

    assert await order("31201234567") == ["beta", "alpha"]  # gamma is inactive
    assert await order("31612345678") == ["alpha", "beta"]
    assert await order("12025550123") == ["alpha"]
    assert await order("8861234") == []
    async with lookups.reader(services.sessions, services.settings) as read:
        (london, uk) = await rating.routes(read, rate_group_id=wholesale, number="+442071234567")
        assert (
            await rating.routes(read, rate_group_id=rates.groups["r100-retail"], number="31") == []
        )
    assert (london.trunk, london.rate.code, london.rate.strip, london.rate.prepend) == (
        "beta",
        "4420",
        "44",
        "0044",
    )
    assert (uk.trunk, uk.gateway, uk.failover_gateways, uk.max_channels, uk.precedence) == (
        "alpha",
        "gw-alpha",
        ("gw-alpha2", "gw-alpha3"),
        30,
        10,
    )
    assert (uk.rate.initial_increment, uk.rate.increment) == (1, 1)
    async with services.sessions.begin() as session:
        await session.execute(
            update(TerminationRate)
            .where(TerminationRate.trunk_id == rates.trunks["beta"], TerminationRate.code == "31")
            .values(cost_per_minute=Decimal("0.005"))
        )
    assert await order("31201234567") == ["alpha", "beta"]  # same price: precedence 10 first
    async with lookups.reader(services.sessions, services.settings) as read:
        for number, group in (("1001", "wholesale"), ("R200", "wholesale"), ("2001", "wholesale")):
            found = await rating.routing_group(read, account_id=rates.accounts[number])
            assert found == rates.groups[group], number
        assert await rating.routing_group(read, account_id=999_999) is None
    async with services.sessions.begin() as session:
        await session.execute(
            update(Account).where(Account.number == "R100").values(rate_group_id=None)
        )
    async with lookups.reader(services.sessions, services.settings) as read:
        assert await rating.routing_group(read, account_id=rates.accounts["1001"]) is None


async def test_a_resellers_margin_on_its_customers_call(services: Services, world: World) -> None:
    """1001 (a customer of R100) pays R100's retail price; the call costs R100 its wholesale
    price, which is what the carrier debits; the carrier's cost is the trunk's."""
    rates = await _world(services)
    acme, alpha, beta = rates.accounts["1001"], rates.trunks["alpha"], rates.trunks["beta"]
    fixed = await _rate_call(services, acme, "+31201234567", 60, alpha)
    assert (fixed.debit, fixed.cost, fixed.carrier_debit, fixed.carrier_cost) == (
        Decimal("0.02"),
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("0.005"),
    )
    assert (fixed.code, fixed.destination, fixed.country, fixed.note) == (
        "31",
        "Netherlands",
        "NL",
        "",
    )
    assert (fixed.rate_group_id, fixed.reseller_id, fixed.trunk_id) == (
        rates.groups["r100-retail"],
        rates.accounts["R100"],
        alpha,
    )
    mobile = await _rate_call(services, acme, "0031612345678", 47, beta)
    # debit: 0.010 + 0.090 x (30 + 2 x 6) / 60 = 0.073 (grace 5 s: 42 s rated)
    # cost:  0.050 x (30 + 3 x 6) / 60 = 0.04 (no grace: 47 s -> 48 s)
    # trunk: 0.035 x 47 / 60 = 0.0274166... -> 0.027417
    assert (mobile.debit, mobile.cost, mobile.carrier_debit, mobile.carrier_cost) == (
        Decimal("0.073"),
        Decimal("0.04"),
        Decimal("0.04"),
        Decimal("0.027417"),
    )
    assert mobile.debit - mobile.cost == Decimal("0.033")  # R100's margin
    async with services.sessions() as session:  # the same through an ORM session
        again = await rating.rate_call(
            lookups.session_reader(session),
            account_id=acme,
            number="0031612345678",
            billsec=47,
            trunk_id=beta,
        )
    assert again == mobile


async def test_a_direct_account_and_a_reseller_itself(services: Services, world: World) -> None:
    """Without a reseller the account's debit is the carrier's, and its cost is the trunk's."""
    rates = await _world(services, direct=True)
    alpha = rates.trunks["alpha"]
    # USA: 0.005 connection, grace 3, 0.010/min 6/6; 20 s -> 17 s -> 18 s
    direct = await _rate_call(services, rates.accounts["3001"], "+1 202 555 0123", 20, alpha)
    assert (direct.debit, direct.carrier_debit) == (Decimal("0.008"), Decimal("0.008"))
    # alpha: 0.004/min per second: 0.004 x 20 / 60 = 0.001333...
    assert (direct.cost, direct.carrier_cost) == (Decimal("0.001333"), Decimal("0.001333"))
    assert (direct.reseller_id, direct.country, direct.code) == (None, "US", "1")
    reseller = await _rate_call(services, rates.accounts["R100"], "31201234567", 61, alpha)
    assert (reseller.debit, reseller.carrier_debit) == (Decimal("0.02"), Decimal("0.02"))
    assert reseller.cost == reseller.carrier_cost == Decimal("0.005083")


async def test_no_rate_unanswered_and_unknown_trunk(services: Services, world: World) -> None:
    """No rate: zero and a note saying which; unanswered: zero without a note; no trunk: the
    carrier's cost is unknown and said so."""
    rates = await _world(services)
    acme, alpha = rates.accounts["1001"], rates.trunks["alpha"]
    none = await _rate_call(services, acme, "+886 2 1234 5678", 30, alpha)
    assert (none.debit, none.cost, none.carrier_debit, none.carrier_cost) == (Decimal(0),) * 4
    assert "no origination rate for 886212345678" in none.note
    assert "no buy rate for 886212345678 for reseller R100" in none.note
    assert "no termination rate for 886212345678 on trunk alpha" in none.note
    assert (none.code, none.country) == ("", "TW")
    missed = await _rate_call(services, acme, "31201234567", 0, None)
    assert (missed.debit, missed.cost, missed.carrier_cost, missed.note) == (
        Decimal(0),
        Decimal(0),
        Decimal(0),
        "",
    )
    assert missed.code == "31"
    unknown = await _rate_call(services, acme, "31201234567", 60, None)
    assert unknown.debit == Decimal("0.02") and unknown.note == "trunk unknown: no carrier cost"
    async with services.sessions.begin() as session:
        await session.execute(update(Account).where(Account.id == acme).values(rate_group_id=None))
    grouped = await _rate_call(services, acme, "31201234567", 60, alpha)
    assert "(account 1001 has no rate group)" in grouped.note and grouped.debit == 0
    assert grouped.cost == Decimal("0.01")  # R100 still pays its buy price
    long = await _rate_call(services, acme, "+886" + "9" * 28, 60, alpha)
    assert len(long.note) == rating.NOTE_MAX  # the record's column takes no more
    gone = await _rate_call(services, 999_999, "31201234567", 60, alpha)
    assert gone.note == "no account with id 999999" and gone.debit == 0
