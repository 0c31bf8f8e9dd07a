"""Mail2Fax intake and the time from 250 to the switch.

1. Mails per second accepted by fax@ (200 KB PDF, 4 connections, committed before 250), next to
   a bare aiosmtpd sink that only keeps the bytes in memory, in the same run.
2. Latency from our 250 to the `originate` command reaching the switch, for a 10-page text
   PDF (rendered in between), mails sent one after another: p50 and p99.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import smtplib
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import img2pdf
from PIL import Image
from sqlalchemy import func, select

from c2bot.bot.runtime import Runtime
from c2bot.bot.services import Services
from c2bot.config.settings import load_settings
from c2bot.handlers import fax
from c2bot.handlers.context import Actor
from c2bot.storage.db import create_engine, upgrade
from c2bot.storage.models import Account, Channel, FaxJob, Role
from tests.support.eslpeer import EslPeer
from tests.support.mail import build_mail, running_gateway, running_sink

CONNECTIONS = 4
MAILS = 200
LATENCY_SAMPLES = 30
STAFF = Actor(label="bench", role=Role.ADMIN, account_id=None)


def pdf_200kb() -> bytes:
    """A one-page PDF holding a noisy 200 KB JPEG (a scan, as a copier would mail it)."""
    rng = random.Random(7)
    image = Image.frombytes("L", (1200, 1600), bytes(rng.getrandbits(8) for _ in range(1920000)))
    jpeg = io.BytesIO()
    image.save(jpeg, "JPEG", quality=20)
    return bytes(img2pdf.convert(jpeg.getvalue()))


def text_pdf(pages: int, folder: Path) -> bytes:
    """A `pages`-page text letter made with Ghostscript's pdfwrite."""
    lines = "\n".join(
        f"72 {760 - 14 * i} moveto (Line {i}: the quick brown fox jumps over the lazy dog.) show"
        for i in range(48)
    )
    program = "/Helvetica findfont 11 scalefont setfont\n" + "\n".join(
        f"{lines}\n72 40 moveto (Page {p + 1}) show showpage" for p in range(pages)
    )
    source, target = folder / "letter.ps", folder / "letter.pdf"
    source.write_text(program)
    subprocess.run(
        ["gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4",
         f"-sOutputFile={target}", str(source)],
        check=True,
    )  # fmt: skip
    return target.read_bytes()


def _sender(port: int, count: int, worker: int, pdf: bytes) -> int:
    accepted = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for n in range(count):
            raw = build_mail(
                sender="scanner@acme.nl",
                to="fax@c2.test",
                subject=f"+3120{worker:03d}{n:04d}",
                body="Please sign.",
                attachments=[("scan.pdf", "application/pdf", pdf)],
            )
            client.sendmail("scanner@acme.nl", ["fax@c2.test"], raw)
            accepted += 1
    return accepted


async def _send_all(port: int, pdf: bytes) -> float:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        counts = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _sender, port, MAILS // CONNECTIONS, w, pdf)
                for w in range(CONNECTIONS)
            )
        )
    assert sum(counts) == MAILS
    return time.perf_counter() - started


async def _seed(services: Services) -> None:
    async with services.sessions.begin() as session:
        session.add(Account(number="1001", company="Acme BV", email="office@acme.nl"))
    await fax.allow_sender(services.context(STAFF, Channel.SHELL), "scanner@acme.nl", "1001")
    ctx = services.context(STAFF, Channel.SHELL)
    await fax.set_fax_settings(ctx, fax.FaxSettingsChange(account="1001", daily_pages=0))


async def intake(folder: Path) -> str:
    pdf = pdf_200kb()
    async with running_sink() as sink:
        sink_seconds = await _send_all(sink.port, pdf)
    settings = load_settings(
        C2_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'intake.db'}",
        C2_MAIL_DOMAIN="c2.test",
        C2_SECRET_KEY="bench",
        C2_SMTP_RELAY="127.0.0.1:9",
    )
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        services = Services(settings=settings, engine=engine)
        await _seed(services)
        async with running_gateway(services) as (gateway, _):
            ours = await _send_all(gateway.port, pdf)
        async with services.sessions() as session:
            jobs = await session.scalar(select(func.count()).select_from(FaxJob))
    finally:
        await engine.dispose()
    assert jobs == MAILS, jobs
    rate, bare = MAILS / ours, MAILS / sink_seconds
    return (
        f"Mail2Fax intake: {rate:.0f} mails/s committed before 250 vs {bare:.0f}/s for a bare "
        f"aiosmtpd sink ({rate / bare:.2f}x; {MAILS} x {len(pdf) // 1024} KB PDF, "
        f"{CONNECTIONS} connections, SQLite)"
    )


class TimedPeer(EslPeer):
    """The Event Socket peer, noting when each originate arrives."""

    arrivals: dict[str, float]

    async def _originate(self, arguments: str, *, job_uuid: str | None) -> str:
        number = arguments.split("&", 1)[0].rstrip().rsplit("/", 1)[-1]
        self.arrivals[number] = time.perf_counter()
        return await super()._originate(arguments, job_uuid=job_uuid)


async def latency(folder: Path) -> str:
    pdf = text_pdf(10, folder)
    peer = TimedPeer()
    peer.arrivals = {}
    await peer.start()
    settings = load_settings(
        C2_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'latency.db'}",
        C2_MAIL_DOMAIN="c2.test",
        C2_SECRET_KEY="bench",
        C2_SMTP_PORT=0,
        C2_SMTP_RELAY="127.0.0.1:9",
        C2_ESL_PORT=peer.port,
        C2_FAX_SPOOL=str(folder / "spool"),
    )
    runtime = Runtime(settings, ("smtp", "fax", "esl"))
    accepted: dict[str, float] = {}
    try:
        await runtime.start()
        assert runtime.services is not None and runtime.mail is not None
        await _seed(runtime.services)
        assert runtime.fax is not None and runtime.fax.pool is not None
        await runtime.fax.pool.get().wait_connected(5)
        for n in range(LATENCY_SAMPLES):
            number = f"+3120777{n:04d}"
            raw = build_mail(
                sender="scanner@acme.nl", to="fax@c2.test", subject=number, body="",
                attachments=[("letter.pdf", "application/pdf", pdf)],
            )  # fmt: skip
            await asyncio.to_thread(_send_one, runtime.mail.port, raw)
            accepted[number] = time.perf_counter()
            while number not in peer.arrivals:  # noqa: ASYNC110 (polling the peer's record)
                await asyncio.sleep(0.002)
    finally:
        await runtime.stop()
        await peer.stop()
    waits = sorted((peer.arrivals[n] - accepted[n]) * 1000 for n in accepted)
    p50 = statistics.median(waits)
    p99 = waits[min(len(waits) - 1, round(0.99 * (len(waits) - 1)))]
    return (
        f"Mail2Fax latency, 250 -> originate, 10-page text PDF: p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms ({LATENCY_SAMPLES} mails one after another, rendering included)"
    )


def _send_one(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.sendmail("scanner@acme.nl", ["fax@c2.test"], raw)


async def main() -> list[str]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        return [await intake(folder), await latency(folder)]


if __name__ == "__main__":
    os.environ.setdefault("C2_CONFIG", "/nonexistent.toml")
    for line in asyncio.run(main()):
        print(line)
