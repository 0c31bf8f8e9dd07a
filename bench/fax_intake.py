"""Mail2Fax intake and the time from 250 to the switch.

1. Mails per second accepted by fax@ (200 KB PDF, 4 connections, committed before 250), next to
   a bare aiosmtpd sink that only keeps the bytes in memory, in the same run.
2. Latency from our 250 to the `originate` command reaching the switch, for a 10-page text
   PDF (rendered in between), mails sent one after another: p50 and p99.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import random
import signal
import smtplib
import statistics
import subprocess
import sys
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
from tests.support.mail import build_mail, running_sink
from tests.support.net import free_port, until_listening

CONNECTIONS = 4
MAILS = 200
LATENCY_SAMPLES = 30
STAFF = Actor(label="bench", role=Role.ADMIN, account_id=None)


def pdf_200kb() -> bytes:
    """A one-page PDF holding a noisy 200 KB JPEG (a scan, as a copier would mail it)."""
    rng = random.Random(7)
    image = Image.frombytes("L", (800, 1000), bytes(rng.getrandbits(8) for _ in range(800_000)))
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


async def intake(folder: Path) -> list[str]:
    """Both servers in their own process, the senders in this one: a bare sink, then c2bot
    as DESIGN's scale model runs it (`serve --only smtp` keeps the mail and answers 250;
    `serve --only fax,esl` parses it into fax jobs)."""
    pdf = pdf_200kb()
    port = free_port()
    sink = await _spawn([sys.executable, "-m", "bench.fax_intake", "--sink", str(port)], port)
    try:
        bare = MAILS / await _send_all(port, pdf)
    finally:
        await _stop(sink)
    url = f"sqlite+aiosqlite:///{folder / 'intake.db'}"
    settings = load_settings(C2_DATABASE_URL=url, C2_MAIL_DOMAIN="c2.test", C2_SECRET_KEY="b")
    engine = create_engine(url)
    try:
        await upgrade(engine)
        services = Services(settings=settings, engine=engine)
        await _seed(services)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("C2_", "SLACK_"))}
        env |= {
            "C2_DATABASE_URL": url,
            "C2_MAIL_DOMAIN": "c2.test",
            "C2_SECRET_KEY": "b",
            "C2_SMTP_PORT": str(port),
            "C2_ESL_PORT": str(free_port()),
            "C2_FAX_SPOOL": str(folder / "spool"),
            "C2_LOG_LEVEL": "ERROR",
            "C2_CONFIG": str(folder / "absent.toml"),
        }
        serve = [sys.executable, "-m", "c2bot.bot.cli", "serve", "--only"]
        smtp = await _spawn([*serve, "smtp"], port, env)
        fax_part = None
        try:
            # A burst: only the SMTP door runs; what it keeps waits for a fax process.
            burst = MAILS / await _send_all(port, pdf)
            fax_part = await _spawn([*serve, "fax,esl"], None, env)
            started = time.perf_counter()
            while await _jobs(services) < MAILS:  # noqa: ASYNC110 (another process fills it)
                await asyncio.sleep(0.05)
            drained = MAILS / (time.perf_counter() - started)
            # Steady: the fax process parses while the next mails come in.
            steady = MAILS / await _send_all(port, pdf)
            while await _jobs(services) < 2 * MAILS:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        finally:
            await _stop(smtp)
            if fax_part is not None:
                await _stop(fax_part)
    finally:
        await engine.dispose()
    size = f"{MAILS} x {len(pdf) // 1024} KB PDF, {CONNECTIONS} connections, SQLite"
    return [
        f"Mail2Fax intake, burst: {burst:.0f} mails/s committed before 250 vs {bare:.0f}/s for "
        f"a bare aiosmtpd sink ({burst / bare:.2f}x; {size}; `serve --only smtp` alone); a "
        f"`--only fax` process then parsed them into jobs at {drained:.0f} mails/s",
        f"Mail2Fax intake, steady: {steady:.0f} mails/s committed before 250 "
        f"({steady / bare:.2f}x of the sink) while the fax process parses on the same 2 cores",
    ]


async def _jobs(services: Services) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(FaxJob)) or 0)


async def _spawn(
    command: list[str], port: int | None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
    if port is None:
        await asyncio.sleep(2.0)
        return process
    if await until_listening(port):
        return process
    process.kill()
    raise RuntimeError(f"{command} did not listen on {port}")


async def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 30)


async def _sink_forever(port: int) -> None:
    async with running_sink(port) as _:
        await asyncio.Event().wait()


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
    # The far end is busy: the peer answers at once instead of simulating the fax with spandsp
    # on this machine's CPU, which would slow down the rendering of the next mail we measure.
    peer.default_line = "busy"
    await peer.start()
    async with running_sink() as sink:
        return await _latency_run(folder, pdf, peer, sink.port)


async def _latency_run(folder: Path, pdf: bytes, peer: TimedPeer, relay: int) -> str:
    settings = load_settings(
        C2_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'latency.db'}",
        C2_MAIL_DOMAIN="c2.test",
        C2_SECRET_KEY="bench",
        C2_SMTP_PORT=0,
        C2_SMTP_RELAY=f"127.0.0.1:{relay}",
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
        return [*await intake(folder), await latency(folder)]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sink"]:
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            asyncio.run(_sink_forever(int(sys.argv[2])))
    else:
        for line in asyncio.run(main()):
            print(line)
