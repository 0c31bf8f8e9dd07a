"""A FreeSWITCH Event Socket peer for tests: the server side of the wire protocol, strictly.

It answers the commands c2bot uses with the bytes a real FreeSWITCH sends (checked against
the recordings in the fixtures), and builds its events from the recorded events as templates:
same header order and URL encoding, with the call's values substituted. Calls are simulated:
``peer.lines[number]`` says what a number does ("fax", "busy", "noanswer", "silence", "fail");
a fax line really transmits the TIFF with spandsp (tests/support/spandsp.py) in a worker thread.

Also here: ``read_records`` for the fixture framing (``### S->C <N> bytes t=<sec>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import time
import uuid as uuidlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from c2bot.switch.esl import EslClient, SwitchPool
from c2bot.switch.wire import parse_event_plain, parse_message, render_event_plain, render_headers
from tests.support.net import free_port

FIXTURES = Path(
    os.environ.get(
        "C2_FS_FIXTURES",
        next(
            (
                str(path)
                for path in (
                    Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch",
                    Path("/work/shared/fixtures/freeswitch"),
                )
                if path.is_dir()
            ),
            "tests/fixtures/freeswitch",
        ),
    )
)
DISCONNECT_TEXT = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
LINE_KINDS = ("fax", "busy", "noanswer", "silence", "fail")
_RECORD = re.compile(rb"### (C->S|S->C) (\d+) bytes t=([0-9.]+)\n")
_Q850 = {"NORMAL_CLEARING": "16", "USER_BUSY": "17", "NO_ANSWER": "19"}
_Q850["NORMAL_TEMPORARY_FAILURE"] = "41"
_FAIL_CAUSE = {"busy": "USER_BUSY", "noanswer": "NO_ANSWER", "fail": "NORMAL_TEMPORARY_FAILURE"}


# -- fixture framing ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """One record of a transcript: who sent it, when, and the exact bytes."""

    direction: str  # "C->S" or "S->C"
    data: bytes
    t: float


def read_records(path: Path) -> list[Record]:
    """Parse the ``### C->S <N> bytes t=<sec>`` framing; ``#### NOTE`` lines are skipped."""
    raw = path.read_bytes()
    records: list[Record] = []
    pos = 0
    while pos < len(raw):
        if raw.startswith(b"#### NOTE", pos) or raw.startswith(b"\n", pos):
            end = raw.find(b"\n", pos)
            pos = len(raw) if end < 0 else end + 1
            continue
        match = _RECORD.match(raw, pos)
        if match is None:
            raise ValueError(f"{path.name}: no record header at byte {pos}")
        size = int(match[2])
        start = match.end()
        data = raw[start : start + size]
        if len(data) != size or raw[start + size : start + size + 1] != b"\n":
            raise ValueError(f"{path.name}: record at byte {pos} is not {size} bytes + newline")
        records.append(Record(match[1].decode(), data, float(match[3])))
        pos = start + size + 1
    return records


# -- event templates ---------------------------------------------------------------------------
Pairs = list[tuple[str, str]]


@cache
def _recorded_events(name: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    events = []
    for record in read_records(FIXTURES / name):
        message = parse_message(record.data) if record.direction == "S->C" else None
        if message is not None and message.content_type == "text/event-plain":
            events.append(parse_event_plain(message.body).all_headers)
    return tuple(events)


def template(file: str, event: str, leg: str, nth: int = 0) -> Pairs:
    """The nth recorded event (name or CUSTOM subclass) of a leg ('-a'/'-b' channel suffix)."""
    found = [
        pairs
        for pairs in _recorded_events(file)
        if event in (dict(pairs).get("Event-Name"), dict(pairs).get("Event-Subclass"))
        and dict(pairs).get("Channel-Name", "").endswith(leg)
    ]
    return list(found[nth])


# Variables of the recorded calls that belong to those calls, not to the channel type.
_RECORDED_CALL_VARIABLES = {
    "variable_" + name
    for name in [
        "origination_uuid",
        "origination_caller_id_number",
        "fax_ident",
        "fax_header",
        "DP_MATCH",
        "other_loopback_leg_uuid",
        "loopback_leg",
        "is_loopback",
        "playback_last_offset_pos",
        "playback_seconds",
        "playback_ms",
        "playback_samples",
    ]
}


# -- the simulated calls -----------------------------------------------------------------------
@dataclass
class Channel:
    uuid: str
    name: str
    number: str
    direction: str  # "outbound" (we originated) or "inbound" (a delivered fax)
    variables: dict[str, str]
    caller_id: str = ""
    created: float = field(default_factory=time.time)
    answered: float = 0.0
    hungup: float = 0.0
    cause: str = ""
    application: str = ""
    application_data: str = ""
    fax: dict[str, str] = field(default_factory=dict)
    # Calls placed with ``place_call``: listed from the recorded rows, legs hung up together.
    placed: bool = False
    other_leg: str = ""
    call_uuid: str = ""
    caller_name: str = ""
    codec: str = "PCMA"


@dataclass
class Originate:
    """What the peer was asked to dial, and what came of it (for 'never twice' assertions)."""

    command: str
    variables: dict[str, str]
    dialstring: str
    number: str
    application: str
    argument: str
    uuid: str
    file: str = ""
    result: str = ""  # the BACKGROUND_JOB / api body, e.g. '+OK <uuid>\n' or '-ERR USER_BUSY\n'
    fax: Any = None  # spandsp.FaxCallResult when a fax was attempted
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Delivery:
    tx_tiff: Path
    rx_path: Path
    variables: dict[str, str]
    caller_id: str
    uuid: str
    fax: Any = None


def parse_originate(args: str) -> tuple[dict[str, str], str, str, str]:
    """``{k=v,k2='a, b'}DIALSTRING &app(arg)`` -> (variables, dialstring, app, arg)."""
    variables: dict[str, str] = {}
    rest = args.strip()
    if rest.startswith("{"):
        close = _matching_brace(rest)
        variables = _parse_variables(rest[1:close])
        rest = rest[close + 1 :]
    dialstring, _, target = rest.strip().partition(" ")
    target = target.strip()
    app, arg = target, ""
    if target.startswith("&"):
        app, _, arg = target[1:].partition("(")
        arg = arg.removesuffix(")")
    return variables, dialstring, app, arg


def destination_number(dialstring: str) -> str:
    """The dialled number: the last '/' segment (for loopback/NUM/context, the middle one)."""
    parts = dialstring.split("/")
    if parts[0] == "loopback" and len(parts) >= 2:
        return parts[1]
    return parts[-1]


def _matching_brace(text: str) -> int:
    quoted = False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif char == "}" and not quoted:
            return index
    raise ValueError(f"no closing brace in {text!r}")


def _parse_variables(text: str) -> dict[str, str]:
    variables: dict[str, str] = {}
    item, quoted = "", False
    for char in text + ",":
        if char == "'":
            quoted = not quoted
            item += char
        elif char == "," and not quoted:
            name, sep, value = item.partition("=")
            if sep:
                variables[name.strip()] = value.strip().removeprefix("'").removesuffix("'")
            item = ""
        else:
            item += char
    return variables


# -- the server --------------------------------------------------------------------------------
class _Listener:
    """One client connection and what it subscribed to."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.authed = False
        self.events: set[str] = set()
        self.subclasses: set[str] = set()

    def wants(self, pairs: Pairs) -> bool:
        headers = dict(pairs)
        name = headers.get("Event-Name", "")
        if "ALL" in self.events:
            return True
        if name == "CUSTOM":
            return "CUSTOM" in self.events and headers.get("Event-Subclass", "") in self.subclasses
        return name in self.events

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


class EslPeer:
    """The FreeSWITCH side of an Event Socket, for tests."""

    def __init__(self, password: str = "ClueCon") -> None:
        self.password = password
        self.lines: dict[str, str] = {}
        self.default_line = "fax"
        self.commands: list[str] = []
        self.originates: list[Originate] = []
        self.deliveries: list[Delivery] = []
        self.channels: dict[str, Channel] = {}
        self.core_uuid = "c1d50e2d-7009-469a-b820-d011d58023ef"
        self.hostname = "vm"
        self.status_text: str | None = None
        self.new_uuid: Callable[[], str] = lambda: str(uuidlib.uuid4())
        self.delays: dict[str, float] = {}  # api command name -> seconds before the answer
        self.fax_seconds = 600.0
        self.silence_seconds = 60.0
        self.started = time.time()
        self.registrations: list[SipRegistration] = []
        # mod_callcenter's memory: loaded queues, agents (name -> fields), tiers -> level.
        self.cc_queues: set[str] = set()
        self.cc_agents: dict[str, dict[str, str]] = {}
        self.cc_tiers: dict[tuple[str, str], str] = {}
        self.now: Callable[[], float] = time.time  # registrations' EXPSECS count from this
        self._sequence = itertools.count(500)
        self._listeners: set[_Listener] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    def kick(self) -> None:
        """Drop every client connection at once, as a crashing switch would."""
        for listener in list(self._listeners):
            transport = listener.writer.transport
            transport.abort()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.kick()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @property
    def connections(self) -> int:
        return len(self._listeners)

    # -- the protocol --------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener = _Listener(writer)
        self._listeners.add(listener)
        try:
            listener.send(render_headers([("Content-Type", "auth/request")]) + b"\n")
            while not writer.is_closing():
                try:
                    block = await reader.readuntil(b"\n\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                if not await self._command(listener, block.decode("utf-8")):
                    break
        finally:
            self._listeners.discard(listener)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _command(self, listener: _Listener, block: str) -> bool:
        """Answer one command; False when the connection is to be closed."""
        line, *_ = block.split("\n")
        self.commands.append(line)
        verb, _, args = line.partition(" ")
        if not listener.authed:
            if verb != "auth":
                self._reply(listener, "-ERR command not found")
                return True
            if args != self.password:
                self._reply(listener, "-ERR invalid")
                return self._disconnect(listener)
            listener.authed = True
            self._reply(listener, "+OK accepted")
            return True
        if verb == "api":
            # A slow switch: FreeSWITCH answers api commands in order, so later ones wait too.
            await asyncio.sleep(self.delays.get(args.partition(" ")[0], 0.0))
            body = await self._api(args)
            listener.send(_api_response(body))
        elif verb == "bgapi":
            self._bgapi(listener, args, block)
        elif verb == "event":
            self._subscribe(listener, args)
        elif verb == "noevents":
            listener.events.clear()
            listener.subclasses.clear()
            self._reply(listener, "+OK no longer listening for events")
        elif verb == "exit":
            self._reply(listener, "+OK bye")
            return self._disconnect(listener)
        else:
            self._reply(listener, "-ERR command not found")
        await listener.writer.drain()
        return True

    def _reply(self, listener: _Listener, text: str, *extra: tuple[str, str]) -> None:
        pairs = [("Content-Type", "command/reply"), ("Reply-Text", text), *extra]
        listener.send(render_headers(pairs) + b"\n")

    def _disconnect(self, listener: _Listener) -> bool:
        pairs = [("Content-Type", "text/disconnect-notice")]
        pairs.append(("Content-Length", str(len(DISCONNECT_TEXT))))
        listener.send(render_headers(pairs) + b"\n" + DISCONNECT_TEXT)
        return False

    def _subscribe(self, listener: _Listener, args: str) -> None:
        kind, _, names = args.partition(" ")
        if kind != "plain":
            # We never use json or xml events; refuse rather than pretend.
            self._reply(listener, f"-ERR event {kind} is not supported by this test peer")
            return
        custom = False
        for name in names.split():
            if name == "CUSTOM":
                custom = True
                listener.events.add(name)
            elif custom and not name.isupper():
                listener.subclasses.add(name)
            else:
                listener.events.add(name)
        self._reply(listener, "+OK event listener enabled plain")

    def _bgapi(self, listener: _Listener, args: str, block: str) -> None:
        job_uuid = _header(block, "Job-UUID") or self.new_uuid()
        self._reply(listener, f"+OK Job-UUID: {job_uuid}", ("Job-UUID", job_uuid))
        command, _, arguments = args.partition(" ")
        self._spawn(self._background_job(job_uuid, command, arguments))

    async def _background_job(self, job_uuid: str, command: str, arguments: str) -> None:
        if command == "originate":
            # The originate emits its BACKGROUND_JOB itself, at answer or at failure.
            await self._originate(arguments, job_uuid=job_uuid)
            return
        body = await self._api(f"{command} {arguments}".strip())
        self._emit_job(job_uuid, command, arguments, body)

    def _emit_job(self, job_uuid: str, command: str, arguments: str, body: str) -> None:
        pairs = self._base("BACKGROUND_JOB", template("fax_events.txt", "BACKGROUND_JOB", ""))
        pairs += [("Job-UUID", job_uuid), ("Job-Command", command)]
        pairs.append(("Job-Command-Arg", arguments))
        self._broadcast(pairs, body)

    async def _api(self, args: str) -> str:
        command, _, rest = args.partition(" ")
        if command == "status":
            return self._status()
        if args == "show channels as json":
            return self._channels_json()
        if command == "uuid_exists":
            return "true" if rest.strip() in self.channels else "false"
        if command == "uuid_kill":
            target, _, cause = rest.strip().partition(" ")
            if target not in self.channels:
                return "-ERR No such channel!\n"
            self._hangup_call(self.channels[target], cause or "NORMAL_CLEARING")
            return "+OK\n"
        if args == "show registrations as json":
            return self._registrations_json()
        if command == "sofia" and rest.startswith("xmlstatus profile ") and rest.endswith(" reg"):
            return self._registrations_xml(rest.split(" ")[2])
        if command == "originate":
            return await self._originate(rest, job_uuid=None)
        if command == "callcenter_config":
            return self._callcenter(rest.split())
        return f"-ERR {command} Command not found!\n"

    def _callcenter(self, words: list[str]) -> str:
        """mod_callcenter's `callcenter_config` as its API answers (no recording: modelled on
        the module's source, which replies `+OK` or `-ERR <reason>!`)."""
        match words:
            case ["queue", "load", queue]:
                self.cc_queues.add(queue)
            case ["queue", "reload", queue] | ["queue", "unload", queue]:
                if queue not in self.cc_queues:
                    return "-ERR Invalid Queue not found!\n"
                if words[1] == "unload":
                    self.cc_queues.discard(queue)
            case ["agent", "add", agent, kind]:
                if agent in self.cc_agents:
                    return "-ERR Agent already exist!\n"
                self.cc_agents[agent] = {"type": kind}
            case ["agent", "set", field, agent, *value]:
                if agent not in self.cc_agents:
                    return "-ERR Invalid Agent!\n"
                self.cc_agents[agent][field] = " ".join(value)
            case ["tier", "add", queue, agent, level, _position]:
                if (queue, agent) in self.cc_tiers:
                    return "-ERR Tier already exist!\n"
                self.cc_tiers[(queue, agent)] = level
            case ["tier", "set", "level", queue, agent, level]:
                if (queue, agent) not in self.cc_tiers:
                    return "-ERR Invalid Tier!\n"
                self.cc_tiers[(queue, agent)] = level
            case ["tier", "del", queue, agent]:
                if self.cc_tiers.pop((queue, agent), None) is None:
                    return "-ERR Invalid Tier!\n"
            case _:
                return "-ERR Invalid syntax\n"
        return "+OK\n"

    def _status(self) -> str:
        if self.status_text is not None:
            return self.status_text
        up = int(time.time() - self.started)
        return (
            f"UP 0 years, 0 days, 0 hours, {up // 60} minutes, {up % 60} seconds, "
            "0 milliseconds, 0 microseconds\n"
            "FreeSWITCH (Version 1.11.3-dev  64bit) is ready\n"
            f"{len(self.originates)} session(s) since startup\n"
            f"{len(self.channels)} session(s) - peak 0, last 5min 0 \n"
            "0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
            "100 session(s) max\nmin idle cpu 0.00/99.20\nCurrent Stack Size/Max 240K/8192K\n"
        )

    def _channels_json(self) -> str:
        if not self.channels:
            return '{"row_count": 0}\n'
        rows = [
            _placed_row(channel, self.hostname, self.channels)
            if channel.placed
            else _channel_row(channel, self.hostname)
            for channel in self.channels.values()
        ]
        return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))

    # -- calls ---------------------------------------------------------------------------------
    async def _originate(self, arguments: str, *, job_uuid: str | None) -> str:
        """Simulate one outbound call; returns the originate result text."""
        variables, dialstring, app, arg = parse_originate(arguments)
        number = destination_number(dialstring)
        call = Originate(
            command=f"originate {arguments}",
            variables=variables,
            dialstring=dialstring,
            number=number,
            application=app,
            argument=arg,
            uuid=variables.get("origination_uuid") or self.new_uuid(),
            file=arg if app == "txfax" else "",
        )
        self.originates.append(call)
        if dialstring.startswith("user/") and not self.is_registered(number):
            # mod_dptools' user/ endpoint fails before any channel exists.
            return self._finish_originate(call, job_uuid, arguments, "-ERR USER_NOT_REGISTERED\n")
        line = self.lines.get(number, self.default_line)
        name = f"loopback/{number}-a" if dialstring.startswith("loopback/") else dialstring
        channel = Channel(call.uuid, name, number, "outbound", variables)
        channel.caller_id = variables.get("origination_caller_id_number", "0000000000")
        channel.application, channel.application_data = app, arg
        self.channels[channel.uuid] = channel
        self._channel_event("CHANNEL_CREATE", channel)
        if line in _FAIL_CAUSE:
            cause = _FAIL_CAUSE[line]
            self._hangup(channel, cause)
            return self._finish_originate(call, job_uuid, arguments, f"-ERR {cause}\n")
        channel.answered = time.time()
        self._channel_event("CHANNEL_ANSWER", channel)
        result = self._finish_originate(call, job_uuid, arguments, f"+OK {call.uuid}\n", done=False)
        if app == "txfax":
            self._spawn(self._send_fax(call, channel, silent=line == "silence"))
        else:
            call.done.set()
        return result

    def _finish_originate(
        self, call: Originate, job_uuid: str | None, arguments: str, body: str, done: bool = True
    ) -> str:
        call.result = body
        if job_uuid is not None:
            self._emit_job(job_uuid, "originate", arguments, body)
        if done:
            call.done.set()
        return body

    async def _send_fax(self, call: Originate, channel: Channel, *, silent: bool) -> None:
        from tests.support import spandsp  # written alongside; imported only when a fax is sent

        tx_ident = call.variables.get("fax_ident", "")
        try:
            if silent:
                result = await asyncio.to_thread(
                    spandsp.silent_line, Path(call.file), seconds=self.silence_seconds
                )
            else:
                result = await asyncio.to_thread(
                    spandsp.transmit,
                    Path(call.file),
                    None,
                    tx_ident=tx_ident,
                    rx_ident=call.variables.get("c2_test_rx_ident", "RX Station"),
                    header=call.variables.get("fax_header", ""),
                    max_seconds=self.fax_seconds,
                )
            call.fax = result
            self._fax_events(channel, result, "tx", call.file, negotiated=not silent)
            self._hangup(channel, "NORMAL_CLEARING")
        finally:
            call.done.set()

    async def deliver_fax(
        self, tx_tiff: Path, rx_path: Path, *, variables: dict[str, str], caller_id: str
    ) -> Any:
        """An inbound fax on a B leg running rxfax into rx_path; returns the FaxCallResult."""
        from tests.support import spandsp

        channel = Channel(
            self.new_uuid(),
            f"sofia/external/{caller_id}",
            variables.get("c2_did", ""),
            "inbound",
            dict(variables),
            caller_id=caller_id,
        )
        channel.application, channel.application_data = "rxfax", str(rx_path)
        delivery = Delivery(tx_tiff, rx_path, dict(variables), caller_id, channel.uuid)
        self.deliveries.append(delivery)
        self.channels[channel.uuid] = channel
        self._channel_event("CHANNEL_CREATE", channel)
        channel.answered = time.time()
        self._channel_event("CHANNEL_ANSWER", channel)
        result = await asyncio.to_thread(
            spandsp.transmit,
            tx_tiff,
            rx_path,
            tx_ident=caller_id,
            rx_ident=variables.get("fax_ident", "C2 Fax"),
            max_seconds=self.fax_seconds,
        )
        delivery.fax = result
        self._fax_events(channel, result, "rx", str(rx_path), negotiated=True)
        self._hangup(channel, "NORMAL_CLEARING")
        return result

    def _fax_events(
        self, channel: Channel, result: Any, side: str, filename: str, *, negotiated: bool
    ) -> None:
        """negotiate, one page result per page, then the result: as mod_spandsp reports them."""
        local, remote = _idents(result, side)
        common = {
            "fax_filename": filename,
            "fax_transfer_rate": str(result.bit_rate or 14400),
            "fax_ecm_used": "on" if result.ecm else "off",
            "fax_t38_status": "off",
            "fax_local_station_id": local,
            "fax_remote_station_id": remote,
        }
        channel.fax.update({"fax_filename": filename})
        if negotiated:
            channel.fax.update(common)
            self._custom(channel, f"spandsp::{side}faxnegociateresult", side, _short(common))
            for page in range(1, result.pages_transferred + 1):
                page_vars = {
                    **common,
                    "fax_document_transferred_pages": str(page),
                    "fax_document_total_pages": str(result.pages_total),
                    "fax_image_resolution": result.resolution or "8040x7700",
                    "fax_image_size": str(result.image_size),
                    "fax_bad_rows": str(result.bad_rows),
                }
                channel.fax.update(page_vars)
                self._custom(channel, f"spandsp::{side}faxpageresult", side, _short(page_vars))
        recorded = "fax_events.txt" if negotiated else "fax_fail_timeout_events.txt"
        code, text = (
            (result.code, result.text) if side == "tx" else (result.rx_code, result.rx_text)
        )
        success = result.success if side == "tx" else result.rx_code == 0 and result.success
        final = {
            **common,
            "fax_success": "1" if success else "0",
            "fax_result_code": str(code),
            "fax_result_text": text,
            "fax_document_transferred_pages": str(result.pages_transferred),
            "fax_document_total_pages": str(result.pages_total),
            "fax_image_resolution": result.resolution or "0x0",
            "fax_image_size": str(result.image_size),
            "fax_bad_rows": str(result.bad_rows),
        }
        if not remote:
            final.pop("fax_remote_station_id")
        channel.fax.update(final)
        self._custom(channel, f"spandsp::{side}faxresult", side, _short(final), recorded)

    def _custom(
        self, channel: Channel, subclass: str, side: str, short: Pairs,
        recorded: str = "fax_events.txt",
    ) -> None:  # fmt: skip
        """A mod_spandsp event; only negotiate and page events carry the lowercase uuid."""
        leg = "-a" if side == "tx" else "-b"
        pairs = template(recorded, subclass, leg)
        pairs = [(k, v) for k, v in pairs if not k.startswith("fax-") and k != "uuid"]
        if not subclass.endswith("faxresult"):
            pairs.append(("uuid", channel.uuid))
        self._broadcast(self._channel_pairs(pairs, channel) + short)

    def _hangup(self, channel: Channel, cause: str) -> None:
        channel.hungup, channel.cause = time.time(), cause
        self.channels.pop(channel.uuid, None)
        if channel.answered:
            self._channel_event("CHANNEL_HANGUP", channel)
        self._channel_event("CHANNEL_HANGUP_COMPLETE", channel)

    # -- SIP phones: calls in progress and registrations ----------------------------------------
    def place_call(
        self,
        caller: str,
        destination: str,
        *,
        accountcode: str = "",
        caller_name: str = "",
        domain: str = "127.0.0.1",
        codec: str = "PCMA",
        bridged: bool = True,
        answered: bool = True,
        variables: dict[str, str] | None = None,
        application: tuple[str, str] = ("", ""),
    ) -> Channel:
        """A call from a SIP phone in progress: its A leg (returned) and, bridged, its B leg.

        Listed by ``show channels as json`` in the recorded rows' form; killing either leg ends
        both, with the events in the recorded order.
        """
        # Our dialplan sets accountcode on every call it routes (DESIGN.md).
        codes = {"accountcode": accountcode} if accountcode else {}
        a_leg = Channel(
            self.new_uuid(),
            f"sofia/internal/{caller}@{domain}",
            destination,
            "inbound",
            {**codes, **(variables or {})},
            caller_id=caller,
            placed=True,
            caller_name=caller_name,
            codec=codec,
        )
        a_leg.call_uuid = a_leg.uuid
        b_leg: Channel | None = None
        if bridged:
            b_leg = Channel(
                self.new_uuid(),
                f"sofia/internal/{destination}",
                destination,
                "outbound",
                dict(codes),
                caller_id=caller,
                placed=True,
                caller_name=caller_name,
                codec=codec,
                other_leg=a_leg.uuid,
                call_uuid=a_leg.uuid,
            )
            a_leg.other_leg = b_leg.uuid
            a_leg.application, a_leg.application_data = "bridge", f"sofia/internal/{destination}"
        else:
            a_leg.application, a_leg.application_data = application
        for leg in (a_leg, b_leg):
            if leg is None:
                continue
            self.channels[leg.uuid] = leg
            self._channel_event("CHANNEL_CREATE", leg)
        if answered:
            for leg in (a_leg, b_leg):
                if leg is not None:
                    leg.answered = time.time()
                    self._channel_event("CHANNEL_ANSWER", leg)
        return a_leg

    def hang_up(self, uuid: str, cause: str = "NORMAL_CLEARING") -> None:
        """The phone hangs up: the call ends as uuid_kill would end it."""
        self._hangup_call(self.channels[uuid], cause)

    def _hangup_call(self, channel: Channel, cause: str) -> None:
        """One leg, or both legs of a placed call in FreeSWITCH's order (esl_session step 11)."""
        other = self.channels.get(channel.other_leg) if channel.other_leg else None
        if other is None:
            self._hangup(channel, cause)
            return
        for leg in (channel, other):
            leg.hungup, leg.cause = time.time(), cause
            self.channels.pop(leg.uuid, None)
        for name, leg in (
            ("CHANNEL_HANGUP", channel),
            ("CHANNEL_HANGUP", other),
            ("CHANNEL_HANGUP_COMPLETE", other),
            ("CHANNEL_HANGUP_COMPLETE", channel),
        ):
            if name == "CHANNEL_HANGUP_COMPLETE" or leg.answered:
                self._channel_event(name, leg)

    def register(
        self,
        user: str,
        realm: str = "127.0.0.1",
        *,
        agent: str = "fixture-sip-client/0.1",
        port: int = 5070,
        expires_in: int = 118,
        call_id: str | None = None,
    ) -> SipRegistration:
        """A phone registers as user@realm from 127.0.0.1:port (the recorded client's values)."""
        registration = SipRegistration(
            user=user,
            realm=realm,
            call_id=call_id or f"{uuidlib.uuid4().hex[:8]}@127.0.0.1",
            agent=agent,
            network_port=str(port),
            expires=int(self.now()) + expires_in,
        )
        self.registrations = [r for r in self.registrations if (r.user, r.realm) != (user, realm)]
        self.registrations.append(registration)
        return registration

    def is_registered(self, user_at_realm: str) -> bool:
        return any(f"{r.user}@{r.realm}" == user_at_realm for r in self.registrations)

    def _registrations_json(self) -> str:
        if not self.registrations:
            return '{"row_count": 0}\n'
        rows = [_registration_row(r, self.hostname) for r in self.registrations]
        return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))

    def _registrations_xml(self, profile: str) -> str:
        if profile != "internal":
            return f"-ERR this test peer has one sofia profile, internal (asked: {profile})\n"
        head, item, tail = _recorded_xmlstatus()
        items = "".join(
            _registration_xml(item, r, self.hostname, self.now()) for r in self.registrations
        )
        return head + items + tail

    # -- event building ------------------------------------------------------------------------
    def _channel_event(self, name: str, channel: Channel) -> None:
        self._broadcast(self._channel_pairs(self._channel_template(name, channel), channel))

    def _channel_template(self, name: str, channel: Channel) -> Pairs:
        leg = "-a" if channel.direction == "outbound" else "-b"
        if name == "CHANNEL_HANGUP":
            return template("esl_session.txt", name, "-a" if leg == "-a" else "-b")
        if name == "CHANNEL_HANGUP_COMPLETE" and not channel.answered:
            return template("busy_call_events.txt", name, leg)
        return template("fax_events.txt", name, leg)

    def _channel_pairs(self, pairs: Pairs, channel: Channel) -> Pairs:
        """A recorded channel event with this channel's identity, times and variables."""
        values = self._channel_values(channel)
        out: Pairs = []
        inserted = False
        for name, value in self._base(dict(pairs)["Event-Name"], pairs):
            if name in _RECORDED_CALL_VARIABLES:
                continue
            if name.startswith("variable_fax_"):
                continue
            if name.startswith("variable_") and not inserted and name == "variable_call_uuid":
                out.append((name, channel.uuid))
                out += [("variable_" + k, v) for k, v in channel.variables.items()]
                out += [("variable_" + k, v) for k, v in channel.fax.items()]
                inserted = True
                continue
            out.append((name, values.get(name, value)))
        if not inserted:
            out += [("variable_" + k, v) for k, v in channel.variables.items()]
            out += [("variable_" + k, v) for k, v in channel.fax.items()]
        return out

    def _channel_values(self, channel: Channel) -> dict[str, str]:
        created, answered = _usec(channel.created), _usec(channel.answered)
        hungup = _usec(channel.hungup)
        billed = max(0, int(channel.hungup - channel.answered)) if channel.answered else 0
        duration = max(0, int(channel.hungup - channel.created)) if channel.hungup else 0
        cause = channel.cause or "NORMAL_CLEARING"
        loopback = channel.name.startswith("loopback/")
        return {
            "Unique-ID": channel.uuid,
            "Channel-Call-UUID": channel.uuid,
            "Caller-Unique-ID": channel.uuid,
            "variable_uuid": channel.uuid,
            "Channel-Name": channel.name,
            "Caller-Channel-Name": channel.name,
            "variable_channel_name": channel.name,
            "Caller-Destination-Number": channel.number,
            "Caller-Source": "mod_loopback" if loopback else "mod_sofia",
            "variable_originate_endpoint": "loopback" if loopback else "sofia",
            "Caller-Caller-ID-Number": channel.caller_id or "0000000000",
            "Caller-Orig-Caller-ID-Number": channel.caller_id or "0000000000",
            "Caller-ANI": channel.caller_id or "0000000000",
            "Caller-Profile-Created-Time": created,
            "Caller-Channel-Created-Time": created,
            "Caller-Channel-Answered-Time": answered,
            "Caller-Channel-Hangup-Time": hungup,
            "Hangup-Cause": cause,
            "variable_hangup_cause": cause,
            "variable_hangup_cause_q850": _Q850.get(cause, "16"),
            "variable_current_application": channel.application,
            "variable_current_application_data": channel.application_data,
            "variable_last_app": channel.application,
            "variable_last_arg": channel.application_data,
            "variable_start_epoch": str(int(channel.created)),
            "variable_start_uepoch": created,
            "variable_answer_epoch": str(int(channel.answered)),
            "variable_answer_uepoch": answered,
            "variable_end_epoch": str(int(channel.hungup)),
            "variable_end_uepoch": hungup,
            "variable_duration": str(duration),
            "variable_billsec": str(billed),
            "variable_flow_billsec": str(billed),
            "variable_start_stamp": _stamp(channel.created),
            "variable_profile_start_stamp": _stamp(channel.created),
            "variable_answer_stamp": _stamp(channel.answered),
            "variable_end_stamp": _stamp(channel.hungup),
            "variable_caller_id": channel.caller_id or "0000000000",
        }

    def _base(self, event_name: str, pairs: Iterable[tuple[str, str]]) -> Pairs:
        """The event's leading headers (up to Event-Sequence) with this switch's values."""
        now = time.time()
        fresh = {
            "Core-UUID": self.core_uuid,
            "FreeSWITCH-Hostname": self.hostname,
            "FreeSWITCH-Switchname": self.hostname,
            "Event-Date-Local": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
            "Event-Date-GMT": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)),
            "Event-Date-Timestamp": _usec(now),
            "Event-Sequence": str(next(self._sequence)),
        }
        out: Pairs = []
        for name, value in pairs:
            if event_name == "BACKGROUND_JOB" and name.startswith(("Job-", "Content-Length")):
                continue
            out.append((name, fresh.get(name, value)))
        return out

    def _broadcast(self, pairs: Pairs, body: str = "") -> None:
        data = render_event_plain(pairs, body)
        for listener in list(self._listeners):
            if listener.authed and listener.wants(pairs):
                listener.send(data)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _api_response(body: str) -> bytes:
    data = body.encode("utf-8")
    pairs = [("Content-Type", "api/response"), ("Content-Length", str(len(data)))]
    return render_headers(pairs) + b"\n" + data


def _header(block: str, name: str) -> str:
    for line in block.split("\n")[1:]:
        key, sep, value = line.partition(": ")
        if sep and key.lower() == name.lower():
            return value.strip()
    return ""


def _idents(result: Any, side: str) -> tuple[str, str]:
    if side == "tx":
        return result.local_station_id, result.remote_station_id
    return result.remote_station_id, result.local_station_id


def _short(variables: dict[str, str]) -> Pairs:
    """variable_fax_x_y -> the lowercase fax-x-y headers mod_spandsp adds to its events."""
    return [
        ("fax-" + k.removeprefix("fax_").replace("_", "-"), v)
        for k, v in variables.items()
        if k != "fax_filename"  # only a variable, never a short header
    ]


def _usec(moment: float) -> str:
    return str(int(moment * 1_000_000)) if moment else "0"


def _stamp(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment)) if moment else ""


def _channel_row(channel: Channel, hostname: str) -> dict[str, str]:
    created = time.localtime(channel.created)
    return {
        "uuid": channel.uuid,
        "direction": channel.direction,
        "created": time.strftime("%Y-%m-%d %H:%M:%S", created),
        "created_epoch": str(int(channel.created)),
        "name": channel.name,
        "state": "CS_EXECUTE",
        "cid_name": "Outbound Call" if channel.direction == "outbound" else "",
        "cid_num": channel.caller_id,
        "ip_addr": "",
        "dest": channel.number,
        "application": channel.application,
        "application_data": channel.application_data,
        "dialplan": "xml",
        "context": "default",
        "read_codec": "L16",
        "read_rate": "8000",
        "read_bit_rate": "128000",
        "write_codec": "L16",
        "write_rate": "8000",
        "write_bit_rate": "128000",
        "secure": "",
        "hostname": hostname,
        "presence_id": "",
        "presence_data": "",
        "accountcode": channel.variables.get("accountcode", ""),
        "callstate": "ACTIVE" if channel.answered else "RINGING",
        "callee_name": "",
        "callee_num": "",
        "callee_direction": "",
        "call_uuid": channel.uuid,
        "sent_callee_name": "",
        "sent_callee_num": "",
        "initial_cid_name": "",
        "initial_cid_num": channel.caller_id,
        "initial_ip_addr": "",
        "initial_dest": channel.number,
        "initial_dialplan": "xml",
        "initial_context": "default",
    }


# -- recorded answers about SIP phones (esl_session.txt step 7, registrations.txt) -------------
@dataclass
class SipRegistration:
    """A registered phone as the peer reports it (defaults: the recorded client)."""

    user: str
    realm: str
    call_id: str
    agent: str
    expires: int
    network_ip: str = "127.0.0.1"
    network_port: str = "5070"
    profile: str = "internal"

    @property
    def contact(self) -> str:
        return f"sip:{self.user}@{self.network_ip}:{self.network_port}"


_CODECS = {"PCMA": ("8000", "64000"), "PCMU": ("8000", "64000"), "G722": ("16000", "64000")}
_CODECS["L16"] = ("8000", "128000")
_CODECS["OPUS"] = ("48000", "0")


@cache
def recorded_answers(name: str = "registrations.txt") -> tuple[tuple[str, str], ...]:
    """(command, answer) in order; each answer is the text between its ``### api`` line and the
    next one, less the one newline that separates them."""
    text = (FIXTURES / name).read_text()
    parts = re.split(r"^### api (.*)\n", text, flags=re.MULTILINE)
    return tuple(
        (command, answer.removesuffix("\n"))
        for command, answer in zip(parts[1::2], parts[2::2], strict=True)
    )


@cache
def _recorded_channel_rows() -> dict[str, tuple[tuple[str, str], ...]]:
    """The two rows of the recorded ``show channels as json`` (step 7), by direction."""
    for record in read_records(FIXTURES / "esl_session.txt"):
        message = parse_message(record.data) if record.direction == "S->C" else None
        if message is not None and message.body.startswith(b'{"row_count":2'):
            rows = json.loads(message.body)["rows"]
            return {row["direction"]: tuple(row.items()) for row in rows}
    raise ValueError("esl_session.txt has no show channels answer with rows")


def _placed_row(channel: Channel, hostname: str, channels: dict[str, Channel]) -> dict[str, str]:
    """A placed call's leg in the recorded row's keys and order, with this leg's values."""
    row = dict(_recorded_channel_rows()[channel.direction])
    other = channels.get(channel.other_leg)
    rate, bit_rate = _CODECS.get(channel.codec, ("8000", "64000"))
    inbound = channel.direction == "inbound"
    row.update(
        uuid=channel.uuid,
        created=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(channel.created)),
        created_epoch=str(int(channel.created)),
        name=channel.name,
        state="CS_EXECUTE" if inbound else "CS_EXCHANGE_MEDIA",
        cid_name=channel.caller_name,
        cid_num=channel.caller_id,
        ip_addr="127.0.0.1" if inbound else "",
        dest=channel.number,
        application=channel.application,
        application_data=channel.application_data,
        read_codec=channel.codec,
        read_rate=rate,
        read_bit_rate=bit_rate,
        write_codec=channel.codec,
        write_rate=rate,
        write_bit_rate=bit_rate,
        hostname=hostname,
        accountcode=channel.variables.get("accountcode", ""),
        callstate="ACTIVE" if channel.answered else "RINGING",
        callee_name="" if inbound else channel.caller_name,
        callee_num=(other.number if inbound else channel.caller_id) if other else "",
        call_uuid=channel.call_uuid,
        initial_cid_name=channel.caller_name,
        initial_cid_num=channel.caller_id,
        initial_ip_addr="127.0.0.1" if inbound else "",
        initial_dest=channel.number,
    )
    return row


def _registration_row(registration: SipRegistration, hostname: str) -> dict[str, str]:
    recorded = json.loads(dict(recorded_answers())["show registrations as json"])["rows"][0]
    row = dict(recorded)
    row.update(
        reg_user=registration.user,
        realm=registration.realm,
        token=registration.call_id,
        url=f"sofia/{registration.profile}/{registration.contact}",
        expires=str(registration.expires),
        network_ip=registration.network_ip,
        network_port=registration.network_port,
        hostname=hostname,
    )
    return row


@cache
def _recorded_xmlstatus() -> tuple[str, str, str]:
    """The recorded ``sofia xmlstatus profile internal reg``: head, one registration, tail."""
    answer = dict(recorded_answers())["sofia xmlstatus profile internal reg"]
    start = answer.index("    <registration>")
    end = answer.index("</registration>\n") + len("</registration>\n")
    return answer[:start], answer[start:end], answer[end:]


def _registration_xml(item: str, registration: SipRegistration, hostname: str, now: float) -> str:
    expires = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(registration.expires))
    seconds = registration.expires - int(now)
    who = f"{registration.user}@{registration.realm}"
    values = {
        "call-id": registration.call_id,
        "user": who,
        "contact": f'"" <{registration.contact}>',
        "agent": registration.agent,
        "status": f"Registered(UDP)(unknown) exp({expires}) expsecs({seconds})",
        "host": hostname,
        "network-ip": registration.network_ip,
        "network-port": registration.network_port,
        "sip-auth-user": registration.user,
        "sip-auth-realm": registration.realm,
        "mwi-account": who,
    }

    def fill(match: re.Match[str]) -> str:
        tag = match[1]
        return f"<{tag}>{_xml_text(values[tag])}</{tag}>" if tag in values else match[0]

    return re.sub(r"<([a-z-]+)>(.*?)</\1>", fill, item)


def _xml_text(value: str) -> str:
    """Escaped as sofia's xmlstatus escapes (``"`` too, as the recorded contact shows)."""
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        value = value.replace(raw, entity)
    return value


@contextlib.asynccontextmanager
async def running_peer(password: str = "ClueCon") -> AsyncIterator[EslPeer]:
    """``async with running_peer() as peer:`` a started peer on a free loopback port."""
    peer = EslPeer(password)
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@contextlib.asynccontextmanager
async def connected_pool(
    *peers: EslPeer, down: int = 0, **options: Any
) -> AsyncIterator[SwitchPool]:
    """A started SwitchPool on the peers (named fs1, fs2, ...), connected; ``down`` more hosts
    at a port where nothing listens (named after the peers). ``options`` go to each client."""
    fast: dict[str, Any] = {"call_timeout": 3.0, "connect_timeout": 2.0, "backoff": (0.05, 0.2)}
    fast.update(options)
    ports = [peer.port for peer in peers] + [free_port() for _ in range(down)]
    clients = [
        EslClient(name=f"fs{index}", host="127.0.0.1", port=port, password="ClueCon", **fast)
        for index, port in enumerate(ports, start=1)
    ]
    pool = SwitchPool(clients)
    await pool.start()
    try:
        for client in clients[: len(peers)]:
            assert await client.wait_connected(5), f"{client.name} did not connect"
        yield pool
    finally:
        await pool.stop()
