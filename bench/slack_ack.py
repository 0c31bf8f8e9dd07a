"""Slash-command ack latency: c2bot against a bare bolt app, 50 concurrent signed requests.

Each server runs in its own process (uvicorn on loopback, its Web API pointed at a stand-in in
that process); this process only sends the signed `/case list` requests and times each HTTP
answer, which is Slack's ack. c2bot does the command's real work after the ack, in the same
process, so that work competes with the acks as it would in production.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.net import free_port

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
CONCURRENCY = 50
WAVES = 20
WARMUP_WAVES = 2
PAUSE_SECONDS = 1.5


def _standin_main(port_queue: Any) -> None:
    """Slack's side (Web API and response URLs) in a process of its own."""

    async def run() -> None:
        from tests.support.slack import SlackStandIn

        standin = SlackStandIn(TOKEN)
        await standin.start()
        port_queue.put(standin.base_url)
        await asyncio.Event().wait()

    asyncio.run(run())


async def _serve_bare(port: int, ready: Any, slack_url: str) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=f"{slack_url}/api/")
    app = AsyncApp(client=client, signing_secret=SECRET)

    @app.command("/case")
    async def on_case(ack: Any) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    gc.freeze()  # as `c2bot serve` does, so the two differ only in what they run

    await _run(Starlette(routes=[Route("/slack/events", events, methods=["POST"])]), port, ready)


async def _serve_c2bot(port: int, ready: Any, folder: str, slack_url: str) -> None:
    """The real runtime (`c2bot serve --only slack,http`), as an operator runs it."""
    from c2bot.bot.runtime import Runtime
    from c2bot.config.settings import load_settings
    from c2bot.storage.models import Account, Person, Role

    settings = load_settings(
        C2_DATABASE_URL=f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
        C2_HTTP_PORT=port,
        C2_SUPPORT_CHANNEL="CSUPPORT",
        C2_SECRET_KEY="bench",
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=f"{slack_url}/api/",
    )
    runtime = Runtime(settings, ("slack", "http"))
    await runtime.start()
    assert runtime.services is not None
    async with runtime.services.sessions.begin() as session:
        account = Account(number="1001", company="Acme BV", email="office@acme.nl")
        session.add(account)
        await session.flush()
        person = Person(
            slack_user_id="UCUST",
            role=Role.CUSTOMER,
            account_id=account.id,
            email="jan@acme.nl",
            name="Jan",
        )
        session.add(person)
    await _seed_case(runtime)
    ready.set()
    await runtime.stopping.wait()


async def _seed_case(runtime: Any) -> None:
    """Case #1 for the customer, so `/case reply 1 ...` has something to write on."""
    from c2bot.handlers import cases
    from c2bot.handlers.context import Actor
    from c2bot.storage.models import CaseType, Channel, Person, Priority

    async with runtime.services.sessions() as session:
        person = await session.scalar(select(Person))
    ctx = runtime.services.context(Actor.of(person), Channel.SLACK)
    await cases.open_case(ctx, cases.NewCase(CaseType.TECHNICAL, Priority.LOW, "Bench", "Bench"))


async def _run(app: Any, port: int, ready: Any) -> None:
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="error", lifespan="off", access_log=False
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    ready.set()
    await task


def _server_main(kind: str, port: int, ready: Any, folder: str, slack_url: str) -> None:
    if kind == "bare":
        asyncio.run(_serve_bare(port, ready, slack_url))
    else:
        asyncio.run(_serve_c2bot(port, ready, folder, slack_url))


class Connection:
    """One keep-alive HTTP/1.1 connection: a lean client, so the figures are the server's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, port: int, body: bytes, headers: dict[str, str]) -> int:
        lines = [
            "POST /slack/events HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status


async def _timed(connection: Connection, port: int, slack_url: str, text: str, n: int) -> float:
    from tests.support.slack import sign, slash_command_body

    body = slash_command_body(
        "/case", text, "UCUST", trigger_id=f"t{n}", response_url=f"{slack_url}/response/bench{n}"
    )
    headers = sign(body, SECRET, content_type="application/x-www-form-urlencoded")
    started = time.perf_counter()
    status = await connection.post(port, body, headers)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"ack failed with HTTP {status}")
    return elapsed


async def _load(port: int, slack_url: str, text: str) -> list[float]:
    connections = [await Connection.open(port) for _ in range(CONCURRENCY)]
    samples: list[float] = []
    for wave in range(WARMUP_WAVES + WAVES):
        results = await asyncio.gather(
            *(_timed(c, port, slack_url, text, i) for i, c in enumerate(connections))
        )
        if wave >= WARMUP_WAVES:
            samples.extend(results)
        # Let the wave's after-ack work finish: each wave is one burst of 50 commands, measured
        # on its own rather than on top of the previous wave's work.
        await asyncio.sleep(PAUSE_SECONDS)
    for connection in connections:
        connection.writer.close()
    return samples


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def _measure(kind: str, folder: str, text: str = "list") -> list[float]:
    port = free_port()
    ready = multiprocessing.Event()
    urls: Any = multiprocessing.Queue()
    slack = multiprocessing.Process(target=_standin_main, args=(urls,), daemon=True)
    slack.start()
    slack_url = urls.get(timeout=60)
    server = multiprocessing.Process(
        target=_server_main, args=(kind, port, ready, folder, slack_url), daemon=True
    )
    server.start()
    try:
        if not ready.wait(60):
            raise RuntimeError(f"{kind} server did not start")
        return asyncio.run(_load(port, slack_url, text))
    finally:
        for process in (server, slack):
            process.terminate()
            process.join(10)


async def main() -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        bare = await asyncio.to_thread(_measure, "bare", folder)
        ours = await asyncio.to_thread(_measure, "c2bot", folder)
    with tempfile.TemporaryDirectory() as folder:
        # A change (a reply on case #1) is written to the Slack inbox before its ack.
        changing = await asyncio.to_thread(_measure, "c2bot", folder, "reply 1 bench")
    runs = (("bare bolt", bare), ("c2bot, /case list", ours), ("c2bot, /case reply", changing))
    lines = [
        f"slash-command ack ({label}): p50 {_percentile(samples, 0.5):.1f} ms, "
        f"p99 {_percentile(samples, 0.99):.1f} ms, mean {statistics.mean(samples) * 1000:.1f}"
        f" ms ({len(samples)} requests, {CONCURRENCY} concurrent)"
        for label, samples in runs
    ]
    for label, samples in runs[1:]:
        ratio = _percentile(samples, 0.99) / _percentile(bare, 0.99)
        lines.append(
            f"slash-command ack ({label}): p99 is {ratio:.2f}x the bare bolt app's "
            "(goal: under 100 ms and within 1.5x)"
        )
    return lines


if __name__ == "__main__":
    for line in asyncio.run(main()):
        print(line)
