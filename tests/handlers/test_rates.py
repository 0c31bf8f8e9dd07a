"""Rate files: the platform's columns in any order, every bad row reported with nothing written,
upserts of existing codes, termination rates with strip/prepend, 100 000 rows in bulk, and who
may import where; on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from c2bot.bot.services import Services
from c2bot.handlers import rates
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.storage.models import Channel, OriginationRate, RateGroup, TerminationRate
from tests.conftest import World
from tests.support.ratingworld import RatingWorld, add_rating_world

HEADER = "Code,Destination,Connection Cost,Grace Time,Cost / Min,Initial Increment,Increment"


def ctx(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SHELL)


async def _world(services: Services) -> RatingWorld:
    async with services.sessions.begin() as session:
        return await add_rating_world(session)


def test_headers_by_name_in_any_order() -> None:
    """Columns are found by name, case and spacing aside, in any order; unknown ones ignored."""
    text = "cost/min,CODE,increment,Priority,destination\n0.0125,31,6,1,Netherlands\n"
    parsed = rates.parse_rates(text, termination=False)
    assert parsed.errors == [] and parsed.ignored == ("Priority",)
    (row,) = parsed.rows
    assert row["code"] == "31" and row["cost_per_minute"] == Decimal("0.0125")
    assert row["increment"] == 6 and row["initial_increment"] is None  # absent: the group's
    assert "initial_increment" not in parsed.columns  # and an update leaves it alone
    assert row["destination"] == "Netherlands"


def test_every_bad_row_is_reported() -> None:
    """Bad numbers, negative rates, duplicate codes and missing values, each by line and column."""
    text = "\n".join(
        [
            HEADER,
            "31,Netherlands,0,0,0.01,60,60",
            "32,Belgium,0,0,-0.02,1,1",  # line 3: negative
            "33,France,abc,0,0.02,1,1",  # line 4: bad number
            "31,Netherlands again,0,0,0.01,60,60",  # line 5: duplicate
            ",Nowhere,0,0,0.01,1,1",  # line 6: no code
            "34,Spain,0,0,,1,1",  # line 7: no rate
            "3x,Bad,0,-5,0.01,1,0",  # line 8: code, grace and increment
            "",
            "35,Italy,0,0,0.0000001,1,1",  # line 10: more places than stored
        ]
    )
    parsed = rates.parse_rates(text, termination=False)
    found = [str(error) for error in parsed.errors]
    assert found == [
        "line 3, Cost / Min: cannot be negative (-0.02)",
        "line 4, Connection Cost: bad number 'abc'",
        "line 5, Code: duplicate code (line 2)",
        "line 6, Code: missing value (a required column)",
        "line 7, Cost / Min: missing value (a required column)",
        "line 8, Code: bad code '3x': 1 to 32 digits",
        "line 8, Grace Time: negative (-5)",
        "line 8, Increment: must be 1 to 86400 seconds (got 0)",
        "line 10, Cost / Min: more than 6 decimal places (0.0000001)",
    ]


def test_wrong_headers() -> None:
    """A file without the required columns is refused as a whole, saying which is missing."""
    parsed = rates.parse_rates("Prefix,Name,Price\n31,NL,0.01\n", termination=False)
    assert [str(e) for e in parsed.errors] == [
        "line 1, Code: missing required column",
        "line 1, Cost / Min: missing required column",
    ]
    twice = rates.parse_rates("Code,code,Cost / Min\n31,31,0.01\n", termination=False)
    assert [str(e) for e in twice.errors] == ["line 1, code: the same column twice"]
    assert str(rates.parse_rates("", termination=False).errors[0]) == (
        "line 1: the file is empty: no header line"
    )
    # Strip/Prepend are termination columns: in a group's file they are ignored (and said so).
    group = rates.parse_rates("Code,Cost / Min,Strip\n31,0.01,31\n", termination=False)
    assert group.ignored == ("Strip",) and "strip" in group.rows[0]
    assert group.rows[0]["strip"] == ""


async def test_import_and_upsert(services: Services, world: World) -> None:
    """A file goes in whole; a second file updates codes it repeats and adds new ones; a file
    with one bad row changes nothing at all."""
    names = await _world(services)
    first = (
        "Increment,Cost / Min,Code,Destination,Grace Time,Connection Cost,Initial Increment\n"
        "60,0.0111,49,Germany,0,0.001,60\n"
        "1,0.05,4915,Germany Mobile,5,0,30\n"
    )
    reply = await rates.import_rates(
        ctx(services, world.staff), rates.RateImport(first.encode(), group="wholesale")
    )
    assert reply.title == "Imported 2 rate(s) into rate group wholesale: 2 added, 0 updated."
    second = f"{HEADER}\n49,Germany,0,0,0.012346,,\n31,Netherlands,0,0,0.011,60,60\n"
    reply = await rates.import_rates(
        ctx(services, world.staff), rates.RateImport(second.encode("utf-8-sig"), group="wholesale")
    )
    assert reply.title == "Imported 2 rate(s) into rate group wholesale: 0 added, 2 updated."
    bad = f"{HEADER}\n49,Germany,0,0,0.5,,\n50,Nowhere,0,0,-1,,\n"
    with pytest.raises(Invalid) as refused:
        await rates.import_rates(
            ctx(services, world.staff),
            rates.RateImport(bad.encode(), filename="bad.csv", group="wholesale"),
        )
    assert refused.value.message == (
        "1 problem(s) in bad.csv; nothing was imported:\n"
        "line 3, Cost / Min: cannot be negative (-1)"
    )
    async with services.sessions() as session:
        stored = {
            r.code: r
            for r in await session.scalars(
                select(OriginationRate).where(
                    OriginationRate.rate_group_id == names.groups["wholesale"]
                )
            )
        }
    assert sorted(stored) == ["1", "31", "316", "44", "4420", "49", "4915"]
    germany = stored["49"]
    assert (germany.cost_per_minute, germany.connection_cost) == (Decimal("0.012346"), Decimal(0))
    # Empty increments in the file empty them in the database: the group's defaults apply.
    assert (germany.initial_increment, germany.increment) == (None, None)
    assert stored["31"].cost_per_minute == Decimal("0.011")
    mobile = stored["4915"]
    assert (mobile.grace_time, mobile.initial_increment, mobile.increment) == (5, 30, 1)


async def test_termination_rates_and_progress(services: Services, world: World) -> None:
    """A trunk's file takes Strip and Prepend; progress is reported as rows are written."""
    names = await _world(services)
    text = (
        f"{HEADER},Strip,Prepend\n32,Belgium,0,0,0.007,1,1,,00\n"
        "3247,Belgium Mobile,0,0,0.03,1,1,32,0032\n"
    )
    seen: list[int] = []
    reply = await rates.import_rates(
        ctx(services, world.admin),
        rates.RateImport(text.encode(), trunk="alpha", progress=seen.append),
    )
    assert reply.title == "Imported 2 rate(s) into trunk alpha: 2 added, 0 updated."
    assert seen == [2]
    async with services.sessions() as session:
        mobile = await session.scalar(
            select(TerminationRate).where(
                TerminationRate.trunk_id == names.trunks["alpha"], TerminationRate.code == "3247"
            )
        )
    assert mobile is not None
    assert (mobile.strip, mobile.prepend, mobile.cost_per_minute) == ("32", "0032", Decimal("0.03"))
    with pytest.raises(Invalid) as bad:
        await rates.import_rates(
            ctx(services, world.admin),
            rates.RateImport(f"{HEADER},Strip\n33,France,0,0,0.01,1,1,3a\n".encode(), trunk="beta"),
        )
    assert "line 2, Strip: bad digits '3a'" in bad.value.message


async def test_one_hundred_thousand_rows(services: Services, world: World) -> None:
    """100 000 rates go in (bulk, chunk by chunk) and a second pass updates them all."""
    await _world(services)
    lines = [HEADER] + [f"{880000 + n},Zone {n},0,0,0.{n:06d},1,1" for n in range(100_000)]
    data = "\n".join(lines).encode()
    seen: list[int] = []
    request = rates.RateImport(data, group="r100-retail", progress=seen.append)
    reply = await rates.import_rates(ctx(services, world.reseller), request)
    assert reply.title.endswith(": 100000 added, 0 updated.")
    assert sum(seen) == 100_000 and len(seen) == 100_000 // rates.CHUNK
    reply = await rates.import_rates(ctx(services, world.reseller), request)
    assert reply.title.endswith(": 0 added, 100000 updated.")
    async with services.sessions() as session:
        group = await session.scalar(select(RateGroup).where(RateGroup.name == "r100-retail"))
        assert group is not None
        count = await session.scalar(
            select(func.count()).where(OriginationRate.rate_group_id == group.id)
        )
        last = await session.scalar(
            select(OriginationRate.cost_per_minute).where(OriginationRate.code == "979999")
        )
    assert count == 100_000 + 4 and last == Decimal("0.099999")


async def test_who_may_import_where(services: Services, world: World) -> None:
    """Staff import anywhere; a reseller into its own groups only, never a trunk; customers
    nowhere; unknown names are named."""
    await _world(services)
    data = f"{HEADER}\n31,Netherlands,0,0,0.02,60,60\n".encode()
    own = await rates.import_rates(
        ctx(services, world.reseller), rates.RateImport(data, group="r100-retail")
    )
    assert "1 updated" in own.title
    with pytest.raises(NotAllowed, match="not one of yours"):
        await rates.import_rates(
            ctx(services, world.reseller), rates.RateImport(data, group="wholesale")
        )
    with pytest.raises(NotAllowed, match="not one of yours"):
        await rates.import_rates(
            ctx(services, world.reseller2), rates.RateImport(data, group="r100-retail")
        )
    with pytest.raises(NotAllowed, match="Trunks are the carrier's"):
        await rates.import_rates(
            ctx(services, world.reseller), rates.RateImport(data, trunk="alpha")
        )
    with pytest.raises(NotAllowed, match="Only support staff and resellers"):
        await rates.import_rates(
            ctx(services, world.customer), rates.RateImport(data, group="r100-retail")
        )
    with pytest.raises(NotFound, match="There is no rate group 'nope'"):
        await rates.import_rates(ctx(services, world.staff), rates.RateImport(data, group="nope"))
    with pytest.raises(NotFound, match="There is no trunk 'nope'"):
        await rates.import_rates(ctx(services, world.staff), rates.RateImport(data, trunk="nope"))
    with pytest.raises(Invalid, match="not UTF-8"):
        await rates.import_rates(
            ctx(services, world.staff), rates.RateImport(b"Code\xff", group="wholesale")
        )
