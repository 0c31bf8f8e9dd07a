"""Tests for the Slack Web API stand-in and the signed-request builders, via the real slack_sdk."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.support.slack import (
    SlackStandIn,
    block_actions_payload,
    event_body,
    interaction_body,
    message_event,
    message_shortcut_payload,
    post_signed,
    sign,
    slash_command_body,
    view_submission_payload,
)

SECRET = "test-signing-secret"
FORM = "application/x-www-form-urlencoded"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Fax sent*"}}]


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as standin:
        yield standin


@pytest.fixture
async def client(slack: SlackStandIn) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, session=session)


async def test_post_message_is_recorded_with_unique_increasing_ts(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """chat.postMessage is recorded with its token and answered with a fresh, increasing ts."""
    first = await client.chat_postMessage(channel="C1", text="one")
    second = await client.chat_postMessage(channel="C1", text="two", thread_ts=first["ts"])

    calls = slack.calls_to("chat.postMessage")
    assert [call.params["text"] for call in calls] == ["one", "two"]
    assert calls[0].token == "xoxb-test-token"
    assert float(second["ts"]) > float(first["ts"])
    assert second["message"]["thread_ts"] == first["ts"]
    assert second["message"]["user"] == "UBOT"
    assert second["message"]["bot_id"] == "BBOT"


async def test_blocks_arrive_decoded_from_json_and_form_bodies(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """blocks sent as a JSON body or as a JSON string in a form body are recorded as objects."""
    await client.chat_postMessage(channel="C1", text="json", blocks=BLOCKS)
    form = {"channel": "C1", "text": "form", "blocks": json.dumps(BLOCKS)}
    await client.api_call("chat.postMessage", data=form)

    assert [call.params["blocks"] for call in slack.calls_to("chat.postMessage")] == [BLOCKS] * 2


async def test_wait_for_returns_a_matching_call_made_later(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """wait_for wakes up when a call matching the predicate arrives after it started waiting."""
    waiter = asyncio.create_task(
        slack.wait_for("chat.postMessage", lambda call: call.params["text"] == "later")
    )
    await client.chat_postMessage(channel="C1", text="sooner")
    await client.chat_postMessage(channel="C1", text="later")

    assert (await waiter).params["text"] == "later"


async def test_wait_for_times_out_listing_recorded_methods(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """wait_for raises AssertionError naming the recorded methods when nothing matches."""
    await client.auth_test()

    with pytest.raises(AssertionError, match=r"chat\.postMessage.*'auth\.test'"):
        await slack.wait_for("chat.postMessage", timeout=0.05)


async def test_files_upload_v2_content_arrives_in_uploads(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """files_upload_v2 runs its three steps against the stand-in and the bytes land in uploads."""
    response = await client.files_upload_v2(
        channel="C1",
        content=b"%PDF-1.4 fax",
        filename="fax.pdf",
        title="Inbound fax",
        initial_comment="New fax",
        thread_ts="1764100000.000100",
    )

    upload = slack.uploads[response["file"]["id"]]
    assert upload.data == b"%PDF-1.4 fax"
    assert (upload.filename, upload.title) == ("fax.pdf", "Inbound fax")
    assert (upload.channel_id, upload.thread_ts) == ("C1", "1764100000.000100")
    assert upload.initial_comment == "New fax"


async def test_hosted_file_downloads_only_with_the_bot_token(slack: SlackStandIn) -> None:
    """url_private serves the bytes with the bot token and Slack's sign-in page without it."""
    file = slack.host_file("scan.tiff", b"II*\x00", "image/tiff")

    async with httpx.AsyncClient() as http:
        authorized = await http.get(
            file["url_private"], headers={"Authorization": f"Bearer {slack.bot_token}"}
        )
        anonymous = await http.get(file["url_private_download"])

    assert authorized.content == b"II*\x00"
    assert authorized.headers["content-type"] == "image/tiff"
    assert file["size"] == 4
    assert anonymous.status_code == 200
    assert anonymous.headers["content-type"].startswith("text/html")


async def test_fail_next_fails_exactly_one_call(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    """fail_next makes the next call fail with the given error and later calls succeed."""
    slack.fail_next("chat.postMessage", "channel_not_found")
    slack.fail_next("reactions.add")

    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel="C404", text="hi")
    with pytest.raises(SlackApiError) as limited:
        await client.reactions_add(channel="C1", timestamp="1.2", name="fax")

    assert failed.value.response["error"] == "channel_not_found"
    assert limited.value.response.status_code == 429
    assert (await client.chat_postMessage(channel="C1", text="hi"))["ok"]


async def test_other_methods_answer_like_slack(slack: SlackStandIn, client: AsyncWebClient) -> None:
    """users.info, conversations.open, views.open and unknown methods answer with Slack's shapes."""
    slack.users["U1"] = {"email": "ann@example.com", "real_name": "Ann Example"}

    user = await client.users_info(user="U1")
    dm = await client.conversations_open(users=["U1", "U2"])
    view = await client.views_open(trigger_id="t", view={"type": "modal", "callback_id": "fax"})
    with pytest.raises(SlackApiError) as unknown:
        await client.api_call("no.suchMethod")

    assert user["user"]["profile"]["email"] == "ann@example.com"
    assert dm["channel"]["id"] == "DU1"
    assert view["view"]["callback_id"] == "fax"
    assert view["view"]["id"].startswith("V")
    assert unknown.value.response["error"] == "unknown_method"


async def test_response_url_posts_are_recorded(slack: SlackStandIn) -> None:
    """A JSON post to a response_url is recorded as method "response_url" and answered ok."""
    url = slack.response_url()

    async with httpx.AsyncClient() as http:
        reply = await http.post(url, json={"text": "Done", "response_type": "ephemeral"})

    call = await slack.wait_for("response_url")
    assert reply.json() == {"ok": True}
    assert call.params == {"text": "Done", "response_type": "ephemeral"}
    assert call.token is None


def test_sign_verifies_with_slack_sdk() -> None:
    """sign() makes headers slack_sdk's SignatureVerifier accepts, and only for its secret."""
    body = slash_command_body("/fax", "status", "U1")
    headers = sign(body, SECRET, content_type=FORM)

    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("other-secret").is_valid_request(body, headers)
    assert not SignatureVerifier(SECRET).is_valid_request(body, sign(body, SECRET, 1_000_000))
    assert headers["Content-Type"] == FORM


@pytest.fixture
async def bolt(slack: SlackStandIn) -> AsyncIterator[tuple[AsyncApp, str]]:
    app = AsyncApp(
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        signing_secret=SECRET,
    )
    runner = web.AppRunner(app.web_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield app, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    await runner.cleanup()


async def test_builders_are_accepted_by_bolt(
    slack: SlackStandIn, bolt: tuple[AsyncApp, str]
) -> None:
    """Signed builder bodies reach the matching Bolt listeners with the fields they read."""
    app, url = bolt
    seen: dict[str, Any] = {}

    @app.command("/fax")
    async def on_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(f"fax {command['text']}")

    @app.action("resend")
    async def on_action(ack: Any, body: dict[str, Any]) -> None:
        seen["action"] = (body["actions"][0]["value"], body["container"]["thread_ts"])
        await ack()

    @app.view("send_fax")
    async def on_view(ack: Any, view: dict[str, Any]) -> None:
        seen["view"] = (view["state"]["values"], view["private_metadata"])
        await ack()

    @app.shortcut("fax_this")
    async def on_shortcut(ack: Any, shortcut: dict[str, Any]) -> None:
        seen["shortcut"] = shortcut["message"]["text"]
        await ack()

    @app.message("hello")
    async def on_message(message: dict[str, Any], say: Any) -> None:
        await say(text="hi", thread_ts=message["ts"])

    values = {"number": {"to": {"type": "plain_text_input", "value": "+441234"}}}
    now = f"{time.time():.6f}"
    requests = [
        (slash_command_body("/fax", "status", "U1", response_url=slack.response_url()), FORM),
        (
            interaction_body(block_actions_payload("U1", "resend", "job-7", "C1", "1.1", "1.0")),
            FORM,
        ),
        (interaction_body(view_submission_payload("U1", "send_fax", values, "job-7")), FORM),
        (
            interaction_body(message_shortcut_payload("U1", "fax_this", "C1", "1.1", None, "x")),
            FORM,
        ),
        (event_body(message_event("U1", "C1", "hello", now)), "application/json"),
    ]
    statuses = [(await post_signed(url, body, kind, SECRET)).status_code for body, kind in requests]

    reply = await slack.wait_for("response_url")
    said = await slack.wait_for("chat.postMessage")
    assert statuses == [200] * 5
    assert reply.params["text"] == "fax status"
    assert (said.params["channel"], said.params["thread_ts"]) == ("C1", now)
    assert seen == {
        "action": ("job-7", "1.0"),
        "view": (values, "job-7"),
        "shortcut": "x",
    }
