"""The Slack front door: a bolt `AsyncApp` wired to the domain, served over HTTP or Socket Mode.

Each listener group lives in its own module and is wired here by its `register`. Bolt verifies
every HTTP request's signature and its 5-minute replay window (401 otherwise) before any of ours
runs; listeners ack first and do the slow part after (kit.py keeps that work until it is done).
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    async_default_handlers,
)
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from c2bot.bot.services import Services
from c2bot.bot.slack import (
    actions,
    case_form,
    commands,
    fax_form,
    home,
    messages,
    notes,
    people,
    plugins,
)
from c2bot.bot.slack.inbox import COMMAND, THREAD_MESSAGE
from c2bot.bot.slack.kit import Asker, InFlight, SlackKit
from c2bot.bot.slack.notify import REPOST_AFTER, SlackThreads
from c2bot.handlers.context import Actor
from c2bot.handlers.errors import Refusal
from c2bot.storage.models import SlackInbox

log = logging.getLogger(__name__)


class AckFirstSocketModeHandler(AsyncSocketModeHandler):
    """Socket Mode with the same rule as HTTP: work after an ack waits for pending acks."""

    def __init__(self, app: AsyncApp, app_token: str, work: InFlight) -> None:
        self._work = work
        super().__init__(app, app_token)

    async def handle(self, client: Any, req: Any) -> None:
        with self._work.acking():
            await super().handle(client, req)


async def _nothing() -> None:
    """The work of a request whose person is no longer linked: none."""


class SlackNotConfigured(Exception):
    """SLACK_BOT_TOKEN is missing."""


class SlackFrontDoor:
    """Built once from `Services`; adds its case-thread listener to `services.notifier`."""

    def __init__(self, services: Services, registry: CollectorRegistry | None = None) -> None:
        settings = services.settings
        if settings.slack_bot_token is None:
            raise SlackNotConfigured("SLACK_BOT_TOKEN is not set")
        token = settings.slack_bot_token.get_secret_value()
        secret = settings.slack_signing_secret
        self._signing_secret = secret.get_secret_value() if secret is not None else ""
        self.services = services
        self.client = AsyncWebClient(
            token=token,
            base_url=settings.slack_api_url,
            retry_handlers=[
                *async_default_handlers(),
                AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            ],
        )
        self.app = AsyncApp(
            name="c2bot",
            client=self.client,
            signing_secret=self._signing_secret,
            process_before_response=False,
        )
        self.kit = SlackKit(services, self.client, token)
        self.threads = SlackThreads(services, self.client, self.kit.work)
        services.notifier.add(self.threads)
        self._register()
        self._http = AsyncSlackRequestHandler(self.app)
        self._socket: AckFirstSocketModeHandler | None = None
        self.requests = Counter(
            "c2bot_slack_requests",
            "Slack requests over HTTP, by the status we answered",
            ["status"],
            registry=registry or CollectorRegistry(),
        )

    def _register(self) -> None:
        people.register(self.app, self.kit)  # first: every listener below needs the actor
        commands.register(self.app, self.kit)
        case_form.register(self.app, self.kit)
        fax_form.register(self.app, self.kit)
        for plugin in plugins.PLUGINS:
            plugin.register(self.app, self.kit)
        actions.register(self.app, self.kit)
        notes.register(self.app, self.kit)
        messages.register(self.app, self.kit)
        home.register(self.app)

    async def handle(self, request: Request) -> Response:
        """POST /slack/events: commands, interactions and events, as Slack sends them."""
        if not self._signing_secret:
            # Without a secret no signature can be checked: refuse rather than trust anyone.
            error = "Slack over HTTP needs SLACK_SIGNING_SECRET"
            return JSONResponse({"error": error}, status_code=503)
        with self.kit.work.acking():
            response = await self._http.handle(request)
        self.requests.labels(str(response.status_code)).inc()
        return response

    async def start_socket_mode(self) -> None:
        """Connect over Socket Mode with SLACK_APP_TOKEN (no public URL needed)."""
        app_token = self.services.settings.slack_app_token
        if app_token is None:
            raise SlackNotConfigured("Socket Mode needs SLACK_APP_TOKEN")
        self._socket = AckFirstSocketModeHandler(
            self.app, app_token.get_secret_value(), self.kit.work
        )
        await self._socket.connect_async()  # type: ignore[no-untyped-call]
        log.info("Slack connected over Socket Mode")

    async def stop(self) -> None:
        """Disconnect Socket Mode and let the work in flight finish."""
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        await self.kit.work.drain()

    async def drain(self) -> None:
        """Wait until the work started by earlier requests and case events is done."""
        await self.kit.work.drain()

    async def catch_up(self, older_than: timedelta = REPOST_AFTER) -> int:
        """Replay acked work left undone, then post the cards and messages an outage kept out.

        The runtime calls this every minute; returns how many cards and messages it posted.
        """
        replayed = await self.replay_inbox(older_than)
        cards = await self.threads.post_missing_threads(older_than)
        return replayed + cards + await self.threads.post_missing_messages(older_than)

    async def replay_inbox(self, older_than: timedelta = REPOST_AFTER) -> int:
        """Do the work of acked requests that a crash or an outage left undone."""
        replayed = 0
        for row in await self.kit.inbox.due(older_than):
            actor = await people.actor_for(self.kit, row.user_id)
            work = self._replay(row, actor) if actor else None
            try:
                await self.kit.inbox.tracked(row.id, work or _nothing())
            except Refusal:
                pass
            except Exception:
                log.exception("replaying Slack request %s failed; %s", row.id, "trying later")
                continue
            replayed += 1
        return replayed

    def _replay(self, row: SlackInbox, actor: Actor) -> Coroutine[Any, Any, None]:
        ctx = self.kit.context(actor)
        if row.kind == COMMAND:
            asker = Asker(self.client, row.user_id, row.payload.get("channel_id"))
            return commands.answer_command(self.kit, asker, {**row.payload, "inbox_id": row.id})
        if row.kind == THREAD_MESSAGE:
            asker = messages.thread_asker(self.kit, row.user_id, row.payload)
            return messages.write_on_case(self.kit, ctx, asker, row.payload)
        if row.kind == fax_form.FAX_FORM:
            return fax_form.replay(self.kit, ctx, row)
        plugin = plugins.for_kind(row.kind)
        if plugin is not None:
            return plugin.replay(self.kit, ctx, row)
        request, files = case_form.read_form_once(row.payload["view_id"], row.payload["values"])
        asker = Asker(self.client, row.user_id)
        return case_form.open_from_form(self.kit, ctx, asker, request, files)
