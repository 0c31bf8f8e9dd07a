"""Rate groups, rates and trunks on top of the `world` fixture's accounts, for rating tests.

    async with services.sessions.begin() as session:
        rates = await add_rating_world(session)
    rates.groups["wholesale"], rates.trunks["alpha"], rates.accounts["1001"]  # ids

What it makes (prices per minute; empty increments take the group's defaults, 1 s / 1 s):

- `wholesale`: the carrier's group (no owner). R100 and R200 buy at it; trunks alpha, beta,
  gamma are its routes. Rates:
  31 Netherlands 0.010 (60/60) | 316 Netherlands Mobile 0.050 (30/6)
  44 United Kingdom 0.020 | 4420 United Kingdom London 0.015
  1 USA conn 0.005, grace 3 s, 0.010 (6/6)
- `r100-retail`: owned by R100; customers 1001 and 1002 buy at it. Rates:
  31 0.020 (60/60) | 316 conn 0.010, grace 5 s, 0.090 (30/6) | 44 0.030 | 1 0.020 (6/6)
- `r200-retail`: owned by R200; customer 2001 buys at it. Rates: 31 0.025 (60/60) | 44 0.040
- trunks (termination, increments 1/1 unless said):
  alpha (gateway gw-alpha, failovers gw-alpha2,gw-alpha3; 30 channels; precedence 10;
  provider Alpha Telecom): 31 0.005 | 316 0.030 | 44 0.010 | 1 0.004
  beta (gw-beta; precedence 20; provider Beta Carrier): 31 0.004 | 316 0.035 | 4420 0.008,
  strip "44" prepend "0044"
  gamma (gw-gamma; precedence 5; inactive): 31 0.001
- with `direct=True` also account 3001 (Direct BV, no reseller) at `wholesale`.

So a 60 s call of 1001 to 31201234567 by alpha: debit 0.020 (1001 at r100-retail), cost 0.010
(R100's buy price, also the carrier's debit), carrier cost 0.005 (alpha).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.storage.models import (
    Account,
    OriginationRate,
    RateGroup,
    RateGroupTrunk,
    TerminationRate,
    Trunk,
)

# code, destination, connection cost, grace, per minute, initial, increment
RateRow = tuple[str, str, str, int, str, int | None, int | None]

WHOLESALE: list[RateRow] = [
    ("31", "Netherlands", "0", 0, "0.010", 60, 60),
    ("316", "Netherlands Mobile", "0", 0, "0.050", 30, 6),
    ("44", "United Kingdom", "0", 0, "0.020", None, None),
    ("4420", "United Kingdom London", "0", 0, "0.015", None, None),
    ("1", "USA", "0.005", 3, "0.010", 6, 6),
]
R100_RETAIL: list[RateRow] = [
    ("31", "Netherlands", "0", 0, "0.020", 60, 60),
    ("316", "Netherlands Mobile", "0.010", 5, "0.090", 30, 6),
    ("44", "United Kingdom", "0", 0, "0.030", None, None),
    ("1", "USA", "0", 0, "0.020", 6, 6),
]
R200_RETAIL: list[RateRow] = [
    ("31", "Netherlands", "0", 0, "0.025", 60, 60),
    ("44", "United Kingdom", "0", 0, "0.040", None, None),
]
# name, gateway, failovers, max channels, precedence, status, provider, rates (code, per min)
TRUNKS: list[tuple[str, str, str, int, int, str, str, list[tuple[str, str]]]] = [
    (
        "alpha",
        "gw-alpha",
        "gw-alpha2,gw-alpha3",
        30,
        10,
        "active",
        "Alpha Telecom",
        [("31", "0.005"), ("316", "0.030"), ("44", "0.010"), ("1", "0.004")],
    ),
    (
        "beta",
        "gw-beta",
        "",
        0,
        20,
        "active",
        "Beta Carrier",
        [("31", "0.004"), ("316", "0.035"), ("4420", "0.008")],
    ),
    ("gamma", "gw-gamma", "", 0, 5, "inactive", "Gamma", [("31", "0.001")]),
]


_NAMES = {row[0]: row[1] for row in WHOLESALE}


@dataclass(frozen=True)
class RatingWorld:
    """Ids of what `add_rating_world` made, by name (groups, trunks) and number (accounts)."""

    groups: dict[str, int]
    trunks: dict[str, int]
    accounts: dict[str, int]


def origination(
    group_id: int | None, row: RateRow, account_id: int | None = None
) -> OriginationRate:
    code, destination, connection, grace, per_minute, initial, increment = row
    return OriginationRate(
        rate_group_id=group_id,
        account_id=account_id,
        code=code,
        destination=destination,
        connection_cost=Decimal(connection),
        grace_time=grace,
        cost_per_minute=Decimal(per_minute),
        initial_increment=initial,
        increment=increment,
    )


async def add_rating_world(session: AsyncSession, *, direct: bool = False) -> RatingWorld:
    """Groups, rates and trunks as the module docstring says, assigned to the world's accounts
    (R100, R200, 1001, 1002, 2001 must exist). Flushed, not committed."""
    accounts = {
        number: account_id
        for number, account_id in (await session.execute(select(Account.number, Account.id))).all()
    }
    if direct:
        account = Account(number="3001", company="Direct BV", email="office@direct.nl")
        session.add(account)
        await session.flush()
        accounts["3001"] = account.id
    groups: dict[str, int] = {}
    for name, owner, rows in (
        ("wholesale", None, WHOLESALE),
        ("r100-retail", accounts["R100"], R100_RETAIL),
        ("r200-retail", accounts["R200"], R200_RETAIL),
    ):
        group = RateGroup(name=name, account_id=owner, description=f"{name} prices")
        session.add(group)
        await session.flush()
        groups[name] = group.id
        session.add_all([origination(group.id, row) for row in rows])
    trunks: dict[str, int] = {}
    for name, gateway, failovers, channels, precedence, status, provider, rates in TRUNKS:
        trunk = Trunk(
            name=name,
            gateway=gateway,
            failover_gateways=failovers,
            max_channels=channels,
            precedence=precedence,
            status=status,
            provider=provider,
        )
        session.add(trunk)
        await session.flush()
        trunks[name] = trunk.id
        session.add(RateGroupTrunk(rate_group_id=groups["wholesale"], trunk_id=trunk.id))
        for code, per_minute in rates:
            london = name == "beta" and code == "4420"
            session.add(
                TerminationRate(
                    trunk_id=trunk.id,
                    code=code,
                    destination=_NAMES[code],
                    cost_per_minute=Decimal(per_minute),
                    strip="44" if london else "",
                    prepend="0044" if london else "",
                )
            )
    assignment = {
        "R100": "wholesale",
        "R200": "wholesale",
        "3001": "wholesale",
        "1001": "r100-retail",
        "1002": "r100-retail",
        "2001": "r200-retail",
    }
    for number, group_name in assignment.items():
        if number in accounts:
            account_row = await session.get(Account, accounts[number])
            assert account_row is not None
            account_row.rate_group_id = groups[group_name]
    await session.flush()
    return RatingWorld(groups=groups, trunks=trunks, accounts=accounts)
