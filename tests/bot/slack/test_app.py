"""The front door itself: signatures and replay window, who is asking, and how errors look."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client import CollectorRegistry

from c2bot.bot.http import build_http_app
from c2bot.bot.services import Services
from c2bot.bot.slack import commands
from c2bot.bot.slack.app import SlackFrontDoor
from c2bot.storage.db import create_engine
from tests.bot.slack.conftest import FORM, SECRET, SlackDriver, effects, shown
from tests.conftest import World, test_settings
from tests.support.http import serve_asgi
from tests.support.slack import SlackStandIn, post_signed, slash_command_body


async def test_unsigned_request_is_refused(bot: SlackDriver, world: World) -> None:
    """A request without Slack's signature headers gets 401 and reaches no listener."""
    body = slash_command_body("/case", "list", "USTAFF")
    async with httpx.AsyncClient() as client:
        reply = await client.post(bot.url, content=body, headers={"Content-Type": FORM})
    await bot.door.drain()
    assert reply.status_code == 401
    assert bot.slack.calls_to("response_url") == []


async def test_stale_request_is_refused(bot: SlackDriver, world: World) -> None:
    """A correctly signed request from six minutes ago is outside the replay window: 401."""
    body = slash_command_body("/case", "list", "USTAFF")
    reply = await post_signed(bot.url, body, FORM, SECRET, timestamp=int(time.time()) - 360)
    assert reply.status_code == 401


async def test_wrongly_signed_request_is_refused(bot: SlackDriver, world: World) -> None:
    """A request signed with another secret gets 401."""
    body = slash_command_body("/case", "list", "USTAFF")
    reply = await post_signed(bot.url, body, FORM, "not-our-secret")
    assert reply.status_code == 401


async def test_signed_request_is_acked_at_once(bot: SlackDriver, world: World) -> None:
    """A signed command is answered 200 with an empty ack; the reply follows on response_url."""
    reply = await bot.command("help", "USTAFF")
    assert (reply.status_code, reply.content) == (200, b"")
    assert "case new" in shown((await bot.slack.wait_for("response_url")).params)


async def test_unknown_user_is_told_how_to_get_linked(bot: SlackDriver, world: World) -> None:
    """An unlinked Slack user gets the `c2bot user link` line with their own id, nothing else."""
    answer = await bot.answer_to("list", "UNOBODY")
    await bot.door.drain()
    assert answer["response_type"] == "ephemeral"
    assert "c2bot user link UNOBODY --role customer --account ACCOUNT_NUMBER" in shown(answer)
    assert [call.method for call in effects(bot.slack)] == ["response_url"]


async def test_unknown_user_in_a_dm_is_told_too(bot: SlackDriver, world: World) -> None:
    """A direct message from an unlinked user gets the instructions as an ephemeral message."""
    await bot.say("UNOBODY", "DUNOBODY", "hello?", channel_type="im")
    call = await bot.slack.wait_for("chat.postEphemeral")
    assert call.params["user"] == "UNOBODY" and call.params["channel"] == "DUNOBODY"
    assert "c2bot user link UNOBODY" in shown(call.params)


async def test_unknown_user_chatting_in_a_channel_is_left_alone(
    bot: SlackDriver, world: World
) -> None:
    """Channel chatter from an unlinked user is acknowledged and ignored."""
    reply = await bot.say("UNOBODY", "CSUPPORT", "morning all")
    await bot.door.drain()
    assert reply.status_code == 200
    assert effects(bot.slack) == []


async def test_unexpected_error_is_answered_with_a_reference(
    bot: SlackDriver,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug is logged with a short reference and the user is told only that reference."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(commands, "run_command", broken)
    answer = await bot.answer_to("list", "USTAFF")
    text = shown(answer)
    assert text.startswith("Sorry, something went wrong (ref ")
    reference = text.removeprefix("Sorry, something went wrong (ref ")[:8]
    assert any(reference in record.getMessage() for record in caplog.records)
    assert "database on fire" not in text


async def test_report_answers_through_the_grammar(bot: SlackDriver, world: World) -> None:
    """/report is registered and answers through the shared grammar."""
    answer = await bot.answer_to("summary week", "USTAFF", command="/report")
    assert "Call summary of all accounts" in shown(answer)


async def test_app_home_opened_is_handled_quietly(bot: SlackDriver, world: World) -> None:
    """app_home_opened is acknowledged without errors or calls."""
    event = {"type": "app_home_opened", "user": "UCUST", "channel": "DUCUST", "tab": "messages"}
    reply = await bot.event(event)
    await bot.door.drain()
    assert reply.status_code == 200
    assert effects(bot.slack) == []


async def test_bot_messages_are_ignored(bot: SlackDriver, world: World) -> None:
    """Messages from bots, ours or others', never reach a listener."""
    event = {
        "type": "message",
        "subtype": "bot_message",
        "bot_id": "BOTHER",
        "channel": "DUCUST",
        "channel_type": "im",
        "text": "beep",
        "ts": "1.000001",
    }
    reply = await bot.event(event)
    await bot.door.drain()
    assert reply.status_code == 200
    assert effects(bot.slack) == []


async def test_without_signing_secret_http_is_refused(
    database_url: str, slack: SlackStandIn
) -> None:
    """With only Socket Mode tokens, POST /slack/events answers 503 instead of trusting anyone."""
    settings = test_settings(
        database_url,
        SLACK_BOT_TOKEN="xoxb-c2bot-test",
        SLACK_APP_TOKEN="xapp-c2bot-test",
        SLACK_API_URL=slack.api_url,
    )
    engine = create_engine(settings.database_url)
    services = Services(settings=settings, engine=engine)
    door = SlackFrontDoor(services)
    try:
        async with serve_asgi(build_http_app(services, door, CollectorRegistry())) as base:
            body = slash_command_body("/case", "list", "USTAFF")
            reply = await post_signed(f"{base}/slack/events", body, FORM, "")
        assert reply.status_code == 503
        assert door.threads in services.notifier.listeners
    finally:
        await door.stop()
        await engine.dispose()


async def test_requests_are_counted_by_status_in_metrics(
    services: Services, slack: SlackStandIn, world: World
) -> None:
    """/metrics counts Slack requests by the status we answered (a 401 and a 200 here)."""
    registry = CollectorRegistry()
    door = SlackFrontDoor(services, registry)
    try:
        async with serve_asgi(build_http_app(services, door, registry)) as base:
            url = f"{base}/slack/events"
            body = slash_command_body("/case", "help", "USTAFF", response_url=slack.response_url())
            assert (await post_signed(url, body, FORM, "not-our-secret")).status_code == 401
            assert (await post_signed(url, body, FORM, SECRET)).status_code == 200
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"{base}/metrics")).text
    finally:
        await door.stop()
    assert 'c2bot_slack_requests_total{status="401"} 1.0' in metrics
    assert 'c2bot_slack_requests_total{status="200"} 1.0' in metrics
