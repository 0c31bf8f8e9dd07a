"""`c2bot rerate` after a rate change (records, balances and rollups corrected) and
`c2bot import cdr DIR` (mod_json_cdr's log-dir, idempotent), run as an operator runs them, on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from c2bot.bot.services import Services
from c2bot.storage.models import Account, CallRecord, CallRollup, OriginationRate
from c2bot.switch.cdr import CdrIntake
from tests.conftest import World
from tests.support.ratingworld import RatingWorld, add_rating_world
from tests.support.xmlcurl import recorded_posts
from tests.switch.test_cdr import START, as_json, call_document, records

DAY = 86400


def c2bot(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2_", "SLACK_"))}
    env.update(
        C2_DATABASE_URL=database_url,
        C2_CONFIG=str(cwd / "absent.toml"),
        C2_SECRET_KEY="test-secret-key",
        C2_LOG_LEVEL="WARNING",
    )
    return subprocess.run(
        [sys.executable, "-m", "c2bot.bot.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture
async def rates(services: Services, world: World) -> RatingWorld:
    async with services.sessions.begin() as session:
        return await add_rating_world(session)


async def balances(services: Services) -> dict[str, Decimal]:
    async with services.sessions() as session:
        rows = (await session.execute(select(Account.number, Account.balance))).all()
    return {number: balance for number, balance in rows}


async def set_rate(services: Services, group_id: int, code: str, per_minute: str) -> None:
    async with services.sessions.begin() as session:
        await session.execute(
            update(OriginationRate)
            .where(OriginationRate.rate_group_id == group_id, OriginationRate.code == code)
            .values(cost_per_minute=Decimal(per_minute))
        )


async def rollup_matches_calls(services: Services) -> None:
    """Every rollup figure equals the same figure summed straight from the calls."""
    async with services.sessions() as session:
        rolled = (
            await session.execute(
                select(
                    CallRollup.account_id,
                    func.sum(CallRollup.attempted),
                    func.sum(CallRollup.duration),
                    func.sum(CallRollup.debit),
                    func.sum(CallRollup.cost),
                ).group_by(CallRollup.account_id)
            )
        ).all()
        direct = (
            await session.execute(
                select(
                    CallRecord.account_id,
                    func.count(),
                    func.sum(CallRecord.billsec),
                    func.sum(CallRecord.debit),
                    func.sum(CallRecord.cost),
                ).group_by(CallRecord.account_id)
            )
        ).all()
    assert sorted(map(tuple, rolled)) == sorted(map(tuple, direct))


async def test_rerate_after_rate_change(
    services: Services, rates: RatingWorld, database_url: str, tmp_path: Path
) -> None:
    """1001's retail price for 31 goes 0.020 -> 0.035 and R100's buy price 0.010 -> 0.012:
    1001's three calls on 25 Nov (not the one on the 27th, not 1002's) get the new figures;
    1001 pays 3 x 0.015 more, R100 3 x 0.002; the rollups follow."""
    intake = CdrIntake(services.sessions, services.settings)
    calls = [
        call_document("r-1"),
        call_document("r-2", billsec=61),  # two 60 s blocks
        call_document("r-3", billsec=0),  # unanswered: nothing either way
        call_document("r-4", start=START + 2 * DAY),
        call_document("r-5", account="1002"),
    ]
    for document in calls:
        await intake.take(as_json(document))
    before = await balances(services)
    assert before["1001"] == Decimal("-0.08") and before["R100"] == Decimal("-0.05")
    await set_rate(services, rates.groups["r100-retail"], "31", "0.035")
    await set_rate(services, rates.groups["wholesale"], "31", "0.012")

    done = c2bot(
        database_url, tmp_path, "rerate", "--from", "2026-11-25", "--to", "2026-11-25",
        "--account", "1001",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "re-rated 3 call(s) from 2026-11-25 to 2026-11-25: 2 changed" in done.stdout
    assert "debit +0.045000, cost +0.006000" in done.stdout
    found = await records(services)
    assert found["r-1"].debit == Decimal("0.035") and found["r-1"].cost == Decimal("0.012")
    assert found["r-2"].debit == Decimal("0.07") and found["r-2"].cost == Decimal("0.024")
    assert found["r-3"].debit == 0
    assert found["r-4"].debit == Decimal("0.02") and found["r-5"].debit == Decimal("0.02")
    after = await balances(services)
    assert after["1001"] == before["1001"] - Decimal("0.045")
    assert after["R100"] == before["R100"] - Decimal("0.006")
    assert after["1002"] == before["1002"]
    await rollup_matches_calls(services)

    again = c2bot(database_url, tmp_path, "rerate", "--from", "2026-11-25", "--to", "2026-11-27")
    assert "re-rated 5 call(s)" in again.stdout and "2 changed" in again.stdout
    assert (await balances(services))["1002"] == before["1002"] - Decimal("0.015")
    await rollup_matches_calls(services)
    unknown = c2bot(database_url, tmp_path, "rerate", "--from", "2026-11-25", "--to", "2026-11-25",
                    "--account", "9999")  # fmt: skip
    assert unknown.returncode == 1 and "no account 9999" in unknown.stderr


async def test_import_cdr_dir(
    services: Services, rates: RatingWorld, database_url: str, tmp_path: Path
) -> None:
    """mod_json_cdr's log-dir: A legs taken, B legs skipped, a broken file named with its
    reason; a second run takes nothing again; the files stay."""
    folder = tmp_path / "json_cdr"
    folder.mkdir()
    (folder / "a_i-1.cdr.json").write_bytes(as_json(call_document("i-1")))
    (folder / "i-2.cdr.json").write_bytes(as_json(call_document("i-2", billsec=30)))
    posts = {post.label: post for post in recorded_posts("json_cdr_post.txt")}
    (folder / "b_8266b179.cdr.json").write_bytes(posts["answered-1"].body)
    (folder / "broken.cdr.json").write_text(json.dumps({"variables": {"uuid": "x"}}))
    (folder / "notes.txt").write_text("not a record")

    first = c2bot(database_url, tmp_path, "import", "cdr", str(folder))
    assert first.returncode == 1  # something was rejected
    assert "2 call(s) taken, 0 already had, 1 B leg(s) skipped, 1 rejected" in first.stdout
    assert "rejected broken.cdr.json: no start_epoch" in first.stderr
    second = c2bot(database_url, tmp_path, "import", "cdr", str(folder))
    assert "0 call(s) taken, 2 already had, 1 B leg(s) skipped, 1 rejected" in second.stdout
    assert set(await records(services)) == {"i-1", "i-2"}
    assert (await balances(services))["1001"] == Decimal("-0.04")
    assert len(list(folder.iterdir())) == 5
