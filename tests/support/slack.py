"""A loopback stand-in for the Slack Web API, and builders for signed requests from Slack.

Integration tests point the app's ``AsyncWebClient`` at ``SlackStandIn.api_url`` and assert on
the calls it records; they drive the app with bodies from the builders below, signed like Slack's.
The stand-in also speaks Socket Mode: ``apps.connections.open`` hands out a websocket URL on it,
and tests push envelopes down that websocket and wait for the app's acks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import mimetypes
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, quote, urlencode

import httpx
from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
BOT_NAME = "c2bot"
TEAM_ID = "T0001"
TEAM_DOMAIN = "c2test"
API_APP_ID = "A0C2BOT"
VERIFICATION_TOKEN = "legacy-verification-token"
DEFAULT_BOT_TOKEN = "xoxb-test-token"
# The discard port on loopback: a test that forgets to pass a response_url fails fast instead of
# reaching out to the real hooks.slack.com.
UNUSED_RESPONSE_URL = "http://127.0.0.1:9/response/unused"

# Parameters slack_sdk sends as JSON strings inside form or query bodies.
_JSON_PARAMS = frozenset({"blocks", "view", "attachments", "files", "metadata", "unfurls"})
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_FIRST_TS_MICROS = 1_764_100_000_000_000
_LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"
# What Socket Mode frames name as the Slack host serving the connection (debug_info.host).
_SOCKET_HOST = "applink-standin"
# Interactive payloads whose ack may carry a response (errors for a modal, options for a select).
_INTERACTIVE_WITH_RESPONSE = frozenset({"view_submission", "block_suggestion"})

Json = dict[str, Any]


@dataclass(frozen=True)
class SlackCall:
    """One recorded Web API call, or one post to a response_url (method "response_url")."""

    method: str
    params: Json
    token: str | None


@dataclass(frozen=True)
class SocketReply:
    """One text frame the app sent over a Socket Mode websocket; an ack names its envelope."""

    connection_id: str
    text: str

    @property
    def message(self) -> Json:
        """The frame as JSON ({} when it is not a JSON object)."""
        message = _maybe_json(self.text)
        return message if isinstance(message, dict) else {}

    @property
    def envelope_id(self) -> str | None:
        envelope_id = self.message.get("envelope_id")
        return str(envelope_id) if envelope_id is not None else None

    @property
    def payload(self) -> Json | None:
        """What the ack answers with (a slash command's reply, a modal's errors), if anything."""
        payload = self.message.get("payload")
        return payload if isinstance(payload, dict) else None


@dataclass(frozen=True)
class UploadedFile:
    """A file the app shared through files.getUploadURLExternal / completeUploadExternal."""

    file_id: str
    filename: str
    title: str
    data: bytes
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None


@dataclass(frozen=True)
class _HostedFile:
    file_id: str
    name: str
    title: str
    mimetype: str
    data: bytes


MethodHandler = Callable[[SlackCall], Json]


class SlackStandIn:
    """An aiohttp server on loopback that answers Slack Web API calls and records them."""

    def __init__(self, bot_token: str = DEFAULT_BOT_TOKEN) -> None:
        self.bot_token = bot_token
        self.calls: list[SlackCall] = []
        self.users: dict[str, dict[str, str]] = {}
        self.uploads: dict[str, UploadedFile] = {}
        self._hosted: dict[str, _HostedFile] = {}
        self._upload_names: dict[str, str] = {}
        self._upload_bytes: dict[str, bytes] = {}
        self._response_ids: set[str] = set()
        self._failures: dict[str, list[tuple[str, int]]] = {}
        self._stubs: dict[str, Json] = {}
        self._ids = itertools.count(1)
        self._ts_count = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.socket_replies: list[SocketReply] = []
        self.socket_close_codes: dict[str, int | None] = {}
        self._socket_tickets: set[str] = set()
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._pongs: dict[bytes, asyncio.Future[None]] = {}
        self._handlers: dict[str, MethodHandler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.update": self._update_message,
            "chat.delete": self._delete_message,
            "views.open": self._show_view,
            "views.update": self._show_view,
            "views.push": self._show_view,
            "conversations.open": self._open_conversation,
            "users.info": self._user_info,
            "users.lookupByEmail": self._lookup_user_by_email,
            "reactions.add": _ok,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "files.info": self._file_info,
            "apps.connections.open": self._open_connection,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._runner = web.AppRunner(self._build_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Close the server and any connections still open to it."""
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                # slack_sdk sends GET for a few read methods (users.info, files.info, ...).
                web.get("/api/{method}", self._on_api_call),
                web.post("/api/{method}", self._on_api_call),
                web.post("/upload/{file_id}", self._on_upload),
                web.get("/files/{file_id}/{tail:.+}", self._on_download),
                web.post("/response/{response_id}", self._on_response_url),
                web.get("/socket/{connection_id}", self._on_socket),
            ]
        )
        # Without this, cleanup would wait for open websockets to end on their own.
        app.on_shutdown.append(self._close_sockets)
        return app

    @property
    def base_url(self) -> str:
        """Where the stand-in listens, e.g. "http://127.0.0.1:PORT"."""
        if self._port is None:
            raise RuntimeError("SlackStandIn is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """The Web API base_url to give to AsyncWebClient / AsyncApp."""
        return f"{self.base_url}/api/"

    # -- what tests call ---------------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        """The recorded calls to one method, oldest first."""
        return [call for call in self.calls if call.method == method]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[SlackCall], bool] | None = None,
        timeout: float = 5.0,
    ) -> SlackCall:
        """Return the first call to method matching predicate, waiting up to timeout seconds."""

        def first_match() -> SlackCall | None:
            matches = (c for c in self.calls_to(method) if predicate is None or predicate(c))
            return next(matches, None)

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: first_match() is not None)
        except TimeoutError:
            recorded = [call.method for call in self.calls]
            raise AssertionError(
                f"no matching {method} call within {timeout}s; recorded: {recorded}"
            ) from None
        match = first_match()
        assert match is not None
        return match

    def fail_next(self, method: str, error: str = "ratelimited", retry_after: int = 1) -> None:
        """Answer the next call to method with {"ok": false, "error": error}.

        "ratelimited" comes with HTTP 429 and Retry-After, as Slack sends it.
        """
        self._failures.setdefault(method, []).append((error, retry_after))

    def stub(self, method: str, response: Json) -> None:
        """Answer every later call to method with response (for methods without a built-in)."""
        self._stubs[method] = response

    def host_file(self, name: str, data: bytes, mimetype: str = "application/octet-stream") -> Json:
        """Host a file "on Slack" and return its Slack file object (url_private needs the token)."""
        hosted = _HostedFile(self._new_id("F"), name, name, mimetype, data)
        self._hosted[hosted.file_id] = hosted
        return self._file_object(hosted)

    def response_url(self) -> str:
        """A fresh response_url; posts to it are recorded as method "response_url"."""
        response_id = self._new_id("R")
        self._response_ids.add(response_id)
        return f"{self.base_url}/response/{response_id}"

    # -- Socket Mode, what tests call ---------------------------------------------------------

    async def socket_connected(self, timeout: float = 5.0) -> str:
        """Wait until the app holds an open Socket Mode connection; return the newest one's id.

        A connection counts once it was sent its hello, as Slack sends one on every connect.
        """
        await self._wait_until(lambda: bool(self._sockets), timeout, "no Socket Mode connection")
        return next(reversed(self._sockets))

    async def socket_send(self, kind: str, payload: Json, connection_id: str | None = None) -> str:
        """Push an envelope to the app as Slack does; return its envelope_id.

        kind is "slash_commands" (payload: `slash_command_payload`), "interactive" (a payload
        such as `block_actions_payload`) or "events_api" (payload: `event_payload`).
        """
        envelope_id = str(uuid.uuid4())
        envelope: Json = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": _accepts_response_payload(kind, payload),
        }
        if kind == "events_api":
            envelope |= {"retry_attempt": 0, "retry_reason": ""}
        await self._socket(connection_id).send_json(envelope)
        return envelope_id

    async def socket_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketReply:
        """Wait for the app's ack of envelope_id ({"envelope_id": ..., "payload": ...})."""

        def ack() -> SocketReply | None:
            return next((r for r in self.socket_replies if r.envelope_id == envelope_id), None)

        await self._wait_until(lambda: ack() is not None, timeout, f"no ack of {envelope_id}")
        found = ack()
        assert found is not None
        return found

    async def socket_disconnect(
        self, reason: str = "refresh_requested", connection_id: str | None = None
    ) -> None:
        """Tell the app to reconnect, as Slack does before it recycles a connection."""
        frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": _SOCKET_HOST}}
        await self._socket(connection_id).send_json(frame)

    async def socket_ping(self, connection_id: str | None = None, timeout: float = 5.0) -> None:
        """Ping the app as Slack does, and wait for its pong echoing the ping's data."""
        data = f"standin-ping:{uuid.uuid4().hex}".encode()
        pong = self._pongs[data] = asyncio.get_running_loop().create_future()
        try:
            await self._socket(connection_id).ping(data)
            async with asyncio.timeout(timeout):
                await pong
        except TimeoutError:
            raise AssertionError(f"no pong within {timeout}s") from None
        finally:
            self._pongs.pop(data, None)

    async def socket_closed(self, connection_id: str, timeout: float = 5.0) -> int | None:
        """Wait until connection_id is closed; return the close code the app sent, if any."""
        await self._wait_until(
            lambda: connection_id in self.socket_close_codes,
            timeout,
            f"{connection_id} is still open",
        )
        return self.socket_close_codes[connection_id]

    def _socket(self, connection_id: str | None) -> web.WebSocketResponse:
        if connection_id is None and self._sockets:
            return self._sockets[next(reversed(self._sockets))]
        if connection_id not in self._sockets:
            raise AssertionError(f"no open Socket Mode connection {connection_id or ''}")
        return self._sockets[connection_id]

    async def _wait_until(self, ready: Callable[[], bool], timeout: float, failure: str) -> None:
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(ready)
        except TimeoutError:
            raise AssertionError(f"{failure} within {timeout}s") from None

    # -- HTTP endpoints ----------------------------------------------------------------------

    async def _on_api_call(self, request: web.Request) -> web.Response:
        params = await _read_params(request)
        param_token = params.pop("token", None)
        token = _bearer_token(request) or (str(param_token) if param_token else None)
        call = SlackCall(request.match_info["method"], _decode_json_params(params), token)
        await self._record(call)
        return self._answer(call)

    async def _on_upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self._upload_names:
            return web.Response(status=404, text="file_not_found")
        self._upload_bytes[file_id] = await _read_upload(request)
        return web.Response(text=f"OK - {len(self._upload_bytes[file_id])}")

    async def _on_download(self, request: web.Request) -> web.Response:
        hosted = self._hosted.get(request.match_info["file_id"])
        if hosted is None:
            return web.Response(status=404, text="file_not_found")
        if _bearer_token(request) != self.bot_token:
            # Slack answers a missing or wrong token with its sign-in page, not with an error.
            return web.Response(text=_LOGIN_PAGE, content_type="text/html")
        return web.Response(body=hosted.data, content_type=hosted.mimetype)

    async def _on_response_url(self, request: web.Request) -> web.Response:
        if request.match_info["response_id"] not in self._response_ids:
            return web.Response(status=404, text="no_such_response_url")
        await self._record(SlackCall("response_url", await request.json(), None))
        return web.json_response({"ok": True})

    async def _on_socket(self, request: web.Request) -> web.StreamResponse:
        connection_id = request.match_info["connection_id"]
        if connection_id not in self._socket_tickets:
            # Each URL from apps.connections.open is a ticket good for one connection.
            return web.Response(status=404, text="invalid_ticket")
        self._socket_tickets.discard(connection_id)
        # Pings are answered below rather than by aiohttp, so pongs to ours can be seen.
        socket = web.WebSocketResponse(autoping=False)
        await socket.prepare(request)
        await socket.send_json(_hello())
        async with self._changed:
            self._sockets[connection_id] = socket
            self._changed.notify_all()
        try:
            async for frame in socket:  # ends on the app's close frame, answered by aiohttp
                await self._on_socket_frame(connection_id, socket, frame)
        finally:
            async with self._changed:
                del self._sockets[connection_id]
                self.socket_close_codes[connection_id] = socket.close_code
                self._changed.notify_all()
        return socket

    async def _on_socket_frame(
        self, connection_id: str, socket: web.WebSocketResponse, frame: WSMessage
    ) -> None:
        if frame.type is WSMsgType.TEXT:
            async with self._changed:
                self.socket_replies.append(SocketReply(connection_id, frame.data))
                self._changed.notify_all()
        elif frame.type is WSMsgType.PING:
            # slack_sdk reads the time it sent back from the echo: its liveness check.
            await socket.pong(frame.data)
        elif frame.type is WSMsgType.PONG:
            pong = self._pongs.get(bytes(frame.data))
            if pong is not None and not pong.done():
                pong.set_result(None)

    async def _close_sockets(self, app: web.Application) -> None:
        for socket in list(self._sockets.values()):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def _record(self, call: SlackCall) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def _answer(self, call: SlackCall) -> web.Response:
        failures = self._failures.get(call.method)
        if failures:
            return _failure(*failures.pop(0))
        if call.method in self._stubs:
            return web.json_response(self._stubs[call.method])
        handler = self._handlers.get(call.method, _unknown_method)
        return web.json_response(handler(call))

    # -- Web API methods ---------------------------------------------------------------------

    def _auth_test(self, call: SlackCall) -> Json:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "C2 Test",
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, call: SlackCall) -> Json:
        ts = self._next_ts()
        message = _message(call.params, ts)
        return {"ok": True, "channel": call.params.get("channel"), "ts": ts, "message": message}

    def _post_ephemeral(self, call: SlackCall) -> Json:
        return {"ok": True, "message_ts": self._next_ts()}

    def _update_message(self, call: SlackCall) -> Json:
        ts = call.params.get("ts")
        channel = call.params.get("channel")
        message = _message(call.params, ts)
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message["text"],
            "message": message,
        }

    def _delete_message(self, call: SlackCall) -> Json:
        return {"ok": True, "channel": call.params.get("channel"), "ts": call.params.get("ts")}

    def _show_view(self, call: SlackCall) -> Json:
        view = call.params.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = call.params.get("view_id") or self._new_id("V")
        defaults = {"team_id": TEAM_ID, "app_id": API_APP_ID, "bot_id": BOT_ID, "hash": view_id}
        return {"ok": True, "view": {**defaults, "state": {"values": {}}, **view, "id": view_id}}

    def _open_conversation(self, call: SlackCall) -> Json:
        if call.params.get("channel"):
            return {"ok": True, "channel": {"id": call.params["channel"]}}
        first_user = str(call.params.get("users", "")).split(",")[0]
        if not first_user:
            return {"ok": False, "error": "users_list_not_supplied"}
        return {"ok": True, "channel": {"id": f"D{first_user}"}}

    def _user_info(self, call: SlackCall) -> Json:
        user_id = str(call.params.get("user", ""))
        if user_id not in self.users:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": _user_object(user_id, self.users[user_id])}

    def _lookup_user_by_email(self, call: SlackCall) -> Json:
        email = str(call.params.get("email", "")).lower()
        for user_id, entry in self.users.items():
            if entry.get("email", "").lower() == email:
                return {"ok": True, "user": _user_object(user_id, entry)}
        return {"ok": False, "error": "users_not_found"}

    def _get_upload_url(self, call: SlackCall) -> Json:
        filename = str(call.params.get("filename") or "")
        if not filename:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = self._new_id("F")
        self._upload_names[file_id] = filename
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _complete_upload(self, call: SlackCall) -> Json:
        entries = call.params.get("files")
        if not isinstance(entries, list) or not entries:
            return {"ok": False, "error": "invalid_arguments"}
        if not all(isinstance(e, dict) and e.get("id") in self._upload_bytes for e in entries):
            return {"ok": False, "error": "file_not_found"}
        uploads = [self._share_upload(entry, call.params) for entry in entries]
        return {"ok": True, "files": [self._file_object(self._hosted[u.file_id]) for u in uploads]}

    def _share_upload(self, entry: Json, params: Json) -> UploadedFile:
        file_id = str(entry["id"])
        filename = self._upload_names.pop(file_id)
        upload = UploadedFile(
            file_id=file_id,
            filename=filename,
            title=str(entry.get("title") or filename),
            data=self._upload_bytes.pop(file_id),
            channel_id=_channel_of(params),
            thread_ts=params.get("thread_ts"),
            initial_comment=params.get("initial_comment"),
        )
        self.uploads[file_id] = upload
        mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self._hosted[file_id] = _HostedFile(file_id, filename, upload.title, mimetype, upload.data)
        return upload

    def _open_connection(self, call: SlackCall) -> Json:
        if not (call.token or "").startswith("xapp-"):
            # Socket Mode takes the app-level token, never the bot token.
            return {"ok": False, "error": "not_allowed_token_type"}
        connection_id = self._new_id("W")
        self._socket_tickets.add(connection_id)
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/socket/{connection_id}"}

    def _file_info(self, call: SlackCall) -> Json:
        hosted = self._hosted.get(str(call.params.get("file", "")))
        if hosted is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": self._file_object(hosted)}

    # -- helpers -----------------------------------------------------------------------------

    def _file_object(self, hosted: _HostedFile) -> Json:
        file_url = f"{self.base_url}/files/{hosted.file_id}"
        name = quote(hosted.name)
        return {
            "id": hosted.file_id,
            "name": hosted.name,
            "title": hosted.title,
            "mimetype": hosted.mimetype,
            "filetype": hosted.name.rpartition(".")[2].lower() if "." in hosted.name else "",
            "size": len(hosted.data),
            "url_private": f"{file_url}/{name}",
            "url_private_download": f"{file_url}/download/{name}",
        }

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    def _next_ts(self) -> str:
        micros = _FIRST_TS_MICROS + 100 * next(self._ts_count)
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


# -- request parsing and response shapes ------------------------------------------------------


async def _read_params(request: web.Request) -> Json:
    """Query string merged with a JSON, form or multipart body (the body wins)."""
    params: Json = dict(request.query)
    if request.content_type == "application/json":
        text = await request.text()
        body = json.loads(text) if text else {}
        params.update(body if isinstance(body, dict) else {})
    elif request.content_type in _FORM_TYPES:
        form = await request.post()
        params.update({key: _form_value(value) for key, value in form.items()})
    return params


def _form_value(value: str | bytes | bytearray | web.FileField) -> str | bytes:
    if isinstance(value, web.FileField):
        return value.file.read()
    return bytes(value) if isinstance(value, bytearray) else value


async def _read_upload(request: web.Request) -> bytes:
    """The uploaded file's raw content, whether posted as the body or as a multipart part."""
    if request.content_type != "multipart/form-data":
        return await request.read()
    form = await request.post()
    for value in form.values():
        if isinstance(value, web.FileField):
            return value.file.read()
    first = _form_value(next(iter(form.values()), b""))
    return first.encode() if isinstance(first, str) else first


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _decode_json_params(params: Json) -> Json:
    return {
        key: _maybe_json(value) if key in _JSON_PARAMS else value for key, value in params.items()
    }


def _maybe_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _channel_of(params: Json) -> str | None:
    channel = params.get("channel_id") or str(params.get("channels") or "").split(",")[0]
    return str(channel) if channel else None


def _message(params: Json, ts: Any) -> Json:
    message: Json = {
        "type": "message",
        "text": params.get("text", ""),
        "ts": ts,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": API_APP_ID,
        "team": TEAM_ID,
    }
    extras = ("blocks", "attachments", "thread_ts", "metadata")
    message.update({key: params[key] for key in extras if key in params})
    return message


def _user_object(user_id: str, entry: dict[str, str]) -> Json:
    email = entry.get("email", "")
    real_name = entry.get("real_name", "")
    name = entry.get("name") or email.partition("@")[0] or user_id.lower()
    profile = {
        "email": email,
        "real_name": real_name,
        "display_name": entry.get("display_name", real_name),
    }
    return {
        "id": user_id,
        "team_id": TEAM_ID,
        "name": name,
        "real_name": real_name,
        "tz": entry.get("tz", "Europe/London"),
        "deleted": False,
        "is_bot": False,
        "profile": profile,
    }


def _hello() -> Json:
    """The frame Slack sends first on every Socket Mode connection."""
    return {
        "type": "hello",
        "num_connections": 1,
        "debug_info": {
            "host": _SOCKET_HOST,
            "build_number": 1,
            "approximate_connection_time": 18060,
        },
        "connection_info": {"app_id": API_APP_ID},
    }


def _accepts_response_payload(kind: str, payload: Json) -> bool:
    if kind == "slash_commands":
        return True
    return kind == "interactive" and payload.get("type") in _INTERACTIVE_WITH_RESPONSE


def _ok(call: SlackCall) -> Json:
    return {"ok": True}


def _unknown_method(call: SlackCall) -> Json:
    return {"ok": False, "error": "unknown_method"}


def _failure(error: str, retry_after: int) -> web.Response:
    body = {"ok": False, "error": error}
    if error == "ratelimited":
        return web.json_response(body, status=429, headers={"Retry-After": str(retry_after)})
    return web.json_response(body)


# -- signed requests from Slack ---------------------------------------------------------------


def sign(
    body: bytes, secret: str, timestamp: int | None = None, content_type: str | None = None
) -> dict[str, str]:
    """Headers that make body a request signed by Slack with secret (v0 signature)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest.hexdigest()}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


async def post_signed(
    url: str, body: bytes, content_type: str, secret: str, timestamp: int | None = None
) -> httpx.Response:
    """POST body to url the way Slack delivers commands, interactions and events."""
    headers = sign(body, secret, timestamp, content_type=content_type)
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=body, headers=headers)


def slash_command_body(
    command: str,
    text: str,
    user_id: str,
    channel_id: str = "C0CMDS",
    team_id: str = TEAM_ID,
    trigger_id: str | None = None,
    response_url: str = UNUSED_RESPONSE_URL,
) -> bytes:
    """A slash command body, form-encoded with the fields in the order Slack sends them."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": "directmessage" if channel_id.startswith("D") else "c2bot-ops",
        "user_id": user_id,
        "user_name": _user_name(user_id),
        "command": command,
        "text": text,
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _new_trigger_id(),
    }
    return urlencode(fields).encode()


def slash_command_payload(
    command: str,
    text: str,
    user_id: str,
    channel_id: str = "C0CMDS",
    team_id: str = TEAM_ID,
    trigger_id: str | None = None,
    response_url: str = UNUSED_RESPONSE_URL,
) -> Json:
    """The fields of `slash_command_body` as JSON: the payload of a slash_commands envelope."""
    body = slash_command_body(command, text, user_id, channel_id, team_id, trigger_id, response_url)
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def interaction_body(payload: Json) -> bytes:
    """An interactivity request body: form-encoded payload=<json>."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def event_body(event: Json, team_id: str = TEAM_ID) -> bytes:
    """An Events API event_callback envelope around event, as JSON."""
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": API_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    return json.dumps(envelope).encode()


def event_payload(event: Json, team_id: str = TEAM_ID) -> Json:
    """The `event_body` envelope as JSON: the payload of an events_api envelope."""
    payload: Json = json.loads(event_body(event, team_id))
    return payload


def block_actions_payload(
    user_id: str,
    action_id: str,
    value: str,
    channel_id: str | None = None,
    message_ts: str | None = None,
    thread_ts: str | None = None,
    selected_option_value: str | None = None,
    trigger_id: str | None = None,
    response_url: str = UNUSED_RESPONSE_URL,
) -> Json:
    """A block_actions payload: a button click carrying value, or a static_select choice.

    With channel_id and message_ts the action comes from a bot message; without, from a modal.
    """
    payload: Json = {
        "type": "block_actions",
        "user": _payload_user(user_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "team": _payload_team(),
        "enterprise": None,
        "is_enterprise_install": False,
        "trigger_id": trigger_id or _new_trigger_id(),
        "response_url": response_url,
        "state": {"values": {}},
        "actions": [_action(action_id, value, selected_option_value)],
    }
    if channel_id is not None and message_ts is not None:
        payload |= _message_source(channel_id, message_ts, thread_ts)
    else:
        payload |= {"container": {"type": "view", "view_id": "V1"}, "view": _modal("V1", "", {})}
    return payload


def view_submission_payload(
    user_id: str,
    callback_id: str,
    state_values: Json,
    private_metadata: str = "",
    view_id: str = "V1",
) -> Json:
    """A view_submission payload; state_values is view.state.values (block_id -> action_id)."""
    view = _modal(view_id, callback_id, state_values) | {"private_metadata": private_metadata}
    return {
        "type": "view_submission",
        "team": _payload_team(),
        "user": _payload_user(user_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": _new_trigger_id(),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def message_shortcut_payload(
    user_id: str,
    callback_id: str,
    channel_id: str,
    message_ts: str,
    thread_ts: str | None,
    text: str,
    message_user: str | None = None,
    response_url: str = UNUSED_RESPONSE_URL,
) -> Json:
    """A message_action payload: user ran shortcut callback_id on a message by message_user."""
    message: Json = {"type": "message", "user": message_user or user_id, "text": text}
    message |= {"ts": message_ts} | ({"thread_ts": thread_ts} if thread_ts else {})
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": _action_ts(),
        "team": _payload_team(),
        "user": _payload_user(user_id),
        "channel": {"id": channel_id, "name": "c2bot-ops"},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": _new_trigger_id(),
        "response_url": response_url,
        "message_ts": message_ts,
        "message": message,
    }


def message_event(
    user: str,
    channel: str,
    text: str,
    ts: str,
    thread_ts: str | None = None,
    files: list[Json] | None = None,
    channel_type: str = "channel",
) -> Json:
    """A message event; with files it is the "file_share" subtype Slack sends for uploads."""
    event: Json = {
        "type": "message",
        "user": user,
        "channel": channel,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel_type,
        "team": TEAM_ID,
        "client_msg_id": str(uuid.uuid4()),
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    if files:
        event |= {"subtype": "file_share", "files": files, "upload": False}
    return event


def _action(action_id: str, value: str, selected_option_value: str | None) -> Json:
    action: Json = {"action_id": action_id, "block_id": f"{action_id}_block"}
    action["action_ts"] = _action_ts()
    if selected_option_value is None:
        return action | {"type": "button", "text": _plain_text(value), "value": value}
    option = {"text": _plain_text(selected_option_value), "value": selected_option_value}
    return action | {"type": "static_select", "selected_option": option}


def _message_source(channel_id: str, message_ts: str, thread_ts: str | None) -> Json:
    container: Json = {"type": "message", "message_ts": message_ts, "channel_id": channel_id}
    container["is_ephemeral"] = False
    message = _message({"text": ""}, message_ts)
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
        message["thread_ts"] = thread_ts
    channel = {"id": channel_id, "name": "c2bot-ops"}
    return {"container": container, "channel": channel, "message": message}


def _modal(view_id: str, callback_id: str, state_values: Json) -> Json:
    return {
        "id": view_id,
        "team_id": TEAM_ID,
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": "",
        "title": _plain_text("c2bot"),
        "blocks": [],
        "state": {"values": state_values},
        "hash": f"{int(time.time())}.{view_id}",
        "root_view_id": view_id,
        "previous_view_id": None,
        "app_id": API_APP_ID,
        "bot_id": BOT_ID,
        "external_id": "",
        "clear_on_close": False,
        "notify_on_close": False,
    }


def _payload_user(user_id: str) -> Json:
    name = _user_name(user_id)
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


def _payload_team() -> Json:
    return {"id": TEAM_ID, "domain": TEAM_DOMAIN}


def _plain_text(text: str) -> Json:
    return {"type": "plain_text", "text": text, "emoji": True}


def _user_name(user_id: str) -> str:
    return f"user.{user_id.lower()}"


def _new_trigger_id() -> str:
    return f"{int(time.time())}.{TEAM_ID[1:]}.{uuid.uuid4().hex}"


def _action_ts() -> str:
    return f"{time.time():.6f}"
