"""Kill the fax bridge at random points while mail flows in; nothing is lost or sent twice.

`c2bot serve --only smtp,fax,esl` runs as a real process against the Event Socket peer (which
really faxes with spandsp). A sender keeps offering mails to fax@ the way a mail server does
(until it gets 250), while the process is SIGKILLed and restarted at random moments. At the
end every accepted message has exactly one request with one job, every job ended sent or
failed, and no number was dialled twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from c2bot.bot.services import Services
from c2bot.handlers import fax
from c2bot.storage.models import FAX_FINAL, Channel, FaxJob, FaxRequest, FaxState, InboundMail
from tests.conftest import World, missing_server
from tests.support import spandsp
from tests.support.eslpeer import running_peer
from tests.support.mail import build_mail
from tests.support.net import free_port, until_listening

MAILS = 24
C2BOT = [sys.executable, "-m", "c2bot.bot.cli", "serve", "--only", "smtp,fax,esl"]


def offer(port: int, raw: bytes) -> bool:
    """One SMTP attempt; True only on 250 after DATA (what a sending server relies on)."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.ehlo("mta.test")
            client.mail("scanner@acme.nl")
            client.rcpt("fax@c2.test")
            code, _ = client.data(raw)
            return code == 250
    except (OSError, smtplib.SMTPException):
        return False


async def test_kill_the_process_while_mail_flows(
    database_url: str, services: Services, world: World, tmp_path: Path
) -> None:
    if not spandsp.available():
        missing_server("libspandsp2")
    ctx = services.context(world.reseller, Channel.SHELL)
    await fax.allow_sender(ctx, "scanner@acme.nl", "1001")
    await fax.set_fax_settings(ctx, fax.FaxSettingsChange(account="1001", retries=1))
    smtp_port = free_port()
    rng = random.Random(20261125)
    async with running_peer() as peer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("C2_", "SLACK_"))}
        env.update(
            C2_DATABASE_URL=database_url,
            C2_CONFIG=str(tmp_path / "absent.toml"),
            C2_MAIL_DOMAIN="c2.test",
            C2_SECRET_KEY="crash-test",
            C2_SMTP_PORT=str(smtp_port),
            C2_SMTP_RELAY=f"127.0.0.1:{free_port()}",
            C2_ESL_PORT=str(peer.port),
            C2_FAX_SPOOL=str(tmp_path / "spool"),
            C2_FAX_LEASE="2",
            C2_FAX_RETRY_WAIT="1",
            C2_LOG_LEVEL="WARNING",
        )
        logs = (tmp_path / "serve.log").open("w")
        process: subprocess.Popen[bytes] | None = None

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(C2BOT, env=env, cwd=tmp_path, stdout=logs, stderr=logs)

        accepted: list[str] = []

        async def sender() -> None:
            for n in range(MAILS):
                raw = build_mail(
                    sender="scanner@acme.nl",
                    to="fax@c2.test",
                    subject=f"+3120123{4500 + n}",
                    body=f"fax number {n}",
                )
                while not await asyncio.to_thread(offer, smtp_port, raw):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                accepted.append(f"+3120123{4500 + n}")
                await asyncio.sleep(rng.uniform(0.05, 0.3))

        kills = 0
        try:
            process = start()
            sending = asyncio.create_task(sender())
            while kills < 5:
                await until_listening(smtp_port)
                await asyncio.sleep(rng.uniform(0.1, 1.0))
                process.send_signal(signal.SIGKILL)
                await asyncio.to_thread(process.wait)
                kills += 1
                process = start()
            await asyncio.wait_for(sending, 120)

            async def settled() -> None:
                while True:
                    async with services.sessions() as session:
                        open_jobs = await session.scalar(
                            select(func.count())
                            .select_from(FaxJob)
                            .where(FaxJob.state.not_in(FAX_FINAL))
                        )
                        kept = await session.scalar(
                            select(func.count())
                            .select_from(InboundMail)
                            .where(InboundMail.outcome.in_(("fax-pending", "fax-taking")))
                        )
                    if open_jobs == 0 and kept == 0:
                        return
                    await asyncio.sleep(0.2)

            await asyncio.wait_for(settled(), 120)
        finally:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(process.wait, 30)
            logs.close()
    assert kills >= 3, "the test must really interrupt the process"
    async with services.sessions() as session:
        requests = await session.scalar(select(func.count()).select_from(FaxRequest))
        jobs = list(await session.scalars(select(FaxJob).order_by(FaxJob.number)))
    assert requests == MAILS
    assert sorted(j.number for j in jobs) == sorted(accepted)
    assert {j.state for j in jobs} <= {FaxState.SENT, FaxState.FAILED}
    dialled = [call.number for call in peer.originates]
    twice = {n for n in dialled if dialled.count(n) > 1}
    assert not twice, f"dialled more than once: {twice}"
    sent = sum(1 for j in jobs if j.state is FaxState.SENT)
    assert sent >= MAILS // 2, (sent, (tmp_path / "serve.log").read_text()[-3000:])
