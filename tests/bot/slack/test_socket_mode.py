"""Socket Mode end to end: the front door dials the stand-in's websocket as it dials Slack's,
acks every envelope on it, answers after the ack, and hangs up cleanly on stop."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import WSCloseCode

from c2bot.bot.services import Services
from c2bot.bot.slack.app import SlackFrontDoor
from c2bot.config.settings import Settings
from c2bot.handlers import cases
from c2bot.storage.db import create_engine, upgrade
from c2bot.storage.models import CaseType, Channel, Priority
from tests.bot.slack.conftest import BOT_TOKEN, SUPPORT, Json, shown, slack_settings
from tests.conftest import World, test_settings
from tests.support.slack import (
    SlackStandIn,
    block_actions_payload,
    event_payload,
    message_event,
    slash_command_payload,
)

APP_TOKEN = "xapp-test"


@pytest.fixture
def settings(database_url: str, slack: SlackStandIn) -> Settings:
    return slack_settings(database_url, slack, SLACK_APP_TOKEN=APP_TOKEN)


@pytest.fixture
async def connection(door: SlackFrontDoor, slack: SlackStandIn) -> AsyncIterator[str]:
    """The front door connected over Socket Mode: the stand-in's id for that connection."""
    await door.start_socket_mode()
    yield await slack.socket_connected()


async def command(slack: SlackStandIn, text: str, user: str) -> str:
    """Push `/case text` from user down the socket, with a fresh response_url; its envelope_id."""
    payload = slash_command_payload("/case", text, user, response_url=slack.response_url())
    return await slack.socket_send("slash_commands", payload)


async def answer(slack: SlackStandIn) -> Json:
    """What the app posted to a response_url (each test here sends one request that has one)."""
    return (await slack.wait_for("response_url")).params


def socket_mode_tasks() -> list[asyncio.Task[object]]:
    """Tasks of slack_sdk's Socket Mode client that are still running."""
    return [task for task in asyncio.all_tasks() if not task.done() and _runs_socket_mode(task)]


def _runs_socket_mode(task: asyncio.Task[object]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return "slack_sdk/socket_mode" in getattr(code, "co_filename", "")


def open_client_sessions() -> list[aiohttp.ClientSession]:
    """aiohttp client sessions still open (the Socket Mode client holds one while connected)."""
    sessions = (o for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession))
    return [session for session in sessions if not session.closed]


async def test_connects_with_the_app_token_and_answers_pings(
    door: SlackFrontDoor, slack: SlackStandIn, connection: str
) -> None:
    """The door opens one connection with SLACK_APP_TOKEN, takes its hello, pongs our pings."""
    opened = slack.calls_to("apps.connections.open")
    assert [call.token for call in opened] == [APP_TOKEN]
    await slack.socket_ping(connection)
    assert slack.socket_replies == []  # a hello asks for no answer


async def test_case_list_is_acked_then_answered(
    door: SlackFrontDoor, slack: SlackStandIn, services: Services, world: World, connection: str
) -> None:
    """`/case list` over the socket is acked by envelope_id, then answered at response_url."""
    ctx = services.context(world.customer, Channel.SLACK)
    new = cases.NewCase(CaseType.TECHNICAL, Priority.HIGH, "Calls drop", "Every call drops")
    view = await cases.open_case(ctx, new)
    await door.drain()

    envelope_id = await command(slack, "list", "UCUST")

    ack = await slack.socket_ack(envelope_id)
    assert ack.connection_id == connection
    assert ack.message == {"envelope_id": envelope_id}  # an empty ack: the answer comes later
    listed = shown(await answer(slack))
    assert f"#{view.number}" in listed and "Calls drop" in listed


async def test_unlinked_user_is_told_how_to_get_linked(
    door: SlackFrontDoor, slack: SlackStandIn, world: World, connection: str
) -> None:
    """An unlinked user's command is acked and answered with the `c2bot user link` line."""
    envelope_id = await command(slack, "list", "UNOBODY")

    await slack.socket_ack(envelope_id)
    told = await answer(slack)
    assert told["response_type"] == "ephemeral"
    assert "c2bot user link UNOBODY --role customer" in shown(told)


async def test_interactive_envelope_is_acked_and_answered(
    door: SlackFrontDoor, slack: SlackStandIn, world: World, connection: str
) -> None:
    """A button press arrives as an "interactive" envelope: acked, then answered at response_url."""
    press = block_actions_payload(
        "UNOBODY",
        "case_close",
        "1",
        SUPPORT,
        "1764100000.000100",
        response_url=slack.response_url(),
    )
    envelope_id = await slack.socket_send("interactive", press)

    assert (await slack.socket_ack(envelope_id)).payload is None
    assert "c2bot user link UNOBODY" in shown(await answer(slack))


async def test_events_api_envelope_is_acked_and_answered(
    door: SlackFrontDoor, slack: SlackStandIn, world: World, connection: str
) -> None:
    """A direct message arrives as an "events_api" envelope: acked, then answered ephemerally."""
    event = message_event("UNOBODY", "DUNOBODY", "hello?", "1764100000.000200", channel_type="im")
    envelope_id = await slack.socket_send("events_api", event_payload(event))

    assert (await slack.socket_ack(envelope_id)).payload is None
    told = await slack.wait_for("chat.postEphemeral")
    assert told.params["user"] == "UNOBODY" and told.params["channel"] == "DUNOBODY"
    assert "c2bot user link UNOBODY" in shown(told.params)


async def test_disconnect_is_followed_by_a_new_connection(
    door: SlackFrontDoor, slack: SlackStandIn, world: World, connection: str
) -> None:
    """Slack's "disconnect" makes the door dial a fresh URL, hang up the old one, and go on."""
    await slack.socket_disconnect("refresh_requested")

    assert await slack.socket_closed(connection) == WSCloseCode.OK
    fresh = await slack.socket_connected()
    assert fresh != connection
    assert [call.token for call in slack.calls_to("apps.connections.open")] == [APP_TOKEN] * 2
    envelope_id = await command(slack, "list", "UNOBODY")
    assert (await slack.socket_ack(envelope_id)).connection_id == fresh
    assert "c2bot user link UNOBODY" in shown(await answer(slack))


async def test_stop_closes_the_websocket_cleanly(
    door: SlackFrontDoor, slack: SlackStandIn, connection: str
) -> None:
    """door.stop() sends a normal close, ends the client's tasks, and closes its HTTP session."""
    assert socket_mode_tasks() and open_client_sessions()

    await door.stop()

    assert await slack.socket_closed(connection) == WSCloseCode.OK
    await asyncio.sleep(0)  # let the cancelled client tasks run their last step
    assert socket_mode_tasks() == []
    assert open_client_sessions() == []


async def test_socket_mode_needs_no_signing_secret(database_url: str, slack: SlackStandIn) -> None:
    """With only the bot and app tokens (no signing secret), commands are acked and answered."""
    settings = test_settings(
        database_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=slack.api_url,
    )
    engine = create_engine(settings.database_url)
    await upgrade(engine)
    door = SlackFrontDoor(Services(settings=settings, engine=engine))
    try:
        await door.start_socket_mode()
        await slack.socket_connected()
        envelope_id = await command(slack, "list", "UNOBODY")
        await slack.socket_ack(envelope_id)
        assert "c2bot user link UNOBODY" in shown(await answer(slack))
    finally:
        await door.stop()
        await engine.dispose()
