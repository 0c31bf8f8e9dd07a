"""The runtime: builds every part on one asyncio loop, runs them, and stops them on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import uvicorn
from prometheus_client import CollectorRegistry

from c2bot.bot.faxbridge import FaxBridge
from c2bot.bot.http import HealthCheck, build_http_app
from c2bot.bot.mail.gateway import MailGateway
from c2bot.bot.mail.notify import MailNotifier
from c2bot.bot.mail.outbox import Outbox
from c2bot.bot.portnotices import PortNotices
from c2bot.bot.services import Services
from c2bot.bot.slack.app import SlackFrontDoor
from c2bot.config.settings import Settings
from c2bot.handlers.cases import due_reminders
from c2bot.handlers.context import Actor
from c2bot.storage.db import create_engine, upgrade
from c2bot.storage.models import Channel, Role

log = logging.getLogger(__name__)

PARTS = ("slack", "http", "smtp", "imap", "fax", "esl")
DEFAULT_PARTS = ("slack", "http", "smtp", "fax", "esl", "imap")
HOUSEKEEPING_SECONDS = 60.0
SYSTEM = Actor(label="c2bot", role=Role.ADMIN, account_id=None)


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the runtime owns SIGTERM and SIGINT."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class PartError(Exception):
    """`--only` named a part that does not exist or is not in this release."""


def choose_parts(only: str | None) -> tuple[str, ...]:
    if not only:
        return DEFAULT_PARTS
    wanted = tuple(dict.fromkeys(p.strip().lower() for p in only.split(",") if p.strip()))
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        raise PartError(f"unknown part {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    return wanted


@dataclass
class Runtime:
    """Everything `c2bot serve` runs, started and stopped in order."""

    settings: Settings
    parts: tuple[str, ...] = DEFAULT_PARTS
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    services: Services | None = None
    slack: SlackFrontDoor | None = None
    mail: MailGateway | None = None
    outbox: Outbox | None = None
    http_server: uvicorn.Server | None = None
    http_port: int | None = None
    fax: FaxBridge | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        engine = create_engine(self.settings.database_url)
        await upgrade(engine)
        services = self.services = Services(settings=self.settings, engine=engine)
        self.outbox = Outbox(services, self.registry)
        services.notifier.add(MailNotifier(services, self.outbox))
        self._spawn("mail outbox", self.outbox.run)
        if "slack" in self.parts:
            self._start_slack(services)
        self.fax = FaxBridge(services, self.outbox, self.parts, self.slack)
        await self.fax.start(self._spawn)
        if "smtp" in self.parts:
            self.mail = MailGateway(services, self.outbox, self.registry)
            self.mail.handler.take_up_faxes = "fax" in self.parts
            await self.mail.start(self.settings.smtp_host, self.settings.smtp_port)
        if "http" in self.parts:
            await self._start_http(services)
        self._spawn("housekeeping", self._housekeeping)
        # What start-up built lives as long as the process: keep the collector from walking it
        # again and again, which shows as pauses in request latency.
        gc.freeze()
        running = [p for p in self.parts if p != "slack" or self.slack is not None]
        log.info("c2bot serving: %s", ", ".join(running))

    def _start_slack(self, services: Services) -> None:
        if not self.settings.slack_enabled:
            log.warning(
                "Slack is off: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or "
                "SLACK_APP_TOKEN) are not set. Mail and HTTP keep serving."
            )
            return
        self.slack = SlackFrontDoor(services, self.registry)
        if self.settings.slack_app_token is not None:
            self._spawn("slack socket mode", self.slack.start_socket_mode)
        elif "http" not in self.parts:
            log.warning(
                "Slack over HTTP needs the http part; add it to --only or set "
                "SLACK_APP_TOKEN for Socket Mode."
            )

    async def _start_http(self, services: Services) -> None:
        checks: dict[str, HealthCheck] = {"mail": self._mail_health}
        if self.fax is not None:
            checks |= self.fax.health_checks()
        app = build_http_app(services, self.slack, self.registry, checks)
        sock = socket.socket(socket.AF_INET6 if ":" in self.settings.http_host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.http_host, self.settings.http_port))
        self.http_port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        server = self.http_server = QuietServer(config)
        self._spawn("http", lambda: server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no started event)
            await asyncio.sleep(0.01)
        log.info("HTTP on %s:%s", self.settings.http_host, self.http_port)

    async def _mail_health(self) -> dict[str, object]:
        if self.outbox is None:
            return {"ok": True}
        return await self.outbox.health()

    async def _housekeeping(self) -> None:
        assert self.services is not None
        ctx = self.services.context(SYSTEM, Channel.SYSTEM)
        ports = PortNotices(self.services, self.outbox, self.slack.kit if self.slack else None)
        while not self.stopping.is_set():
            try:
                await due_reminders(ctx)
                await ports.housekeeping(ctx)
                if self.slack is not None:
                    await self.slack.catch_up()
            except Exception:
                log.exception("housekeeping round failed; trying again in a minute")
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), HOUSEKEEPING_SECONDS)

    def _spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        async def guarded() -> None:
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s stopped with an error", name)

        self.tasks.append(asyncio.create_task(guarded(), name=name))

    async def stop(self) -> None:
        """Stop taking work, let what is in flight finish, then close storage."""
        self.stopping.set()
        if self.http_server is not None:
            self.http_server.should_exit = True
        if self.mail is not None:
            await self.mail.stop()
        if self.slack is not None:
            await self.slack.stop()
        if self.fax is not None:
            await self.fax.stop()
        if self.outbox is not None:
            self.outbox.stop()
        _, pending = await asyncio.wait(self.tasks, timeout=10) if self.tasks else (set(), set())
        for task in pending:
            task.cancel()
        if self.services is not None:
            await self.services.engine.dispose()
        log.info("c2bot stopped")


async def serve(settings: Settings, parts: tuple[str, ...]) -> None:
    runtime = Runtime(settings, parts)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runtime.stopping.set)
    await runtime.start()
    await runtime.stopping.wait()
    log.info("stopping: finishing what is in flight")
    await runtime.stop()
