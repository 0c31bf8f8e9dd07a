"""`/c2 rategroup|trunk|rate` through the shared grammar as staff, resellers and customers
(with their refusals), and `c2bot import rates` as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from c2bot.bot.commands import changes_something, run_line
from c2bot.bot.grammar import UsageError
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.handlers.context import Actor
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound, Refusal
from c2bot.handlers.replies import Reply
from c2bot.storage.models import Account, Channel, OriginationRate, RateGroup, Trunk
from tests.conftest import World
from tests.support.ratingworld import RatingWorld, add_rating_world


async def answer(services: Services, actor: Actor, line: str) -> Reply:
    return (await run_line(services.context(actor, Channel.SHELL), line)).reply


async def say(services: Services, actor: Actor, line: str) -> str:
    """The text answer to one command line, as the shell and email show it."""
    return " ".join(reply_text(await answer(services, actor, line)).split())


async def refused(services: Services, actor: Actor, line: str) -> Refusal:
    with pytest.raises(Refusal) as caught:
        await run_line(services.context(actor, Channel.SHELL), line)
    return caught.value


async def _world(services: Services) -> RatingWorld:
    async with services.sessions.begin() as session:
        return await add_rating_world(session)


async def test_staff_set_up_trunks_and_a_carrier_group(services: Services, world: World) -> None:
    """Staff add and change trunks and a carrier group with its trunks; show and list say so."""
    staff = world.staff
    added = await say(
        services,
        staff,
        "c2 trunk add alpha gateway:gw-alpha failover:gw-a2,gw-a3 channels:30 precedence:10"
        ' provider:"Alpha Telecom"',
    )
    assert added == "Trunk alpha added (gateway gw-alpha, active)."
    await say(services, staff, "c2 trunk add beta gateway:gw-beta precedence:20")
    assert await say(services, staff, "c2 trunk edit beta status:inactive channels:5") == (
        "Trunk beta changed."
    )
    listed = await answer(services, staff, "c2 trunk list")
    assert listed.table is not None
    assert [row[:5] for row in listed.table.rows] == [
        ("alpha", "gw-alpha (+gw-a2,gw-a3)", "active", "10", "30"),
        ("beta", "gw-beta", "inactive", "20", "5"),
    ]
    shown = dict((await answer(services, staff, "c2 trunk show alpha")).fields)
    assert shown["Failover gateways"] == "gw-a2, gw-a3" and shown["Provider"] == "Alpha Telecom"
    assert shown["Rates"] == "0" and shown["Rate groups"] == "none"
    group = await say(
        services,
        staff,
        'c2 rategroup add wholesale markup:2.5 increment:6 description:"for resellers"'
        " trunks:beta,alpha",
    )
    assert group == "Rate group wholesale added (the carrier's)."
    fields = dict((await answer(services, staff, "c2 rategroup show wholesale")).fields)
    assert fields["Owner"] == "the carrier" and fields["Markup"] == "2.5%"
    assert fields["Default increments"] == "initial 1 s, then 6 s"
    assert fields["Trunks"] == "alpha, beta"  # by precedence
    assert "wholesale" in (await say(services, staff, "c2 trunk show alpha"))
    await say(services, staff, "c2 rategroup edit wholesale trunks:alpha markup:0")
    async with services.sessions() as session:
        stored = await session.scalar(select(RateGroup).where(RateGroup.name == "wholesale"))
        trunk = await session.scalar(select(Trunk).where(Trunk.name == "alpha"))
    assert stored is not None and trunk is not None
    assert [t.name for t in stored.trunks] == ["alpha"] and stored.markup == 0
    assert (trunk.failover_gateways, trunk.max_channels, trunk.provider) == (
        "gw-a2,gw-a3",
        30,
        "Alpha Telecom",
    )


async def test_bad_values_are_refused(services: Services, world: World) -> None:
    """Names, gateways, numbers and unknown trunks are checked, each saying what is wrong."""
    staff = world.staff
    await say(services, staff, "c2 trunk add alpha gateway:gw-alpha")
    assert isinstance(await refused(services, staff, "c2 trunk add beta"), Invalid)
    bad = await refused(services, staff, 'c2 trunk add beta gateway:"gw beta"')
    assert "not a gateway name" in bad.message
    assert isinstance(
        await refused(services, staff, "c2 trunk edit alpha status:maybe"), UsageError
    )
    assert (
        "already a trunk alpha"
        in (await refused(services, staff, "c2 trunk add alpha gateway:gw")).message
    )
    markup = await refused(services, staff, "c2 rategroup add g1 markup:-5")
    assert "cannot be negative" in markup.message
    assert (
        "increment: must be 1 to 86400"
        in (await refused(services, staff, "c2 rategroup add g1 increment:0")).message
    )
    unknown = await refused(services, staff, "c2 rategroup add g1 trunks:alpha,nope")
    assert unknown.message == "There is no trunk nope."
    async with services.sessions() as session:  # nothing of a refused add stays
        assert await session.scalar(select(RateGroup).where(RateGroup.name == "g1")) is None
    assert isinstance(await refused(services, staff, "c2 rategroup show nope"), NotFound)
    assert isinstance(await refused(services, staff, "c2 rategroup add bad/name"), Invalid)


async def test_resellers_manage_their_own_groups_only(services: Services, world: World) -> None:
    """A reseller adds and edits its own groups, sees the group it buys at, and is refused
    trunks, the carrier's groups and other resellers' groups; customers only look."""
    rates = await _world(services)
    reseller = world.reseller
    added = await say(
        services, reseller, "c2 rategroup add r100-gold markup:15 initial-increment:30 increment:6"
    )
    assert added == "Rate group r100-gold added for reseller R100."
    async with services.sessions() as session:
        gold = await session.scalar(select(RateGroup).where(RateGroup.name == "r100-gold"))
    assert gold is not None and gold.account_id == rates.accounts["R100"]
    assert (gold.markup, gold.initial_increment, gold.increment) == (Decimal(15), 30, 6)
    await say(services, reseller, 'c2 rategroup edit r100-retail description:"standard"')
    listed = await answer(services, reseller, "c2 rategroup list")
    assert listed.table is not None
    assert [row[:2] for row in listed.table.rows] == [
        ("r100-gold", "R100"),
        ("r100-retail", "R100"),
        ("wholesale", "carrier"),  # what R100 buys at
    ]
    bought = dict((await answer(services, reseller, "c2 rategroup show wholesale")).fields)
    assert "Trunks" not in bought and bought["Rates"] == "5"
    assert "Accounts buying at it" not in bought  # the carrier's other buyers are not R100's
    retail = dict((await answer(services, reseller, "c2 rategroup show r100-retail")).fields)
    assert retail["Accounts buying at it"] == "2" and retail["Owner"] == "reseller R100"
    for line, kind in (
        ("c2 rategroup edit wholesale markup:1", NotAllowed),
        ("c2 rategroup add r100-x trunks:alpha", NotAllowed),
        ("c2 rategroup add r100-y account:R200", NotAllowed),
        ("c2 trunk list", NotAllowed),
        ("c2 trunk add t gateway:gw", NotAllowed),
        ("c2 trunk show alpha", NotAllowed),
        ("c2 rate list trunk:alpha", NotAllowed),
    ):
        assert isinstance(await refused(services, reseller, line), kind), line
    assert isinstance(
        await refused(services, world.reseller2, "c2 rategroup show r100-retail"), NotFound
    )
    assert isinstance(
        await refused(services, world.reseller2, "c2 rategroup edit r100-retail markup:1"),
        NotAllowed,
    )
    customer = world.customer
    assert isinstance(await refused(services, customer, "c2 rategroup add mine"), NotAllowed)
    assert isinstance(
        await refused(services, customer, "c2 rategroup edit r100-retail markup:0"), NotAllowed
    )
    assert "Rate group r100-retail" in await say(
        services, customer, "c2 rategroup show r100-retail"
    )
    assert isinstance(await refused(services, customer, "c2 rategroup show wholesale"), NotFound)
    staff_made = await say(services, world.staff, "c2 rategroup add r200-basic account:R200")
    assert staff_made == "Rate group r200-basic added for reseller R200."
    sold = await refused(services, world.staff, "c2 rategroup edit r200-basic trunks:alpha")
    assert "a reseller's" in sold.message


async def test_rate_look_ups(services: Services, world: World) -> None:
    """Rates by code prefix, the one rate for a number (with the markup in it), a trunk's
    rates for staff."""
    await _world(services)
    staff = world.staff
    listed = await answer(services, staff, "c2 rate list wholesale prefix:31")
    assert listed.title == "2 rate(s) of rate group wholesale starting with 31"
    assert listed.table is not None
    assert [row[:5] for row in listed.table.rows] == [
        ("31", "Netherlands", "0.0000", "0 s", "0.0100"),
        ("316", "Netherlands Mobile", "0.0000", "0 s", "0.0500"),
    ]
    await say(services, staff, "c2 rategroup edit wholesale markup:10")
    marked = await answer(services, staff, "c2 rate list wholesale prefix:44")
    assert marked.table is not None and marked.table.columns[5] == "With 10%"
    assert [row[5] for row in marked.table.rows] == ["0.0220", "0.0165"]
    one = await answer(services, world.customer, "c2 rate list r100-retail number:+31612345678")
    assert one.title == "Rate of rate group r100-retail for 31612345678: 316 Netherlands Mobile"
    fields = dict(one.fields)
    # 60 s: 5 s grace, 55 s -> 30 + 5 x 6 = 60 s: 0.01 + 0.09 = 0.10
    assert fields["Per minute"] == "0.0900" and fields["A 60 s call"] == "0.1000"
    none = await answer(services, staff, "c2 rate list wholesale number:0086123")
    assert none.title == "No rate of rate group wholesale for 86123."
    trunk = await answer(services, staff, "c2 rate list trunk:beta prefix:44")
    assert trunk.table is not None and trunk.table.columns[-2:] == ("Strip", "Prepend")
    assert trunk.table.rows[0][0] == "4420" and trunk.table.rows[0][-2:] == ("44", "0044")
    assert (await answer(services, staff, "c2 rate list wholesale prefix:99")).title == (
        "No rates of rate group wholesale starting with 99."
    )
    assert isinstance(await refused(services, staff, "c2 rate list"), Invalid)
    assert isinstance(await refused(services, staff, "c2 rate list wholesale prefix:abc"), Invalid)
    assert not changes_something("c2 rate list wholesale")
    assert not changes_something("c2 rategroup show wholesale")
    assert changes_something("c2 rategroup add x")
    assert changes_something("c2 trunk edit alpha status:active")


async def test_rates_set_by_message(services: Services, world: World) -> None:
    """One rate at a time: a reseller prices its own group and its customer's own rates, staff
    a trunk's; the same checks as a file; the seller only."""
    rates = await _world(services)
    reseller = world.reseller
    added = await say(
        services,
        reseller,
        'c2 rate set 3120 group:r100-retail per-minute:0.018 grace:3 destination:"Amsterdam"',
    )
    assert added == "Rate 3120 of rate group r100-retail set: 0.0180 per minute."
    await say(
        services, reseller, "c2 rate set 3120 group:r100-retail initial:default connection:0.001"
    )
    async with services.sessions() as session:
        amsterdam = await session.scalar(
            select(OriginationRate).where(
                OriginationRate.rate_group_id == rates.groups["r100-retail"],
                OriginationRate.code == "3120",
            )
        )
    assert amsterdam is not None
    assert (amsterdam.cost_per_minute, amsterdam.connection_cost, amsterdam.grace_time) == (
        Decimal("0.018"),
        Decimal("0.001"),
        3,
    )
    assert (amsterdam.destination, amsterdam.initial_increment) == ("Amsterdam", None)
    # 1001's own rate comes before the group's, even a longer one.
    await say(services, reseller, "c2 rate set 31 account:1001 per-minute:0.012")
    own = dict(
        (
            await answer(services, world.customer, "c2 rate list account:1001 number:0201234567")
        ).fields
    )
    assert own["Code"] == "31" and own["Per minute"] == "0.0120"
    listed = await answer(services, world.customer, "c2 rate list account:1001")
    assert listed.title == "1 rate(s) of account 1001's own rates"
    assert await say(services, reseller, "c2 rate remove 31 account:1001") == (
        "Rate 31 of account 1001's own rates removed."
    )
    gone = dict(
        (await answer(services, reseller, "c2 rate list account:1001 number:0201234567")).fields
    )
    assert gone["Code"] == "3120"  # back to the group's longest prefix
    trunk = await say(
        services, world.staff, "c2 rate set 3247 trunk:beta per-minute:0.03 strip:32 prepend:0032"
    )
    assert trunk == "Rate 3247 of trunk beta set: 0.0300 per minute."
    for actor, line, kind in (
        (reseller, "c2 rate set 40 group:r100-retail", Invalid),  # a new rate needs its price
        (reseller, "c2 rate set 4x group:r100-retail per-minute:0.1", Invalid),
        (reseller, "c2 rate set 40 group:r100-retail per-minute:-1", Invalid),
        (reseller, "c2 rate set 40 group:r100-retail per-minute:0.1 strip:4", Invalid),
        (reseller, "c2 rate set 40 per-minute:0.1", Invalid),  # whose?
        (reseller, "c2 rate set 40 group:wholesale per-minute:0.1", NotAllowed),
        (reseller, "c2 rate set 40 account:R100 per-minute:0.1", NotAllowed),  # its own buy price
        (reseller, "c2 rate set 40 trunk:alpha per-minute:0.1", NotAllowed),
        (world.reseller2, "c2 rate set 40 account:1001 per-minute:0.1", NotAllowed),
        (world.customer, "c2 rate set 40 account:1001 per-minute:0.1", NotAllowed),
        (world.other, "c2 rate list account:1001", NotAllowed),
        (reseller, "c2 rate remove 99 group:r100-retail", NotFound),
    ):
        assert isinstance(await refused(services, actor, line), kind), line
    negative = await refused(services, reseller, "c2 rate set 40 group:r100-retail per-minute:-1")
    assert negative.message == "per-minute: cannot be negative (-1)."
    assert changes_something("c2 rate set 40 group:x per-minute:1")
    assert changes_something("c2 rate remove 40 group:x")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "c2bot.bot.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_import_rates_from_the_command_line(
    services: Services, world: World, tmp_path: Path
) -> None:
    """`c2bot import rates` writes a good file with a progress bar and refuses a bad one with
    every bad row and exit status 1, writing nothing."""
    await _world(services)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2_", "SLACK_"))}
    env |= {
        "C2_DATABASE_URL": services.settings.database_url,
        "C2_CONFIG": str(tmp_path / "absent.toml"),
        "C2_SECRET_KEY": "test-secret-key",
    }
    good = tmp_path / "wholesale.csv"
    good.write_text(
        "Code,Destination,Connection Cost,Grace Time,Cost / Min,Initial Increment,Increment\n"
        "31,Netherlands,0,0,0.0095,60,60\n"
        "32,Belgium,0,0,0.012,1,1\n"
    )
    done = _cli(env, "import", "rates", str(good), "--group", "wholesale")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "Imported 2 rate(s) into rate group wholesale: 1 added, 1 updated."
    )
    assert "importing wholesale.csv" in done.stderr and "2/" not in done.stdout
    bad = tmp_path / "termination.csv"
    bad.write_text("Code,Cost / Min,Strip,Prepend\n33,0.01,,\n33,0.02,,\n34,x,,\n")
    failed = _cli(env, "import", "rates", str(bad), "--trunk", "alpha")
    assert failed.returncode == 1
    assert "2 problem(s) in termination.csv; nothing was imported:" in failed.stderr
    assert "line 3, Code: duplicate code (line 2)" in failed.stderr
    assert "line 4, Cost / Min: bad number 'x'" in failed.stderr
    either = _cli(env, "import", "rates", str(good))
    assert either.returncode == 2 and "--group" in either.stderr
    async with services.sessions() as session:
        belgium = await session.scalar(select(OriginationRate).where(OriginationRate.code == "32"))
        account = await session.scalar(select(Account).where(Account.number == "R100"))
    assert belgium is not None and belgium.cost_per_minute == Decimal("0.012")
    assert account is not None
