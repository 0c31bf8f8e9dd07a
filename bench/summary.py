"""Summary reports and the CDR list over 1,000,000 call records, on SQLite and PostgreSQL.

The records come from `bench/callgen.py` (500 accounts with a skewed share of the calls, 90
days, 35% unanswered), kept between runs. Each figure is the whole handler as a staff member
calls it (`report summary ...`: permission, period, SQL, labels), warm, the median of RUNS:

- one month (November 2026) of all accounts, by account (the daily rollup for the whole UTC
  days, the hourly rollup for the Amsterdam month's edge hours);
- one month of the busiest account;
- the 90 days by day, all accounts (the carrier-wide hourly rollup folded into Amsterdam days);
- the 90 days by day of the busiest account (its hourly rollup: a UTC day is not an Amsterdam
  day, so a single account's days are folded from its hours);
- the CDR list's first page, and a page 10,000 calls deep by its keyset cursor;
- for reference, the month of all accounts summed straight from call_records (what a report
  costs without the rollup: ASTPP's way).

Goal: every summary under 90 ms (5x faster than ASTPP's 0.46 s) on both databases.
`python -m bench.summary --calls 10000000` for more records; `make bench` takes the count
from C2_BENCH_CALLS (default 1,000,000).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench import callgen

PG_DSN = os.environ.get("C2_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CACHE = Path("var/bench")
RUNS = 9
WARMUP = 2
GOAL_MS = 90.0
MONTH = {"date_from": "2026-11-01", "date_to": "2026-11-30"}
DEEP_ROWS = 10_000
ZONE = "Europe/Amsterdam"


async def _median_ms(work: Callable[[], Awaitable[Any]]) -> float:
    for _ in range(WARMUP):
        await work()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _measure(url: str, layout: callgen.Plan, count: int) -> dict[str, float]:
    from sqlalchemy import text

    from c2bot.bot.services import Services
    from c2bot.config.settings import load_settings
    from c2bot.handlers import reports
    from c2bot.handlers.context import SHELL_OPERATOR
    from c2bot.storage.db import create_engine
    from c2bot.storage.models import Channel

    settings = load_settings(C2_DATABASE_URL=url, C2_SECRET_KEY="bench")
    engine = create_engine(url)
    services = Services(settings=settings, engine=engine)
    ctx = services.context(SHELL_OPERATOR, Channel.SHELL)
    month = reports.CallFilter(**MONTH)
    busy = reports.CallFilter(**MONTH, account=layout.busiest)
    ninety = reports.CallFilter(date_from="2026-09-02", date_to="2026-11-30")
    busy_ninety = reports.CallFilter(
        date_from="2026-09-02", date_to="2026-11-30", account=layout.busiest
    )
    try:
        found = {
            "month, all accounts": await _median_ms(
                lambda: reports.summary_table(ctx, reports.SummaryRequest(month, "account"))
            ),
            f"month, busiest account ({layout.busiest})": await _median_ms(
                lambda: reports.summary_table(ctx, reports.SummaryRequest(busy, "account"))
            ),
            "90 days by day": await _median_ms(
                lambda: reports.summary_table(ctx, reports.SummaryRequest(ninety, "day"))
            ),
            "90 days by day, busiest account": await _median_ms(
                lambda: reports.summary_table(ctx, reports.SummaryRequest(busy_ninety, "day"))
            ),
            "CDR first page": await _median_ms(lambda: reports.cdr(ctx, reports.CdrRequest(month))),
        }
        rows = min(DEEP_ROWS, count // 10)
        deep = await _deep_cursor(services, reports, rows)
        found[f"CDR page {rows:,} calls deep"] = await _median_ms(
            lambda: reports.cdr(ctx, reports.CdrRequest(month, deep))
        )

        async def straight() -> None:
            async with services.sessions() as session:
                await session.execute(text(_STRAIGHT))

        found["without the rollup (month, all, from call_records)"] = await _median_ms(straight)
        return found
    finally:
        await engine.dispose()


_STRAIGHT = """
SELECT account_id, count(*), sum(CASE WHEN billsec > 0 THEN 1 ELSE 0 END), sum(billsec),
       max(billsec), sum(carrier_debit), sum(carrier_cost)
FROM call_records
WHERE started_at >= '2026-10-31 23:00:00.000000' AND started_at < '2026-11-30 23:00:00.000000'
GROUP BY account_id
"""


async def _deep_cursor(services: Any, reports: Any, rows: int) -> str:
    """The cursor of the page that starts `rows` calls into the month (found once by OFFSET,
    only to set the benchmark up)."""
    from sqlalchemy import select

    from c2bot.storage.models import CallRecord

    period = reports.period_of(reports.CallFilter(**MONTH), ZoneInfo(ZONE), callgen.END)
    async with services.sessions() as session:
        row = (
            await session.execute(
                select(CallRecord.started_at, CallRecord.id)
                .where(CallRecord.started_at >= period.start, CallRecord.started_at < period.end)
                .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
                .offset(rows)
                .limit(1)
            )
        ).one()
    return str(reports.Cursor(rows // reports.PAGE_SIZE, row.started_at, row.id).token())


def _lines(label: str, count: int, made: float | None, found: dict[str, float]) -> list[str]:
    how = "kept from an earlier run" if made is None else f"made in {made:.0f} s"
    lines = [f"reports over {count:,} call records ({label}, {how}):"]
    for name, ms in found.items():
        goal = (
            ""
            if "without" in name or "CDR" in name
            else (" (goal met)" if ms < GOAL_MS else f" (over the {GOAL_MS:.0f} ms goal)")
        )
        lines.append(f"    {name}: {ms:.1f} ms{goal}")
    return lines


async def run(count: int) -> list[str]:
    lines = [f"summary reports: warm, median of {RUNS}; goal under {GOAL_MS:.0f} ms"]
    url, layout, made = await callgen.sqlite_database(count, CACHE)
    lines += _lines("SQLite", count, made, await _measure(url, layout, count))
    pg = await callgen.postgres_database(count, PG_DSN)
    if pg is None:
        lines.append(f"reports (PostgreSQL): skipped, no server at {PG_DSN}")
        return lines
    url, layout, made = pg
    lines += _lines("PostgreSQL", count, made, await _measure(url, layout, count))
    return lines


async def main() -> list[str]:
    return await run(int(os.environ.get("C2_BENCH_CALLS", "1000000")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="call records to generate")
    for line in asyncio.run(run(parser.parse_args().calls)):
        print(line)
