"""Call reports: summary figures against a direct computation over the same rows, CDR paging by
keyset, CSV exports parsed back, the chart as a PNG, recordings and who may see what."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.handlers import reportchart, reports
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.reports import CallFilter, CdrRequest, SummaryRequest, View
from c2bot.storage.calls import rebuild_rollups
from c2bot.storage.models import Account, CallRecord, Channel, Trunk
from tests.conftest import World

FIRST_DAY = datetime(2026, 11, 2, tzinfo=UTC)
NOVEMBER = CallFilter(date_from="2026-11-01", date_to="2026-11-30")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
CODES = (("31", "Netherlands"), ("316", "Netherlands Mobile"), ("44", "United Kingdom"))
FAILURES = (("NO_ANSWER", 19), ("USER_BUSY", 17), ("CALL_REJECTED", 21))
Row = dict[str, Any]


@dataclass(frozen=True)
class Calls:
    """The inserted calls as plain dicts (for direct computation) and the ids they name."""

    rows: list[Row]
    accounts: dict[str, int]
    trunks: dict[str, int]


def _money(rng: random.Random, top: int) -> Decimal:
    return Decimal(rng.randint(0, top)).scaleb(-6)


def _call(rng: random.Random, number: str, accounts: dict[str, int], trunks: list[int]) -> Row:
    resellers = {"1001": "R100", "1002": "R100", "R100": None, "2001": "R200"}
    started = FIRST_DAY + timedelta(seconds=rng.randint(0, 3 * 86400))
    answered = rng.random() >= 0.35
    billsec = rng.randint(1, 900) if answered else 0
    direction = rng.choice(("outbound", "outbound", "inbound", "local"))
    call_type = {"inbound": "DID", "local": "LOCAL"}.get(direction, "STANDARD")
    if direction == "outbound" and rng.random() < 0.1:
        call_type = "FREE"
    code, destination = rng.choice(CODES) if direction == "outbound" else ("", "")
    cause, q850 = ("NORMAL_CLEARING", 16) if answered else rng.choice(FAILURES)
    debit = _money(rng, 400_000) if answered else Decimal(0)
    cost = _money(rng, 200_000) if answered else Decimal(0)
    seller = resellers[number]
    call_uuid = str(uuid.UUID(int=rng.getrandbits(128)))
    return {
        "uuid": call_uuid,
        "account_id": accounts[number],
        "reseller_id": accounts[seller] if seller else None,
        "started_at": started,
        "answered_at": started + timedelta(seconds=3) if answered else None,
        "ended_at": started + timedelta(seconds=billsec + 3),
        "caller_id_number": f"+3120{rng.randint(1000000, 9999999)}",
        "called_number": f"{code or '3120'}{rng.randint(1000000, 9999999)}",
        "sip_user": f"{number}-{rng.randint(100, 102)}",
        "direction": direction,
        "call_type": call_type,
        "duration": billsec + 3,
        "billsec": billsec,
        "hangup_cause": cause,
        "hangup_cause_q850": q850,
        "code": code,
        "destination": destination,
        "country": "NL",
        "trunk_id": rng.choice(trunks) if direction == "outbound" else None,
        "debit": debit,
        "cost": cost,
        "carrier_debit": cost if seller else debit,
        "carrier_cost": _money(rng, 100_000) if answered else Decimal(0),
        "recording": f"{call_uuid}.wav" if rng.random() < 0.1 else "",
    }


async def seed_calls(services: Services, count: int = 160, seed: int = 5) -> Calls:
    """`count` calls over 2-5 November 2026 for 1001, 1002, R100 and 2001 (the world's)."""
    rng = random.Random(seed)
    async with services.sessions.begin() as session:
        accounts = {a.number: a.id for a in await session.scalars(select(Account))}
        alpha = Trunk(name="alpha", gateway="gw-alpha")
        beta = Trunk(name="beta", gateway="gw-beta")
        session.add_all([alpha, beta])
        await session.flush()
        trunks = {"alpha": alpha.id, "beta": beta.id}
        weights = {"1001": 4, "1002": 2, "R100": 1, "2001": 2}
        numbers = rng.choices(list(weights), list(weights.values()), k=count)
        rows = [_call(rng, number, accounts, list(trunks.values())) for number in numbers]
        # One call just before midnight UTC: the next day in Amsterdam.
        rows[0]["started_at"] = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)
        session.add_all([CallRecord(**row) for row in rows])
        await session.flush()
        await rebuild_rollups(session, FIRST_DAY, FIRST_DAY + timedelta(days=4))
    return Calls(rows, accounts, trunks)


def context(services: Services, actor: Actor, channel: Channel = Channel.SHELL) -> Context:
    return replace(services.context(actor, channel), clock=lambda: NOW)


# --- a direct computation over the inserted rows -----------------------------------------------


@dataclass
class Expected:
    attempted: int = 0
    completed: int = 0
    duration: int = 0
    billable: int = 0
    longest: int = 0
    debit: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)


def expected(
    rows: list[Row],
    key: Callable[[Row], Any],
    keep: Callable[[Row], bool],
    view: View,
    own: int | None = None,
) -> dict[Any, Expected]:
    found: dict[Any, Expected] = defaultdict(Expected)
    for row in rows:
        if not keep(row):
            continue
        figures = found[key(row)]
        figures.attempted += 1
        figures.completed += row["billsec"] > 0
        figures.duration += row["billsec"]
        figures.billable += 0 if row["call_type"] == "FREE" else row["billsec"]
        figures.longest = max(figures.longest, row["billsec"])
        if view is View.CARRIER:
            figures.debit += row["carrier_debit"]
            figures.cost += row["carrier_cost"]
        else:
            figures.debit += row["debit"]
            mine = view is View.RESELLER and row["account_id"] == own
            figures.cost += row["debit"] if mine else row["cost"]
    return dict(found)


def same(got: reports.Figures, want: Expected, view: View) -> None:
    assert (got.attempted, got.completed, got.duration) == (
        want.attempted,
        want.completed,
        want.duration,
    )
    assert (got.billable, got.longest, got.debit) == (want.billable, want.longest, want.debit)
    if view is not View.CUSTOMER:
        assert got.cost == want.cost
    if want.attempted:
        ratio = Decimal(want.completed * 100) / want.attempted
        assert got.asr == ratio.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def local_day(row: Row) -> str:
    return str(row["started_at"].astimezone(AMSTERDAM).date())


def everything(row: Row) -> bool:
    return True


# --- summary -----------------------------------------------------------------------------------


async def test_staff_summary_by_account_matches_direct_computation(
    services: Services, world: World
) -> None:
    """Staff see every account with the carrier's figures, summed from the rollup."""
    calls = await seed_calls(services)
    table = await reports.summary_table(
        context(services, world.staff), SummaryRequest(NOVEMBER, "account")
    )
    names = {v: k for k, v in calls.accounts.items()}
    want = expected(calls.rows, lambda r: names[r["account_id"]], everything, View.CARRIER)
    got = {labels[0].split()[0]: figures for labels, figures in table.rows}
    assert set(got) == set(want) == {"1001", "1002", "R100", "2001"}
    for number, figures in got.items():
        same(figures, want[number], View.CARRIER)
    total = expected(calls.rows, lambda r: "all", everything, View.CARRIER)["all"]
    same(table.total, total, View.CARRIER)


async def test_reseller_summary_shows_its_customers_and_its_margin(
    services: Services, world: World
) -> None:
    """A reseller sees itself and its customers (not R200's), its own calls at no profit."""
    calls = await seed_calls(services)
    own = calls.accounts["R100"]
    mine = {calls.accounts[n] for n in ("R100", "1001", "1002")}
    table = await reports.summary_table(context(services, world.reseller), SummaryRequest(NOVEMBER))
    names = {v: k for k, v in calls.accounts.items()}
    want = expected(
        calls.rows,
        lambda r: names[r["account_id"]],
        lambda r: r["account_id"] in mine,
        View.RESELLER,
        own,
    )
    got = {labels[0].split()[0]: figures for labels, figures in table.rows}
    assert set(got) == {"R100", "1001", "1002"}
    for number, figures in got.items():
        same(figures, want[number], View.RESELLER)
    assert got["R100"].profit == 0 and got["1001"].profit == want["1001"].debit - want["1001"].cost


async def test_customer_summary_is_its_own_and_debit_only(services: Services, world: World) -> None:
    """A customer's summary covers its own calls, with Debit and no Cost or Profit columns."""
    calls = await seed_calls(services)
    ctx = context(services, world.customer)
    reply = await reports.summary(ctx, SummaryRequest(NOVEMBER, "day"))
    assert reply.table is not None
    assert reply.table.columns[-1] == "Debit" and "Cost" not in reply.table.columns
    table = await reports.summary_table(ctx, SummaryRequest(NOVEMBER, "day"))
    mine = calls.accounts["1001"]
    want = expected(calls.rows, local_day, lambda r: r["account_id"] == mine, View.CUSTOMER)
    assert {labels[0]: f for labels, f in table.rows}.keys() == want.keys()
    for labels, figures in table.rows:
        same(figures, want[labels[0]], View.CUSTOMER)


async def test_customer_asking_for_another_account_is_refused(
    services: Services, world: World
) -> None:
    """Account 2001 is not 1001's: the refusal says so, for every kind of report."""
    await seed_calls(services)
    ctx = context(services, world.customer)
    other = replace(NOVEMBER, account="2001")
    with pytest.raises(NotAllowed, match=r"own account \(1001\) only; account 2001"):
        await reports.summary(ctx, SummaryRequest(other))
    with pytest.raises(NotAllowed):
        await reports.cdr(ctx, CdrRequest(other))
    with pytest.raises(NotAllowed):
        await reportchart.chart(ctx, other)
    reseller = context(services, world.reseller)
    with pytest.raises(NotAllowed, match="not yours or one of your customers'"):
        await reports.summary(reseller, SummaryRequest(other))
    with pytest.raises(NotAllowed, match="account 9999 is not yours"):
        await reports.summary(ctx, SummaryRequest(replace(NOVEMBER, account="9999")))
    with pytest.raises(NotFound, match="no account 9999"):
        await reports.summary(
            context(services, world.staff), SummaryRequest(replace(NOVEMBER, account="9999"))
        )


@pytest.mark.parametrize("group", ["destination", "trunk", "direction", "hour", "sipuser"])
async def test_staff_groupings_match_direct_computation(
    services: Services, world: World, group: str
) -> None:
    """Each grouping sums to the same figures as the rows themselves, per group."""
    calls = await seed_calls(services)
    trunk_names = {v: k for k, v in calls.trunks.items()}
    keys: dict[str, Callable[[Row], Any]] = {
        "destination": lambda r: r["code"] or "(none)",
        "trunk": lambda r: trunk_names.get(r["trunk_id"], "(none)"),
        "direction": lambda r: r["direction"],
        "hour": lambda r: r["started_at"].astimezone(AMSTERDAM).strftime("%H:00"),
        "sipuser": lambda r: r["sip_user"],
    }
    table = await reports.summary_table(
        context(services, world.staff), SummaryRequest(NOVEMBER, group)
    )
    want = expected(calls.rows, keys[group], everything, View.CARRIER)
    got = {labels[0]: figures for labels, figures in table.rows}
    assert got.keys() == want.keys()
    for label, figures in got.items():
        same(figures, want[label], View.CARRIER)


async def test_filters_that_need_the_records_match_direct_computation(
    services: Services, world: World
) -> None:
    """Disposition and number prefix are read from the call records, direction from the rollup."""
    calls = await seed_calls(services)
    ctx = context(services, world.staff)
    busy = replace(NOVEMBER, disposition="17")
    table = await reports.summary_table(ctx, SummaryRequest(busy, "direction"))
    want = expected(
        calls.rows,
        lambda r: r["direction"],
        lambda r: r["hangup_cause"] == "USER_BUSY",
        View.CARRIER,
    )
    assert {labels[0] for labels, _ in table.rows} == set(want)
    for labels, figures in table.rows:
        same(figures, want[labels[0]], View.CARRIER)
    mobile = replace(NOVEMBER, prefix="316", direction="outbound")
    table = await reports.summary_table(ctx, SummaryRequest(mobile))
    total = expected(
        calls.rows,
        lambda r: 0,
        lambda r: r["called_number"].startswith("316") and r["direction"] == "outbound",
        View.CARRIER,
    )[0]
    same(table.total, total, View.CARRIER)


async def test_summary_export_is_csv_with_a_total_row(services: Services, world: World) -> None:
    """The CSV export parses back: one row per account, exact money, and the Total row."""
    calls = await seed_calls(services)
    reply = await reports.summary(
        context(services, world.staff), SummaryRequest(NOVEMBER, "account", export=True)
    )
    (file,) = reply.files
    assert file.content_type == "text/csv" and file.filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(file.data.decode())))
    assert [r["Account"] for r in rows][-1] == "Total" and len(rows) == 5
    body, total = rows[:-1], rows[-1]
    assert sum(Decimal(r["Debit"]) for r in body) == Decimal(total["Debit"])
    want = expected(calls.rows, lambda r: 0, everything, View.CARRIER)[0]
    assert Decimal(total["Debit"]) == want.debit and Decimal(total["Cost"]) == want.cost
    assert int(total["Attempted Calls"]) == len(calls.rows)
    assert Decimal(total["Profit"]) == want.debit - want.cost
    minutes, seconds = total["MCD"].split(":")
    assert int(minutes) * 60 + int(seconds) == want.longest


async def test_periods_are_local_days(services: Services, world: World) -> None:
    """A call at 23:30 UTC on 2 November is on 3 November in Amsterdam; so is `today` then."""
    calls = await seed_calls(services)
    ctx = context(services, world.staff)
    third = CallFilter(date_from="2026-11-03", date_to="2026-11-03")
    table = await reports.summary_table(ctx, SummaryRequest(third))
    want = [r for r in calls.rows if local_day(r) == "2026-11-03"]
    assert table.total.attempted == len(want)
    assert calls.rows[0] in want
    on_the_day = replace(ctx, clock=lambda: datetime(2026, 11, 3, 10, tzinfo=UTC))
    today = await reports.summary_table(on_the_day, SummaryRequest(CallFilter(period="today")))
    assert today.total.attempted == len(want)
    with pytest.raises(Invalid, match="before from"):
        await reports.summary(
            ctx, SummaryRequest(CallFilter(date_from="2026-11-05", date_to="2026-11-01"))
        )


async def test_trunk_grouping_is_for_staff(services: Services, world: World) -> None:
    """Trunks are the carrier's business: a reseller may not group by them."""
    await seed_calls(services)
    with pytest.raises(NotAllowed, match="trunk"):
        await reports.summary(context(services, world.reseller), SummaryRequest(NOVEMBER, "trunk"))


# --- the CDR list ------------------------------------------------------------------------------


async def test_cdr_pages_cover_every_call_once_newest_first(
    services: Services, world: World
) -> None:
    """Following the cursors shows each of the reseller's calls exactly once, newest first."""
    calls = await seed_calls(services)
    ctx = context(services, world.reseller)
    mine = {calls.accounts[n] for n in ("R100", "1001", "1002")}
    want = sorted(
        (r for r in calls.rows if r["account_id"] in mine),
        key=lambda r: r["started_at"],
        reverse=True,
    )
    seen: list[str] = []
    page: str | None = None
    pages = 0
    while True:
        reply = await reports.cdr(ctx, CdrRequest(NOVEMBER, page))
        assert isinstance(reply, reports.CdrPage) and reply.table is not None
        pages += 1
        assert f"page {pages}" in reply.title
        columns = reply.table.columns
        assert "Trunk" not in columns and "Cost" in columns
        seen += [row[columns.index("Called Number")] for row in reply.table.rows]
        if reply.next_page is None:
            break
        page = reply.next_page
    assert pages == -(-len(want) // reports.PAGE_SIZE)
    assert seen == [r["called_number"] for r in want]
    assert len(set(seen)) == len(seen)


async def test_cdr_row_shows_the_guide_columns(services: Services, world: World) -> None:
    """A staff row: local time, MM:SS, the disposition with its Q.850 code, the recording mark."""
    calls = await seed_calls(services)
    newest = max(calls.rows, key=lambda r: r["started_at"])
    ctx = context(services, world.staff)
    reply = await reports.cdr(ctx, CdrRequest(NOVEMBER))
    assert reply.table is not None
    assert reply.table.columns == reports.CDR_COLUMNS
    row = dict(zip(reply.table.columns, reply.table.rows[0], strict=True))
    local = newest["started_at"].astimezone(AMSTERDAM)
    assert row["Date"] == local.strftime("%Y-%m-%d %H:%M:%S")
    billsec = newest["billsec"]
    assert row["Duration"] == f"{billsec // 60:02d}:{billsec % 60:02d}"
    assert row["Disposition"] == f"{newest['hangup_cause']} [{newest['hangup_cause_q850']}]"
    assert row["Recording"] == ("yes" if newest["recording"] else "")
    assert row["Debit"] == str(newest["carrier_debit"].quantize(Decimal("0.0001"), ROUND_HALF_UP))


async def test_cdr_filters(services: Services, world: World) -> None:
    """Direction, call type, disposition and prefix narrow the list as they say."""
    calls = await seed_calls(services)
    ctx = context(services, world.staff)
    request = replace(NOVEMBER, direction="outbound", call_type="free")
    reply = await reports.cdr(ctx, CdrRequest(request, export=True))
    rows = list(csv.DictReader(io.StringIO(reply.files[0].data.decode())))[:-1]
    want = [r for r in calls.rows if r["direction"] == "outbound" and r["call_type"] == "FREE"]
    assert len(rows) == len(want) > 0
    assert {r["Call Type"] for r in rows} == {"FREE"}
    busy = await reports.cdr(ctx, CdrRequest(replace(NOVEMBER, disposition="USER_BUSY")))
    assert busy.table is not None
    assert {row[9] for row in busy.table.rows} == {"USER_BUSY [17]"}


async def test_cdr_export_has_every_call_and_a_grand_total(
    services: Services, world: World
) -> None:
    """The customer's CSV: all its calls, Debit only, and a total row that adds up."""
    calls = await seed_calls(services)
    reply = await reports.cdr(context(services, world.customer), CdrRequest(NOVEMBER, export=True))
    (file,) = reply.files
    rows = list(csv.DictReader(io.StringIO(file.data.decode())))
    mine = [r for r in calls.rows if r["account_id"] == calls.accounts["1001"]]
    body, total = rows[:-1], rows[-1]
    assert len(body) == len(mine) and total["Date"] == "Total"
    assert "Cost" not in rows[0] and "Trunk" not in rows[0]
    assert Decimal(total["Debit"]) == sum(r["debit"] for r in mine)
    assert sum(Decimal(r["Debit"]) for r in body) == Decimal(total["Debit"])
    assert {r["Account"] for r in body} == {"1001"}


async def test_cdr_csv_for_invoices(services: Services, world: World) -> None:
    """The invoices' call list: one account, a UTC period, with the grand total."""
    calls = await seed_calls(services)
    account = calls.accounts["1002"]
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    async with services.sessions() as session:
        data = await reports.cdr_csv(session, [account], start, end)
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    mine = [r for r in calls.rows if r["account_id"] == account]
    assert len(rows) == len(mine) + 1
    assert Decimal(rows[-1]["Debit"]) == sum(r["debit"] for r in mine)


async def test_cdr_csv_of_a_carrier_invoice_charges_the_carrier_price(
    services: Services, world: World
) -> None:
    """The carrier invoices R100 for its own and its customers' calls at `carrier_debit`: the
    CSV's Debit is that price (not what 1001 and 1002 pay R100), with no Cost or Trunk."""
    calls = await seed_calls(services)
    tree = [calls.accounts[n] for n in ("R100", "1001", "1002")]
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    async with services.sessions() as session:
        data = await reports.cdr_csv(session, tree, start, end, "UTC", View.CARRIER)
        customers = await reports.cdr_csv(session, tree, start, end, "UTC")
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    body, total = rows[:-1], rows[-1]
    ours = {r["uuid"]: r for r in calls.rows if r["account_id"] in tree}
    assert len(body) == len(ours) and total["Date"] == "Total"
    assert "Cost" not in rows[0] and "Trunk" not in rows[0]
    want = sum(r["carrier_debit"] for r in ours.values())
    assert Decimal(total["Debit"]) == want == sum(Decimal(r["Debit"]) for r in body)
    by_number = {r["called_number"]: r for r in ours.values()}
    for row in body:
        assert Decimal(row["Debit"]) == by_number[row["Called Number"]]["carrier_debit"]
    priced = list(csv.DictReader(io.StringIO(customers.decode())))[-1]
    assert Decimal(priced["Debit"]) == sum(r["debit"] for r in ours.values()) != want


async def test_bad_page_token_is_refused(services: Services, world: World) -> None:
    """A page token that is not ours gets a plain refusal."""
    with pytest.raises(Invalid, match="not a page"):
        await reports.cdr(context(services, world.staff), CdrRequest(NOVEMBER, "nonsense"))


# --- chart and recordings ----------------------------------------------------------------------


async def test_chart_is_a_png_with_a_day_per_bar(services: Services, world: World) -> None:
    """The chart opens as a PNG; its figures cover every day of the period."""
    calls = await seed_calls(services)
    ctx = context(services, world.staff)
    data = await reports.chart_data(ctx, NOVEMBER)
    assert data.bucket == "day" and len(data.labels) == 30
    assert sum(data.attempted) == len(calls.rows)
    assert sum(data.completed) == sum(1 for r in calls.rows if r["billsec"] > 0)
    reply = await reportchart.chart(ctx, NOVEMBER)
    (file,) = reply.files
    image = Image.open(io.BytesIO(file.data))
    assert image.format == "PNG" and image.size == (1100, 500)


async def test_recording_goes_to_those_allowed(
    services: Services, world: World, tmp_path: Path
) -> None:
    """The WAV of a 1001 call goes to 1001 and its reseller, not to another customer."""
    calls = await seed_calls(services)
    folder = services.settings.recordings_dir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    call = next(
        r for r in calls.rows if r["account_id"] == calls.accounts["1001"] and r["recording"]
    )
    (folder / call["recording"]).write_bytes(b"RIFF....WAVEfmt fake")
    for actor in (world.customer, world.reseller, world.staff):
        reply = await reports.recording(context(services, actor), call["uuid"])
        assert reply.files[0].filename == f"{call['uuid']}.wav"
        assert reply.files[0].data == b"RIFF....WAVEfmt fake"
    with pytest.raises(NotFound):
        await reports.recording(context(services, world.other), call["uuid"])
    silent = next(
        r for r in calls.rows if not r["recording"] and r["account_id"] == call["account_id"]
    )
    with pytest.raises(NotFound, match="no recording"):
        await reports.recording(context(services, world.customer), silent["uuid"])


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Any:
    from tests.conftest import test_settings

    return test_settings(database_url, C2_RECORDINGS_DIR=str(tmp_path / "recordings"))


async def test_local_days_and_hours_across_the_dst_change(services: Services, world: World) -> None:
    """Around 25 October 2026 (CEST to CET) calls fall in the local hour and day they had."""
    rng = random.Random(7)
    async with services.sessions.begin() as session:
        accounts = {a.number: a.id for a in await session.scalars(select(Account))}
        rows = [_call(rng, "1001", accounts, [0]) for _ in range(60)]
        for row in rows:
            row.update(direction="local", call_type="LOCAL", trunk_id=None)
            row["started_at"] = datetime(2026, 10, 24, 12, tzinfo=UTC) + timedelta(
                minutes=rng.randrange(3 * 24 * 60)
            )
        session.add_all([CallRecord(**row) for row in rows])
        await session.flush()
        await rebuild_rollups(
            session, datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 28, tzinfo=UTC)
        )
    ctx = context(services, world.customer)
    around = CallFilter(date_from="2026-10-24", date_to="2026-10-27")
    local = {
        "day": local_day,
        "hour": lambda r: r["started_at"].astimezone(AMSTERDAM).strftime("%H:00"),
    }
    for group, key in local.items():
        table = await reports.summary_table(ctx, SummaryRequest(around, group))
        want = expected(rows, key, everything, View.CUSTOMER)
        assert {labels[0]: f.attempted for labels, f in table.rows} == {
            k: v.attempted for k, v in want.items()
        }


# --- the rollups a summary reads -----------------------------------------------------------------

SPANS = {
    # zone: (from, to); none of these periods lies on UTC day boundaries except London's
    "Asia/Tokyo": ("2026-11-03", "2026-11-04"),  # 2 Nov 15:00 to 4 Nov 15:00 UTC
    "America/New_York": ("2026-10-31", "2026-11-03"),  # DST ends 1 Nov: 04:00 to 05:00 UTC
    "Europe/London": ("2026-11-02", "2026-11-04"),  # offset 0 in November: whole UTC days
    "Asia/Kolkata": ("2026-11-03", "2026-11-04"),  # +05:30: edges at half hours
}
SUMMARY_GROUPS = ("account", "direction", "day", "month", "hour")


def _local(fmt: str, zone: ZoneInfo) -> Callable[[Row], str]:
    return lambda r: r["started_at"].astimezone(zone).strftime(fmt)


@pytest.mark.parametrize("zone_name", list(SPANS))
@pytest.mark.parametrize("who", ["carrier", "reseller"])
async def test_daily_and_carrier_wide_rollups_equal_hours_and_calls(
    services: Services, world: World, zone_name: str, who: str
) -> None:
    """Whole UTC days from the daily rollup plus the edge hours from the hourly one (and the
    carrier-wide hourly rollup for staff's time series) give exactly the hourly rollup's
    figures, and those of the calls themselves, in zones whose days are not UTC days."""
    calls = await seed_calls(services, count=400, seed=11)
    zone = ZoneInfo(zone_name)
    first, last = SPANS[zone_name]
    request = CallFilter(date_from=first, date_to=last)
    period = reports.period_of(request, zone, NOW)
    if who == "carrier":
        scope = reports.Scope(View.CARRIER, None, None, zone, "")
        mine: set[int] = set(calls.accounts.values())
        own = None
    else:
        own = calls.accounts["R100"]
        mine = {calls.accounts[n] for n in ("R100", "1001", "1002")}
        scope = reports.Scope(View.RESELLER, frozenset(mine), own, zone, "")
    inside = [r for r in calls.rows if period.start <= r["started_at"] < period.end]
    keys: dict[str, Callable[[Row], Any]] = {
        "account": lambda r: r["account_id"],
        "direction": lambda r: r["direction"],
        "day": _local("%Y-%m-%d", zone),
        "month": _local("%Y-%m", zone),
        "hour": _local("%H:00", zone),
    }
    sources = {}
    async with services.sessions() as session:
        for group in SUMMARY_GROUPS:
            parts = reports._parts(scope, period, request, group)
            sources[group] = [
                "calls" if p.source.records else "daily" if p.source.days
                else "hourly" if p.source.account is not None else "total"
                for p in parts
            ]  # fmt: skip
            coarse = await reports.grouped_figures(session, scope, period, request, group)
            hourly = await reports.grouped_figures(
                session, scope, period, request, group, coarse=False
            )
            assert sorted(coarse) == sorted(hourly), group
            assert len(coarse) > 1 or group == "month"
            if zone_name == "Asia/Kolkata":
                continue  # the rollups keep whole UTC hours: half-hour edges are rounded
            want = expected(inside, keys[group], lambda r: r["account_id"] in mine, scope.view, own)
            got = {key[0]: figures for key, figures in coarse}
            assert got.keys() == want.keys(), group
            for key, figures in got.items():
                same(figures, want[key], scope.view)
    edges = ["daily"] if zone_name == "Europe/London" else ["daily", "hourly", "hourly"]
    assert sources["account"] == edges
    if who == "carrier":
        assert sources["direction"] == sources["day"] == sources["hour"] == ["total"]
    else:
        assert sources["direction"] == edges
        assert sources["day"] == (["daily"] if zone_name == "Europe/London" else ["hourly"])
        assert sources["hour"] == ["hourly"]
