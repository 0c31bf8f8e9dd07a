"""Outbound dialplan answers as FreeSWITCH asks for them, on SQLite and PostgreSQL.

c2bot runs as an operator runs it (`c2bot serve --only http`) in a process of its own, with
50 000 prefixes in each of two rate groups (the carrier's `wholesale`, a reseller's `retail`)
and 20 trunks of `wholesale`, each with termination rates for the country codes and a share
of the prefixes (every prefix on 2 trunks: 100 000 termination rates), half of them with a
channel limit: every number has 20 routes, the best 5 are bridged. 300 accounts call out from
a device each: 200 customers of 10 resellers (two origination lookups, two balances) and 100
direct postpaid accounts, with channel and CPS limits. A load process posts the recorded
mod_xml_curl request (tests/fixtures/freeswitch/xml_curl_dialplan.txt), with a device's
context and a number under a random prefix swapped in, over a new connection each time (as
mod_xml_curl does), from 50 concurrent connections, as bench.dialplan does:
- paced: PACED_RATE calls a second offered (200: a busy platform's CPS; each connection 4 a
  second, staggered), latency counted from when the call was due: p50 and p99 (the goal: p99
  under 15 ms). bench.dialplan's pacing, at this rate (its 500/s is more than one process
  answers on a 2-core machine even for inbound lookups, see the README);
- saturated: each connection posts again as soon as it has its answer: answers a second, and
  the server process's CPU time per answer (from /proc).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any
from urllib.parse import quote

from bench import dialplan as paced_by
from bench.cdr import PREFIXES, _codes
from bench.dialplan import (
    CONCURRENCY,
    _cpu_seconds,
    _paced,
    _percentile,
    _saturated,
)

TRUNKS = 20
TRUNKS_PER_PREFIX = 2
RESELLERS = 10
CUSTOMERS = 200
DIRECT = 100
PACED_RATE = 200
PACED_SECONDS = 6.0
SECONDS = 3.0
WARMUP_SECONDS = 1.5
GOAL_P99_MS = 15.0


def _accounts() -> list[str]:
    return [f"{1000 + n}" for n in range(CUSTOMERS)] + [f"{3000 + n}" for n in range(DIRECT)]


async def _seed(sessions: Any) -> None:
    from decimal import Decimal

    from sqlalchemy import insert

    from c2bot.storage.models import (
        Account,
        OriginationRate,
        RateGroup,
        RateGroupTrunk,
        SipDevice,
        TerminationRate,
        Trunk,
    )

    codes = _codes()
    countries = sorted({code[:2] for code in codes})
    async with sessions.begin() as session:
        wholesale = RateGroup(name="wholesale", initial_increment=1, increment=1)
        session.add(wholesale)
        await session.flush()
        resellers = [
            Account(
                number=f"R{n}",
                company=f"Reseller {n}",
                email=f"r{n}@bench.nl",
                rate_group_id=wholesale.id,
                balance=Decimal(10_000),
                max_channels=500,
            )
            for n in range(RESELLERS)
        ]
        session.add_all(resellers)
        await session.flush()
        retail = RateGroup(name="retail", account_id=resellers[0].id, markup=Decimal(10))
        session.add(retail)
        await session.flush()
        accounts = [
            Account(
                number=number,
                company=f"Customer {number}",
                email=f"c{number}@bench.nl",
                reseller_id=resellers[n % RESELLERS].id if n < CUSTOMERS else None,
                rate_group_id=retail.id if n < CUSTOMERS else wholesale.id,
                billing="prepaid" if n < CUSTOMERS else "postpaid",
                balance=Decimal(50) if n < CUSTOMERS else Decimal(0),
                credit_limit=Decimal(0) if n < CUSTOMERS else Decimal(100),
                max_channels=10,
                cps=5,
                number_translation='"00/","0/31"',
                out_callerid_translation='"+31/0"',
            )
            for n, number in enumerate(_accounts())
        ]
        session.add_all(accounts)
        await session.flush()
        session.add_all(
            [
                SipDevice(
                    account_id=account.id,
                    username=f"{account.number}-100",
                    extension="100",
                    password_sealed="x",
                    caller_number=f"+3120{account.number}00",
                )
                for account in accounts
            ]
        )
        trunks = [
            Trunk(
                name=f"t{n:02d}",
                gateway=f"gw-{n:02d}",
                failover_gateways=f"gw-{n:02d}b" if n % 3 == 0 else "",
                max_channels=100 if n % 2 == 0 else 0,
                precedence=n,
            )
            for n in range(TRUNKS)
        ]
        session.add_all(trunks)
        await session.flush()
        session.add_all(
            [RateGroupTrunk(rate_group_id=wholesale.id, trunk_id=trunk.id) for trunk in trunks]
        )
        for group, price in ((wholesale.id, "0.010"), (retail.id, "0.020")):
            await session.execute(
                insert(OriginationRate),
                [
                    {
                        "rate_group_id": group,
                        "code": code,
                        "destination": f"Zone {code}",
                        "connection_cost": Decimal("0.01"),
                        "cost_per_minute": Decimal(price) + Decimal(len(code)) / 1000,
                        "initial_increment": 30,
                        "increment": 6,
                    }
                    for code in codes
                ],
            )
        rows: list[dict[str, Any]] = []
        for t, trunk in enumerate(trunks):
            cost = Decimal("0.002") + Decimal(t) / 10_000
            rows += [
                {"trunk_id": trunk.id, "code": code, "cost_per_minute": cost + Decimal("0.001")}
                for code in countries
            ]
            rows += [
                {"trunk_id": trunk.id, "code": code, "cost_per_minute": cost}
                for k, code in enumerate(codes)
                if code not in countries and (k - t) % TRUNKS < TRUNKS_PER_PREFIX
            ]
        await session.execute(insert(TerminationRate), rows)


def _server_main(database_url: str, port: int, ready: Any, folder: str) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(paced_by.serve_seeded(database_url, port, ready, folder, _seed))


def _requests(port: int, count: int = 3000) -> list[bytes]:
    """The recorded post as devices' calls out: a device's context, a number under a random
    prefix (national, international or E.164, as phones dial)."""
    from tests.support.xmlcurl import recorded_posts

    post = recorded_posts("xml_curl_dialplan.txt")[1]
    rng = random.Random(5)
    codes = _codes()
    accounts = _accounts()
    out = []
    for n in range(count):
        account = accounts[n % len(accounts)]
        code = rng.choice(codes)
        digits = code + "".join(rng.choice("0123456789") for _ in range(11 - len(code)))
        if digits.startswith("31") and n % 3 == 0:
            number = "0" + digits[2:]
        else:
            number = ("00" if n % 3 == 1 else "+") + digits
        device = b"&variable_c2_device=" + quote(f"{account}-100", safe="").encode()
        out.append(paced_by.dialplan_request(port, post.calling(number, f"c2-{account}", device)))
    return out


async def _check(port: int, requests: list[bytes]) -> None:
    """The answers are whole outbound plans (limits, trunks), not refusals or "not found"."""
    from tests.support.xmlcurl import replay

    for request in requests[:20]:
        answer = (await replay(port, request)).body
        for needed in (b"c2_direction=outbound", b"limit_execute", b"sched_hangup +"):
            if needed not in answer:
                raise RuntimeError(f"not a whole outbound plan ({needed!r}): {answer[:600]!r}")


def _load_main(port: int, server_pid: int, results: Any) -> None:
    # bench.dialplan's pacing reads its module's rate and length: ours, in this process only
    paced_by.PACED_RATE, paced_by.PACED_SECONDS = PACED_RATE, PACED_SECONDS

    async def run() -> dict[str, Any]:
        requests = _requests(port)
        await _check(port, requests)
        await _saturated(port, requests, WARMUP_SECONDS)
        paced = await _paced(port, requests)
        cpu_before = _cpu_seconds(server_pid)
        rate, samples = await _saturated(port, requests, SECONDS)
        cpu_after = _cpu_seconds(server_pid)
        cpu = None
        if cpu_before is not None and cpu_after is not None:
            cpu = (sum(cpu_after) - sum(cpu_before)) / len(samples)
        return {"paced": paced, "rate": rate, "saturated": samples, "cpu": cpu}

    results.put(asyncio.run(run()))


def _measure(database_url: str, folder: str) -> dict[str, Any]:
    return paced_by.run_against_server(_server_main, database_url, folder, _load_main)


async def _answer_cpu(database_url: str, folder: str) -> float:
    """The plan alone per call out, without HTTP."""
    from datetime import UTC, datetime

    return await paced_by.answer_cpu(database_url, folder, _requests(0), datetime.now(UTC), 300, 1)


async def _figures(label: str, database_url: str, folder: str) -> str:
    found = await asyncio.to_thread(_measure, database_url, folder)
    alone = await _answer_cpu(database_url, folder)
    return f"{_line(label, found)}; the plan alone: {alone * 1000:.2f} ms CPU per answer"


def _line(label: str, found: dict[str, Any]) -> str:
    paced, saturated = found["paced"], found["saturated"]
    p99 = _percentile(paced, 0.99)
    cpu = ""
    if found["cpu"] is not None:
        cpu = f", server CPU {found['cpu'] * 1000:.2f} ms per answer"
    verdict = "meets" if p99 < GOAL_P99_MS else "MISSES"
    return (
        f"outbound dialplan ({label}, {PREFIXES} prefixes x 2 groups, {TRUNKS} trunks): "
        f"paced {PACED_RATE}/s over {CONCURRENCY} connections: p50 {_percentile(paced, 0.5):.1f}"
        f" ms, p99 {p99:.1f} ms ({verdict} the {GOAL_P99_MS:.0f} ms goal; {len(paced)} calls); "
        f"saturated: {found['rate']} answers/s, p50 {_percentile(saturated, 0.5):.1f} ms, "
        f"p99 {_percentile(saturated, 0.99):.1f} ms{cpu}; setup {found['seeded']:.0f} s"
    )


async def main() -> list[str]:
    lines = [f"outbound dialplan: goal p99 under {GOAL_P99_MS:.0f} ms at {CONCURRENCY} concurrent"]
    return lines + await paced_by.on_each_database("outbound dialplan", _figures)


if __name__ == "__main__":
    for line in asyncio.run(main()):
        print(line)
