"""Fixtures for the Slack front door: the Web API stand-in, the app served on loopback, and a
driver that sends signed requests to it the way Slack does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from c2bot.bot.http import build_http_app
from c2bot.bot.services import Services
from c2bot.bot.slack.app import SlackFrontDoor
from c2bot.config.settings import Settings
from c2bot.handlers import cases
from c2bot.handlers.context import Actor
from c2bot.storage.models import Case, CaseType, Channel, Priority
from tests.conftest import test_settings
from tests.support.http import serve_asgi
from tests.support.slack import (
    SlackCall,
    SlackStandIn,
    block_actions_payload,
    event_body,
    interaction_body,
    message_event,
    message_shortcut_payload,
    post_signed,
    slash_command_body,
    view_submission_payload,
)

SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-c2bot-test"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
SUPPORT = "CSUPPORT"

Json = dict[str, Any]


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(BOT_TOKEN) as standin:
        yield standin


def slack_settings(database_url: str, slack: SlackStandIn, **extra: object) -> Settings:
    """Test settings with Slack pointed at the stand-in (plus any extra settings)."""
    return test_settings(
        database_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack.api_url,
        **extra,
    )


@pytest.fixture
def settings(database_url: str, slack: SlackStandIn) -> Settings:
    return slack_settings(database_url, slack)


@pytest.fixture
async def door(services: Services) -> AsyncIterator[SlackFrontDoor]:
    front_door = SlackFrontDoor(services)
    try:
        yield front_door
    finally:
        await front_door.stop()


@dataclass(frozen=True)
class CaseThreads:
    """Where an opened case lives in Slack."""

    number: int
    ts: str
    dm_channel: str | None
    dm_ts: str | None


@dataclass
class SlackDriver:
    """Plays Slack: sends signed commands, interactions and events to /slack/events."""

    url: str
    slack: SlackStandIn
    door: SlackFrontDoor
    services: Services

    async def command(
        self, text: str, user: str, command: str = "/case", trigger_id: str | None = None
    ) -> httpx.Response:
        response_url = self.slack.response_url()
        body = slash_command_body(
            command, text, user, trigger_id=trigger_id, response_url=response_url
        )
        return await post_signed(self.url, body, FORM, SECRET)

    async def answer_to(self, text: str, user: str, command: str = "/case") -> Json:
        """Run a slash command and return what it posted to its response_url."""
        before = len(self.slack.calls_to("response_url"))
        reply = await self.command(text, user, command)
        assert reply.status_code == 200
        return (await self.next_call("response_url", before)).params

    async def next_call(self, method: str, before: int) -> SlackCall:
        """The first call to method recorded after the first `before` ones."""

        def is_new(call: SlackCall) -> bool:
            return any(call is later for later in self.slack.calls_to(method)[before:])

        return await self.slack.wait_for(method, is_new)

    async def interact(self, payload: Json) -> httpx.Response:
        return await post_signed(self.url, interaction_body(payload), FORM, SECRET)

    async def press(
        self, user: str, action_id: str, value: str, threads: CaseThreads, option: str | None = None
    ) -> Json:
        """Press a card button (or choose a select option) and wait for what follows."""
        response_url = self.slack.response_url()
        payload = block_actions_payload(
            user,
            action_id,
            value,
            SUPPORT,
            threads.ts,
            selected_option_value=option,
            response_url=response_url,
        )
        reply = await self.interact(payload)
        assert reply.status_code == 200
        await self.door.drain()
        return payload

    async def submit(
        self, user: str, callback_id: str, values: Json, metadata: str = ""
    ) -> httpx.Response:
        payload = view_submission_payload(user, callback_id, values, metadata)
        return await self.interact(payload)

    async def shortcut(self, user: str, text: str, ts: str, thread_ts: str) -> httpx.Response:
        response_url = self.slack.response_url()
        payload = message_shortcut_payload(
            user, "case_note", SUPPORT, ts, thread_ts, text, response_url=response_url
        )
        return await self.interact(payload)

    async def say(
        self,
        user: str,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        files: list[Json] | None = None,
        channel_type: str = "channel",
    ) -> httpx.Response:
        event = message_event(user, channel, text, new_ts(), thread_ts, files, channel_type)
        return await self.event(event)

    async def event(self, event: Json) -> httpx.Response:
        return await post_signed(self.url, event_body(event), JSON, SECRET)

    async def open_case(self, actor: Actor, **overrides: Any) -> CaseThreads:
        """Open a case through the domain and wait for its card (and DM copy) to be posted."""
        values: dict[str, Any] = {
            "type": CaseType.TECHNICAL,
            "priority": Priority.HIGH,
            "subject": "Calls drop",
            "description": "Since 10:00 every call drops after 30 s",
        }
        values.update(overrides)
        ctx = self.services.context(actor, Channel.SLACK)
        view = await cases.open_case(ctx, cases.NewCase(**values))
        await self.door.drain()
        return await self.threads(view.number)

    async def threads(self, number: int) -> CaseThreads:
        async with self.services.sessions() as session:
            case = await session.get(Case, number)
            assert case is not None and case.slack_ts is not None
            return CaseThreads(number, case.slack_ts, case.customer_dm_channel, case.customer_dm_ts)

    async def last_case(self) -> Case:
        async with self.services.sessions() as session:
            case = await session.scalar(select(Case).order_by(Case.id.desc()).limit(1))
            assert case is not None
            return case


def effects(slack: SlackStandIn, since: int = 0) -> list[SlackCall]:
    """The calls that show something (auth.test is bolt asking who it is), after `since`."""
    return [call for call in slack.calls[since:] if call.method != "auth.test"]


def shown(params: Json) -> str:
    """Every text a message shows (its text, and the texts in its blocks), one per line."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(params)
    return "\n".join(found)


_ts_counter = iter(range(1, 1_000_000))


def new_ts() -> str:
    """A fresh, increasing Slack message ts."""
    return f"{int(time.time())}.{next(_ts_counter):06d}"


@pytest.fixture
async def bot(
    door: SlackFrontDoor, slack: SlackStandIn, services: Services
) -> AsyncIterator[SlackDriver]:
    app = build_http_app(services, door, CollectorRegistry())
    async with serve_asgi(app) as base:
        yield SlackDriver(f"{base}/slack/events", slack, door, services)
