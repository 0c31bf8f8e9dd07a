"""Mail intake: support mails per second accepted (250 and committed), 4 connections, 20 KB."""

from __future__ import annotations

import asyncio
import smtplib
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
from sqlalchemy import func, select

from c2bot.bot.services import Services
from c2bot.config.settings import load_settings
from c2bot.storage.db import create_engine, upgrade
from c2bot.storage.models import Account, Case, Contact
from tests.support.mail import build_mail, running_gateway, running_sink

CONNECTIONS = 4
MAILS = 400
BODY = ("Our phones stopped registering this morning. " * 460)[:20_000]


def _sender(port: int, count: int, worker: int) -> int:
    accepted = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for n in range(count):
            raw = build_mail(
                sender="jan@acme.nl", to="support@c2.test", subject=f"Bench {worker}-{n}", body=BODY
            )
            client.sendmail("jan@acme.nl", ["support@c2.test"], raw)
            accepted += 1
    return accepted


async def measure(database_url: str, label: str) -> str:
    async with running_sink() as sink:
        settings = load_settings(
            C2_DATABASE_URL=database_url,
            C2_MAIL_DOMAIN="c2.test",
            C2_SMTP_RELAY=f"127.0.0.1:{sink.port}",
            C2_SECRET_KEY="bench",
        )
        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine)
            services = Services(settings=settings, engine=engine)
            await _seed(services)
            async with running_gateway(services) as (gateway, _):
                elapsed, accepted = await _send_all(gateway.port)
            async with services.sessions() as session:
                cases = await session.scalar(select(func.count()).select_from(Case))
        finally:
            await engine.dispose()
    assert accepted == MAILS == cases, (accepted, cases)
    return (
        f"mail intake ({label}): {MAILS / elapsed:.0f} support mails/s accepted and "
        f"committed ({MAILS} x 20 KB over {CONNECTIONS} connections, {elapsed:.2f} s)"
    )


async def _seed(services: Services) -> None:
    async with services.sessions.begin() as session:
        account = Account(number="1001", company="Acme BV", email="office@acme.nl")
        session.add(account)
        await session.flush()
        session.add(Contact(account_id=account.id, name="Jan", email="jan@acme.nl"))


async def _send_all(port: int) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        counts = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _sender, port, MAILS // CONNECTIONS, worker)
                for worker in range(CONNECTIONS)
            )
        )
    return time.perf_counter() - started, sum(counts)


async def main() -> list[str]:
    figures = []
    with tempfile.TemporaryDirectory() as folder:
        figures.append(await measure(f"sqlite+aiosqlite:///{Path(folder) / 'b.db'}", "SQLite"))
    figures.append(await pg_figure())
    return figures


async def pg_figure() -> str:
    try:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        return f"mail intake (PostgreSQL): skipped, no server ({error})"
    await conn.execute("DROP DATABASE IF EXISTS c2bot_bench")
    await conn.execute("CREATE DATABASE c2bot_bench")
    try:
        return await measure(
            "postgresql+asyncpg://postgres@127.0.0.1:5432/c2bot_bench", "PostgreSQL"
        )
    finally:
        await conn.execute("DROP DATABASE IF EXISTS c2bot_bench WITH (FORCE)")
        await conn.close()


if __name__ == "__main__":
    for line in asyncio.run(main()):
        print(line)
