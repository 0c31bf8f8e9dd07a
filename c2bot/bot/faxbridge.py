"""The fax bridge inside `c2bot serve`: switch connection, worker, Fax2Mail, fax mailboxes.

Which of them run follows `--only`: `esl` keeps the Event Socket connection (and shows it in
/healthz), `fax` adds the worker and Fax2Mail (they need the switch, so `fax` implies the
connection), `imap` polls every configured fax mailbox (the global C2_IMAP_* one and each
account's own), one poller per mailbox across processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import timedelta
from typing import Any

from c2bot.bot.http import HealthCheck
from c2bot.bot.mail.faxmail import FaxMailNotifier
from c2bot.bot.mail.intake import Delivery, Intake
from c2bot.bot.mail.outbox import Outbox
from c2bot.bot.mailparse import MalformedMail, parse_mail, stored_envelope_sender
from c2bot.bot.services import Services
from c2bot.faxgw.events import FaxFanout
from c2bot.faxgw.imap import Mailbox, MailboxPoller
from c2bot.faxgw.receive import FaxReceiver
from c2bot.faxgw.render import close_renderers
from c2bot.faxgw.worker import CallRouter, FaxWorker
from c2bot.storage.crypto import SecretUnreadable, unseal
from c2bot.storage.fax import Mailbox as StoredMailbox
from c2bot.storage.fax import mailboxes
from c2bot.switch.esl import SwitchPool, pool_from_settings
from c2bot.switch.recorder import PhoneRecorder

log = logging.getLogger(__name__)

Spawn = Callable[[str, Callable[[], Awaitable[None]]], None]
MAILBOX_REFRESH_SECONDS = 60.0
RESUME_EVERY_SECONDS = 1.0
RESUME_AFTER = timedelta(0)


class FaxBridge:
    def __init__(
        self, services: Services, outbox: Outbox, parts: tuple[str, ...], slack: Any = None
    ) -> None:
        self.services = services
        self.outbox = outbox
        self.parts = parts
        self.events = FaxFanout()
        self.events.add(FaxMailNotifier(services, outbox.wake))
        if slack is not None:
            from c2bot.bot.slack.faxnotify import SlackFaxNotifier

            self.events.add(SlackFaxNotifier(slack.kit))
        self.pool: SwitchPool | None = None
        self.router: CallRouter | None = None
        self.worker: FaxWorker | None = None
        self.receiver: FaxReceiver | None = None
        self.recorder: PhoneRecorder | None = None
        self.pollers: dict[str, tuple[MailboxPoller, asyncio.Task[None]]] = {}
        self.intake = Intake(services, outbox)
        services.wakers["fax"] = self.wake
        self.stopping = asyncio.Event()

    def wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    async def start(self, spawn: Spawn) -> None:
        settings = self.services.settings
        if "esl" in self.parts or "fax" in self.parts:
            self.pool = pool_from_settings(settings)
            await self.pool.start()
            self.services.switch = self.pool
        if self.pool is not None:
            # One event subscription for every listener: recordings made by phone (1800)
            # always, received faxes and the fax worker's calls with `fax`.
            self.router = CallRouter(self.pool)
            self.recorder = PhoneRecorder(settings, self.services.sessions)
            self.router.handlers.append(self.recorder.on_event)
        if "fax" in self.parts and self.router is not None:
            self.receiver = FaxReceiver(settings, self.services.sessions, self.events)
            self.router.handlers.append(self.receiver.on_event)
            self.worker = FaxWorker(
                settings, self.services.sessions, self.router.pool, self.events, router=self.router
            )
            spawn("fax worker", self.worker.run)
        elif self.router is not None:
            self.router.start()
        if "imap" in self.parts:
            spawn("fax mailboxes", self._mailboxes)
        if "fax" in self.parts:
            spawn("pending fax mail", self._resume_pending)

    async def stop(self) -> None:
        self.stopping.set()
        for poller, task in list(self.pollers.values()):
            await poller.stop()
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self.pollers.clear()
        if self.worker is not None:
            await self.worker.stop()
        elif self.router is not None:
            await self.router.stop()
        if self.pool is not None:
            await self.pool.stop()
        await close_renderers()

    def health_checks(self) -> dict[str, HealthCheck]:
        checks: dict[str, HealthCheck] = {}
        if self.pool is not None:
            checks["switch"] = self._switch_health
        if self.worker is not None:
            checks["fax"] = self._fax_health
        if "imap" in self.parts:
            checks["fax_mailboxes"] = self._mailbox_health
        return checks

    async def _switch_health(self) -> dict[str, object]:
        assert self.pool is not None
        hosts = self.pool.health()
        ok = all(host.get("state") == "connected" for host in hosts.values())
        return {"ok": ok, **hosts}

    async def _fax_health(self) -> dict[str, object]:
        assert self.worker is not None
        return self.worker.health()

    async def _mailbox_health(self) -> dict[str, object]:
        return {key: poller.health() for key, (poller, _) in self.pollers.items()}

    async def _resume_pending(self) -> None:
        """Fax mails accepted (250) by a process that stopped before acting on them."""
        while not self.stopping.is_set():
            try:
                await self.intake.resume_faxes(RESUME_AFTER)
            except Exception:
                log.exception("taking up pending fax mail failed; trying again")
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), RESUME_EVERY_SECONDS)

    # --- fax mailboxes over IMAP ----------------------------------------------------------------

    async def _mailboxes(self) -> None:
        """Keep one poller per configured mailbox; settings changes are picked up each minute."""
        while not self.stopping.is_set():
            try:
                await self._refresh_pollers()
            except Exception:
                log.exception("reading the fax mailbox settings failed")
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), MAILBOX_REFRESH_SECONDS)

    async def _refresh_pollers(self) -> None:
        async with self.services.sessions() as session:
            configured = {box.key: box for box in await mailboxes(session, self.services.settings)}
        for key in [k for k in self.pollers if k not in configured]:
            poller, task = self.pollers.pop(key)
            await poller.stop()
            task.cancel()
        for key, stored in configured.items():
            mailbox = self._mailbox(stored)
            if mailbox is None:
                continue
            current = self.pollers.get(key)
            if current is not None and current[0].mailbox == mailbox:
                continue
            if current is not None:
                await current[0].stop()
                current[1].cancel()
            poller = MailboxPoller(mailbox, self._deliverer(key), engine=self.services.engine)
            task = asyncio.create_task(poller.run(), name=f"fax mailbox {key}")
            self.pollers[key] = (poller, task)
            log.info("polling fax mailbox %s (%s@%s)", key, mailbox.user, mailbox.host)

    def _mailbox(self, stored: StoredMailbox) -> Mailbox | None:
        password = stored.plain_password
        if password is None and stored.sealed_password is not None:
            try:
                password = unseal(self.services.settings, stored.sealed_password)
            except SecretUnreadable as error:
                log.error("fax mailbox %s: %s", stored.key, error)
                return None
        return Mailbox(
            key=stored.key,
            host=stored.host,
            port=stored.port,
            user=stored.user,
            password=password or "",
            tls=stored.tls,
            folder=self.services.settings.imap_folder,
        )

    def _deliverer(self, key: str) -> Callable[[bytes], Awaitable[None]]:
        scope = int(key.split(":", 1)[1]) if key.startswith("account:") else None

        async def deliver(raw: bytes) -> None:
            await self._deliver(raw, key, scope)

        return deliver

    async def _deliver(self, raw: bytes, key: str, scope: int | None) -> None:
        """One message from a fax mailbox: recorded and acted on before it is marked seen."""
        sender = stored_envelope_sender(raw)
        try:
            mail = await asyncio.to_thread(parse_mail, raw, sender)
        except MalformedMail as error:
            log.warning("fax mailbox: malformed message kept as refused: %s", error)
            await self.intake.record_raw(raw, "refused", f"malformed: {error}")
            return
        delivery = Delivery(
            mailbox="fax",
            token=None,
            envelope_from=sender,
            recipients=f"imap:{key}",
            raw=raw,
            mail=mail,
            fax_scope=scope,
        )
        await self.intake.deliver(delivery)
