"""Dialplan lookups as FreeSWITCH makes them, on SQLite and PostgreSQL.

c2bot runs as an operator runs it (`c2bot serve --only http`) in a process of its own, with
200 accounts' phone systems in its database (1,000 DIDs forwarded to devices, ring groups,
IVRs, time conditions and the PSTN). A load process posts the recorded mod_xml_curl request
(tests/fixtures/freeswitch/xml_curl_dialplan.txt), the number swapped for one of those DIDs,
over a new connection each time, as mod_xml_curl does (one curl handle per lookup).

Three figures per database (and for the floor: the same server stack, uvicorn and Starlette,
answering with a document it has), from 50 concurrent connections:
- paced: 500 lookups a second offered (each connection 10 a second, staggered), latency
  counted from when the lookup was due, so a server falling behind shows as latency;
- saturated: each connection posts again as soon as it has its answer; lookups a second;
- the server process's own CPU time per lookup while saturated (from /proc): what one core can
  do whatever else the machine is busy with (the load process and the database share it);
  and, per database, the CPU time of `dialplan.answer` alone, without HTTP.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CONCURRENCY = 50
PACED_RATE = 500  # lookups a second, over all connections
PACED_SECONDS = 10.0
SATURATED_SECONDS = 5.0
WARMUP_SECONDS = 2.0
ACCOUNTS = 200
PG_DSN = os.environ.get("C2_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
FORWARDS = ("local", "ringgroup", "ivr", "timecondition", "pstn")
BARE = "bare"


def did_of(account: int, kind: int) -> str:
    return f"+3120{account:04d}{kind:03d}"


async def _seed(sessions: Any) -> None:
    """Each account: 4 devices, ring group sales, IVR main, time condition office and one DID
    per forwarding in FORWARDS."""
    from c2bot.storage.models import (
        Account,
        Did,
        Ivr,
        IvrOption,
        RingGroup,
        RingGroupMember,
        SipDevice,
        TimeCondition,
        TimeConditionRow,
    )

    async with sessions.begin() as session:
        for n in range(ACCOUNTS):
            number = f"{5000 + n}"
            account = Account(number=number, company=f"Bench {n} BV", email=f"b{n}@bench.nl")
            session.add(account)
            await session.flush()
            users = [f"{number}-{ext}" for ext in (100, 101, 102, 103)]
            session.add_all(
                [
                    SipDevice(
                        account_id=account.id,
                        username=user,
                        extension=user[-3:],
                        password_sealed="x",
                        voicemail=user.endswith("100"),
                    )
                    for user in users
                ]
            )
            session.add_all(
                [
                    RingGroup(
                        account_id=account.id,
                        name="sales",
                        ringback="nl-ring",
                        cid_name_prefix="Sales ",
                        noanswer_type="voicemail",
                        noanswer_value=users[0],
                        members=[
                            RingGroupMember(position=i, target=user, delay=i * 2, timeout=20)
                            for i, user in enumerate(users[1:])
                        ],
                    ),
                    Ivr(
                        account_id=account.id,
                        name="main",
                        failover_type="ringgroup",
                        failover_value="sales",
                        options=[IvrOption(digit="1", dest_type="local", dest_value=users[1])],
                    ),
                    TimeCondition(
                        account_id=account.id,
                        name="office",
                        failover_type="voicemail",
                        failover_value=users[0],
                        rows=[
                            TimeConditionRow(
                                priority=10,
                                start_time="09:00",
                                end_time="17:00",
                                weekdays="mon-fri",
                                dest_type="ivr",
                                dest_value="main",
                            ),
                            TimeConditionRow(
                                kind="holiday",
                                holiday_country="NL",
                                priority=1,
                                dest_type="hangup",
                                dest_value="",
                            ),
                        ],
                    ),
                ]
            )
            values = {
                "local": ",".join(users[:2]),
                "ringgroup": "sales",
                "ivr": "main",
                "timecondition": "office",
                "pstn": "+31612345678",
            }
            session.add_all(
                [
                    Did(
                        number=did_of(n, k),
                        account_id=account.id,
                        forward_type=kind,
                        destination=values[kind],
                    )
                    for k, kind in enumerate(FORWARDS)
                ]
            )


async def _serve(database_url: str, port: int, ready: Any, folder: str) -> None:
    await serve_seeded(database_url, port, ready, folder, _seed)


async def serve_seeded(
    database_url: str,
    port: int,
    ready: Any,
    folder: str,
    seed: Callable[[Any], Awaitable[None]],
) -> None:
    """`c2bot serve --only http` on `port`, its database seeded by `seed`; `ready` once seeded."""
    from c2bot.bot.runtime import Runtime
    from c2bot.config.settings import load_settings

    settings = load_settings(
        C2_DATABASE_URL=database_url,
        C2_HTTP_PORT=port,
        C2_SECRET_KEY="bench",
        C2_RECORDINGS_DIR=str(Path(folder) / "recordings"),
        C2_FAX_SPOOL=str(Path(folder) / "fax"),
    )
    runtime = Runtime(settings, ("http",))
    await runtime.start()
    assert runtime.services is not None
    await seed(runtime.services.sessions)
    ready.set()
    await runtime.stopping.wait()


async def _serve_bare(port: int, ready: Any) -> None:
    """The floor: the same server stack answering every lookup with a document it has."""
    document = (
        b'<document type="freeswitch/xml"><section name="dialplan"><context name="public"/>'
        b"</section></document>"
    )
    await serve_bare(port, ready, "/freeswitch/dialplan", document, "text/xml")


async def serve_bare(port: int, ready: Any, path: str, answer: bytes, content_type: str) -> None:
    """uvicorn + Starlette reading each POST to `path` and answering `answer`: the floor any
    endpoint of ours is measured against."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        await request.body()
        return Response(answer, headers={"content-type": content_type})

    app = Starlette(routes=[Route(path, endpoint, methods=["POST"])])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="error", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no started event)
        await asyncio.sleep(0.01)
    ready.set()
    await task


def _server_main(database_url: str, port: int, ready: Any, folder: str) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    if database_url == BARE:
        asyncio.run(_serve_bare(port, ready))
    else:
        asyncio.run(_serve(database_url, port, ready, folder))


def _requests(port: int) -> list[bytes]:
    """The recorded post, one per DID, in a mixed order."""
    from tests.support.xmlcurl import recorded_posts

    post = recorded_posts("xml_curl_dialplan.txt")[1]
    out = []
    for kind in range(len(FORWARDS)):
        for account in range(ACCOUNTS):
            out.append(dialplan_request(port, post.calling(did_of(account, kind), "public")))
    order = list(range(len(out)))
    order.sort(key=lambda i: (i * 7919) % len(out))
    return [out[i] for i in order]


def dialplan_request(port: int, body: bytes) -> bytes:
    """A dialplan lookup as mod_xml_curl posts it: its headers, then `body`."""
    head = (
        "POST /freeswitch/dialplan HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "User-Agent: freeswitch-xml/1.0\r\n"
        "Accept: */*\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
    )
    return head.encode() + body


async def post_once(port: int, request: bytes, what: str = "lookup") -> bytes:
    """One raw HTTP request on a new connection (as mod_xml_curl and mod_json_cdr make them);
    the body of its 200 answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{what} failed: {head[:60]!r}")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return await reader.readexactly(length)
    finally:
        writer.close()


async def _lookup(port: int, request: bytes) -> None:
    """One lookup on a new connection, as mod_xml_curl makes it."""
    body = await post_once(port, request)
    if b'<section name="dialplan">' not in body:
        raise RuntimeError(f"not a dialplan: {body[:200]!r}")


async def _saturated(port: int, requests: list[bytes], seconds: float) -> tuple[int, list[float]]:
    samples: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        n = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await _lookup(port, requests[n % len(requests)])
            samples.append(time.perf_counter() - started)
            n += CONCURRENCY

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    return int(len(samples) / (time.perf_counter() - started)), samples


async def _paced(port: int, requests: list[bytes]) -> list[float]:
    samples: list[float] = []
    interval = CONCURRENCY / PACED_RATE
    start = time.perf_counter() + 0.1

    async def worker(offset: int) -> None:
        due = start + offset * interval / CONCURRENCY
        n = offset
        while due < start + PACED_SECONDS:
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            await _lookup(port, requests[n % len(requests)])
            samples.append(time.perf_counter() - due)  # from when it was due
            due += interval
            n += CONCURRENCY

    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    return samples


def _cpu_seconds(pid: int) -> tuple[float, float] | None:
    """User and system CPU time of a process so far (Linux), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _load_main(port: int, server_pid: int, results: Any) -> None:
    async def run() -> dict[str, Any]:
        requests = _requests(port)
        await _saturated(port, requests, WARMUP_SECONDS)
        paced = await _paced(port, requests)
        cpu_before = _cpu_seconds(server_pid)
        rate, saturated = await _saturated(port, requests, SATURATED_SECONDS)
        cpu_after = _cpu_seconds(server_pid)
        cpu = None
        if cpu_before is not None and cpu_after is not None:
            cpu = tuple(
                (after - before) / len(saturated)
                for before, after in zip(cpu_before, cpu_after, strict=True)
            )
        return {"paced": paced, "rate": rate, "saturated": saturated, "cpu": cpu}

    results.put(asyncio.run(run()))


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def run_against_server(
    server_main: Callable[..., None],
    database_url: str,
    folder: str,
    load_main: Callable[..., None],
    *load_args: Any,
    timeout: float = 180,
) -> dict[str, Any]:
    """`server_main(database_url, port, ready, folder)` in a process of its own and, once it is
    ready, `load_main(port, server_pid, *load_args, results)` in another: what the load put on
    `results`, with `seeded`, the seconds the server took to be ready."""
    from tests.support.net import free_port

    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(
        target=server_main, args=(database_url, port, ready, folder), daemon=True
    )
    started = time.perf_counter()
    server.start()
    try:
        if not ready.wait(timeout):
            raise RuntimeError("c2bot did not start")
        seeded = time.perf_counter() - started
        results: Any = multiprocessing.Queue()
        load = multiprocessing.Process(
            target=load_main, args=(port, server.pid, *load_args, results), daemon=True
        )
        load.start()
        found: dict[str, Any] = results.get(timeout=timeout)
        load.join(10)
        found["seeded"] = seeded
        return found
    finally:
        server.terminate()
        server.join(10)


def _measure(database_url: str, folder: str) -> dict[str, Any]:
    return run_against_server(_server_main, database_url, folder, _load_main)


async def answer_cpu(
    database_url: str, folder: str, requests: list[bytes], now: datetime, warm: int, rounds: int
) -> float:
    """CPU time of `dialplan.answer` alone per request, one after another, in this process (the
    server's database as the load left it): the first `warm` requests to warm up (compiled SQL,
    prepared statements, holiday calendars), then all of them `rounds` times, timed."""
    from urllib.parse import parse_qsl

    from c2bot.config.settings import load_settings
    from c2bot.storage.db import create_engine, session_factory
    from c2bot.switch import dialplan

    settings = load_settings(
        C2_DATABASE_URL=database_url,
        C2_SECRET_KEY="bench",
        C2_RECORDINGS_DIR=str(Path(folder) / "recordings"),
        C2_FAX_SPOOL=str(Path(folder) / "fax"),
    )
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    forms = [dict(parse_qsl(r.partition(b"\r\n\r\n")[2].decode("latin-1"))) for r in requests]
    try:
        for params in forms[:warm]:
            await dialplan.answer(sessions, settings, params, now)
        started = time.process_time()
        for params in forms * rounds:
            await dialplan.answer(sessions, settings, params, now)
        return (time.process_time() - started) / (len(forms) * rounds)
    finally:
        await engine.dispose()


async def _answer_cpu(database_url: str, folder: str) -> float:
    """The dialplan alone per lookup, same mix."""
    monday = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # a Monday morning: offices are open
    requests = _requests(0)
    return await answer_cpu(database_url, folder, requests, monday, len(requests), 2)


async def _pg_schema() -> tuple[str, str] | None:
    import asyncpg

    schema = f"bench_{secrets.token_hex(4)}"
    try:
        connection = await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return None
    await connection.execute(f'CREATE SCHEMA "{schema}"')
    await connection.close()
    url = PG_DSN.replace("postgresql://", "postgresql+asyncpg://")
    return schema, f"{url}?options=-csearch_path%3D{schema}"


async def _drop_schema(schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_DSN, timeout=5)
    await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await connection.close()


async def _figures(label: str, database_url: str, folder: str) -> str:
    found = await asyncio.to_thread(_measure, database_url, folder)
    alone = await _answer_cpu(database_url, folder)
    return f"{_line(label, found)}; the dialplan alone: {alone * 1000:.2f} ms CPU per lookup"


def _line(label: str, found: dict[str, Any]) -> str:
    paced, saturated = found["paced"], found["saturated"]
    cpu = "CPU per lookup unknown"
    if found["cpu"] is not None:
        user, system = found["cpu"]
        cpu = (
            f"server CPU {(user + system) * 1000:.2f} ms per lookup "
            f"({user * 1000:.2f} user, {system * 1000:.2f} system)"
        )
    return (
        f"dialplan lookups ({label}): paced {PACED_RATE}/s over {CONCURRENCY} connections: "
        f"p50 {_percentile(paced, 0.5):.1f} ms, p99 {_percentile(paced, 0.99):.1f} ms, "
        f"mean {statistics.mean(paced) * 1000:.1f} ms ({len(paced)} lookups); saturated: "
        f"{found['rate']} lookups/s, p50 {_percentile(saturated, 0.5):.1f} ms, "
        f"p99 {_percentile(saturated, 0.99):.1f} ms; {cpu}"
    )


async def on_each_database(
    what: str, figures: Callable[[str, str, str], Awaitable[str]]
) -> list[str]:
    """`figures(label, database_url, folder)` on a new SQLite file and a new PostgreSQL schema
    (dropped after), each with a scratch folder."""
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        lines.append(await figures("SQLite", url, folder))
    made = await _pg_schema()
    if made is None:
        lines.append(f"{what} (PostgreSQL): skipped, no server at {PG_DSN}")
        return lines
    schema, url = made
    try:
        with tempfile.TemporaryDirectory() as folder:
            lines.append(await figures("PostgreSQL", url, folder))
    finally:
        await _drop_schema(schema)
    return lines


async def main() -> list[str]:
    lines = ["dialplan lookups: goal p99 under 10 ms and at least 500 lookups/s on one process"]
    with tempfile.TemporaryDirectory() as folder:
        lines.append(_line("bare Starlette floor", await asyncio.to_thread(_measure, BARE, folder)))
    return lines + await on_each_database("dialplan lookups", _figures)


if __name__ == "__main__":
    for line in asyncio.run(main()):
        print(line)
