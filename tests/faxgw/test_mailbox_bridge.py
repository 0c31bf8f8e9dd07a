"""A reseller's own fax mailbox, end to end: settings -> poller -> Mail2Fax -> job -> \\Seen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from c2bot.bot.faxbridge import FaxBridge
from c2bot.bot.mail.outbox import Outbox
from c2bot.bot.services import Services
from c2bot.handlers import fax
from c2bot.storage.models import Channel, FaxJob, InboundMail
from tests.conftest import World, missing_server
from tests.support.imap import dovecot_available, running_dovecot
from tests.support.mail import build_mail


async def test_resellers_mailbox_is_polled_into_fax_jobs(
    services: Services, world: World, tmp_path: Path
) -> None:
    if not dovecot_available():
        missing_server("dovecot")
    async with running_dovecot(tmp_path) as imap:
        imap.add_user("fax-r100", "mailbox-pw")
        ctx = services.context(world.reseller, Channel.SHELL)
        await fax.allow_sender(ctx, "scanner@acme.nl", "1001")
        change = fax.FaxSettingsChange(
            account="R100",
            imap_host="127.0.0.1",
            imap_port=imap.port,
            imap_user="fax-r100",
            imap_password="mailbox-pw",
            imap_tls=False,
        )
        await fax.set_fax_settings(ctx, change)
        ours = build_mail(
            sender="scanner@acme.nl", to="fax@resell.nl", subject="020 123 4567", body="hi"
        )
        stranger = build_mail(sender="x@elsewhere.nl", to="fax@resell.nl", subject="1", body="")
        bounce = build_mail(
            sender="MAILER-DAEMON@resell.nl", to="fax@resell.nl", subject="Undelivered",
            body="", headers={"Return-Path": "<>"},
        )  # fmt: skip
        first = await imap.append("fax-r100", ours)
        second = await imap.append("fax-r100", stranger)
        third = await imap.append("fax-r100", bounce)
        bridge = FaxBridge(services, Outbox(services, CollectorRegistry()), ("imap",))
        tasks: list[asyncio.Task[None]] = []

        def spawn(name: str, run: Callable[[], Awaitable[None]]) -> None:
            tasks.append(asyncio.create_task(run(), name=name))  # type: ignore[arg-type]

        await bridge.start(spawn)
        try:

            async def both_seen() -> None:
                while True:
                    flags = await imap.flags("fax-r100")
                    if all("\\Seen" in flags.get(uid, ()) for uid in (first, second, third)):
                        return
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(both_seen(), 30)
            health = await bridge._mailbox_health()
            assert f"account:{world.reseller.account_id}" in health
        finally:
            await bridge.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    async with services.sessions() as session:
        jobs = list(await session.scalars(select(FaxJob)))
        outcomes = list(await session.scalars(select(InboundMail.outcome).order_by(InboundMail.id)))
    # A bounce (null Return-Path) in the mailbox is automatic mail: never faxed, never answered.
    assert outcomes == ["fax-queued", "fax-unknown-sender", "ignored-automatic"], outcomes
    assert [job.number for job in jobs] == ["+31201234567"]
