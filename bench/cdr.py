"""Call-record intake as FreeSWITCH posts it, with rating, on SQLite and PostgreSQL.

c2bot runs as an operator runs it (`c2bot serve --only http`) in a process of its own, with
50 000 prefixes loaded in each rate group that prices a call (the carrier's wholesale group and
a reseller's retail group) and in each of two trunks' termination rates (200 000 rates), 200
customers of 10 resellers. A load process posts A-leg records (the recorded tone call's A leg,
made an outbound call of a customer to a random number, mod_json_cdr's default encoding) over a
new connection each, as mod_json_cdr does, from 50 concurrent connections, as fast as answers
come back. Every record is parsed, rated at every level (customer, reseller, carrier), stored,
added to the rollup and charged to two balances before its 200.

Figures: records a second; the server's CPU time per record (from /proc); and the same stack
(uvicorn and Starlette) answering an endpoint that only reads the body and says 200, in the
same run: the difference is what c2bot's intake costs per record.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from bench.dialplan import (
    BARE,
    _cpu_seconds,
    on_each_database,
    post_once,
    run_against_server,
    serve_bare,
    serve_seeded,
)

CONCURRENCY = 50
SECONDS = 6.0
BARE_SECONDS = 3.0
WARMUP_SECONDS = 1.0
PREFIXES = 50_000
RESELLERS = 10
CUSTOMERS = 200


def _codes() -> list[str]:
    """50 000 distinct prefixes of 2 to 6 digits under a few country codes."""
    codes: list[str] = ["31", "32", "33", "44", "49"]
    for country in ("31", "32", "33", "44", "49"):
        codes += [f"{country}{n}" for n in range(10, 100)]
        codes += [f"{country}{n}" for n in range(100, 1000)]
    rest = PREFIXES - len(codes)
    codes += [f"31{n:04d}" for n in range(rest)]
    return codes[:PREFIXES]


async def _seed(sessions: Any) -> None:
    from decimal import Decimal

    from sqlalchemy import insert

    from c2bot.storage.models import (
        Account,
        OriginationRate,
        RateGroup,
        RateGroupTrunk,
        TerminationRate,
        Trunk,
    )

    codes = _codes()
    async with sessions.begin() as session:
        wholesale = RateGroup(name="wholesale", initial_increment=1, increment=1)
        session.add(wholesale)
        await session.flush()
        resellers = []
        for n in range(RESELLERS):
            reseller = Account(number=f"R{n}", company=f"Reseller {n}", email=f"r{n}@bench.nl")
            reseller.rate_group_id = wholesale.id
            session.add(reseller)
            resellers.append(reseller)
        await session.flush()
        retail = RateGroup(name="retail", account_id=resellers[0].id, markup=Decimal(10))
        session.add(retail)
        await session.flush()
        for n in range(CUSTOMERS):
            session.add(
                Account(
                    number=f"{1000 + n}",
                    company=f"Customer {n}",
                    email=f"c{n}@bench.nl",
                    reseller_id=resellers[n % RESELLERS].id,
                    rate_group_id=retail.id,
                )
            )
        trunks = [Trunk(name=f"t{n}", gateway=f"gw-{n}") for n in range(2)]
        session.add_all(trunks)
        await session.flush()
        for trunk in trunks:
            session.add(RateGroupTrunk(rate_group_id=wholesale.id, trunk_id=trunk.id))
        for group, price in ((wholesale.id, "0.010"), (retail.id, "0.020")):
            await session.execute(
                insert(OriginationRate.__table__),  # type: ignore[arg-type]
                [
                    {
                        "rate_group_id": group,
                        "code": code,
                        "destination": f"Zone {code}",
                        "cost_per_minute": Decimal(price) + Decimal(len(code)) / 1000,
                        "initial_increment": 30,
                        "increment": 6,
                    }
                    for code in codes
                ],
            )
        for trunk, price in zip(trunks, ("0.004", "0.005"), strict=True):
            await session.execute(
                insert(TerminationRate.__table__),  # type: ignore[arg-type]
                [
                    {"trunk_id": trunk.id, "code": code, "cost_per_minute": Decimal(price)}
                    for code in codes
                ],
            )


def _server_main(database_url: str, port: int, ready: Any, folder: str) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    if database_url == BARE:
        asyncio.run(serve_bare(port, ready, "/freeswitch/cdr", b"", "text/plain"))
    else:
        asyncio.run(serve_seeded(database_url, port, ready, folder, _seed))


PLACEHOLDER = b"bench-000000000000000000"


def _bodies(rng: random.Random, count: int = 500) -> list[bytes]:
    """Distinct calls (customer, number, length, trunk), each with a uuid to fill in."""
    from tests.switch.test_cdr import as_json, call_document

    codes = _codes()
    bodies = []
    for _ in range(count):
        number = rng.choice(codes) + "".join(rng.choice("0123456789") for _ in range(5))
        document = call_document(
            PLACEHOLDER.decode(),
            account=f"{1000 + rng.randrange(CUSTOMERS)}",
            number=number,
            billsec=rng.choice((0, 0, 12, 47, 75, 300)),
            gateways=(f"gw-{rng.randrange(2)}",),
        )
        bodies.append(as_json(document))
    return bodies


def _posts(port: int, bodies: list[bytes], first: int) -> Iterator[bytes]:
    """Endless posts as mod_json_cdr sends them, each a new call (a uuid of its own)."""
    n = first
    while True:
        uuid = f"bench-{n:018d}".encode()
        body = bodies[n % len(bodies)].replace(PLACEHOLDER, uuid)
        head = (
            f"POST /freeswitch/cdr?uuid={uuid.decode()} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "User-Agent: freeswitch-json/1.0\r\n"
            "Accept: */*\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        yield head.encode() + body
        n += 1


async def _send(port: int, request: bytes) -> None:
    await post_once(port, request, "post")


async def _saturated(port: int, cursor: Iterator[bytes], seconds: float) -> int:
    """Posts answered; each connection posts its next record as soon as it has an answer."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        for request in cursor:
            if time.perf_counter() >= deadline:
                return
            await _send(port, request)
            done += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done


def _load_main(port: int, server_pid: int, seconds: float, results: Any) -> None:
    async def run() -> dict[str, Any]:
        posts = _posts(port, _bodies(random.Random(5)), 0)
        warm = await _saturated(port, posts, WARMUP_SECONDS)
        cpu_before = _cpu_seconds(server_pid)
        started = time.perf_counter()
        done = await _saturated(port, posts, seconds)
        elapsed = time.perf_counter() - started
        cpu_after = _cpu_seconds(server_pid)
        cpu = None
        if cpu_before is not None and cpu_after is not None and done:
            cpu = sum(cpu_after) - sum(cpu_before)
            cpu /= done
        return {"rate": done / elapsed, "cpu": cpu, "posted": warm + done}

    results.put(asyncio.run(run()))


def _measure(database_url: str, folder: str, seconds: float) -> dict[str, Any]:
    return run_against_server(_server_main, database_url, folder, _load_main, seconds)


async def _stored(database_url: str) -> int:
    from sqlalchemy import func, select

    from c2bot.storage.db import create_engine
    from c2bot.storage.models import CallRecord

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(CallRecord)) or 0)
    finally:
        await engine.dispose()


async def _figures(label: str, database_url: str, folder: str, floor: dict[str, Any]) -> str:
    found = await asyncio.to_thread(_measure, database_url, folder, SECONDS)
    stored = await _stored(database_url)
    if stored != found["posted"]:
        raise RuntimeError(f"{label}: {found['posted']} posts answered, {stored} stored")
    extra = (1 / found["rate"] - 1 / floor["rate"]) * 1000
    cpu = "CPU unknown"
    if found["cpu"] is not None and floor["cpu"] is not None:
        cpu = (
            f"server CPU {found['cpu'] * 1000:.2f} ms per record "
            f"({(found['cpu'] - floor['cpu']) * 1000:.2f} ms more than the floor)"
        )
    return (
        f"CDR intake with rating ({label}): {found['rate']:.0f} records/s over "
        f"{CONCURRENCY} connections, {extra:.2f} ms per record more than the floor; {cpu}; "
        f"{stored} records stored, each answered only once committed"
    )


async def main() -> list[str]:
    lines = [
        f"CDR intake: goal at least 2 000 records/s on one process with {PREFIXES} prefixes "
        "per rate group and trunk"
    ]
    with tempfile.TemporaryDirectory() as folder:
        floor = await asyncio.to_thread(_measure, BARE, folder, BARE_SECONDS)
    cpu = "" if floor["cpu"] is None else f", server CPU {floor['cpu'] * 1000:.2f} ms per post"
    lines.append(
        f"CDR intake (bare Starlette floor, answers 200): {floor['rate']:.0f} posts/s{cpu}"
    )

    async def figures(label: str, url: str, folder: str) -> str:
        return await _figures(label, url, folder, floor)

    return lines + await on_each_database("CDR intake", figures)


if __name__ == "__main__":
    for line in asyncio.run(main()):
        print(line)
