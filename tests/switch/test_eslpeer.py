"""The test peer speaks FreeSWITCH's bytes: the recorded session replayed against it.

Replies are compared byte for byte. Two things are fed in rather than compared: the ``status``
text (uptime varies; ``peer.status_text`` is set to the recorded one) and the bgapi Job-UUID
(``peer.new_uuid`` returns the recorded one). Normalised, and said so where it happens: the
second ``show channels as json`` (the peer simulates one leg, FreeSWITCH's loopback has two,
so rows and keys are compared, not bytes) and, in events, the date and sequence headers.
"""

from __future__ import annotations

import asyncio
import json

from c2bot.switch.wire import EslEvent, Message, parse_event_plain, parse_message, split_message
from tests.support.eslpeer import FIXTURES, EslPeer, parse_originate, read_records, running_peer

VARYING = {"Event-Date-Local", "Event-Date-GMT", "Event-Date-Timestamp", "Event-Sequence"}


async def read_message(reader: asyncio.StreamReader) -> bytes:
    data = await reader.readuntil(b"\n\n")
    message = parse_message(data) if b"Content-Length" not in data else None
    if message is None:
        head = parse_message(data.replace(b"Content-Length", b"X-Length"))
        data += await reader.readexactly(int(head.get("X-Length")))
    return data


async def read_replies(
    reader: asyncio.StreamReader, count: int, events: list[EslEvent]
) -> list[bytes]:
    """The next ``count`` non-event messages; events met on the way go to ``events``."""
    replies: list[bytes] = []
    while len(replies) < count:
        async with asyncio.timeout(5):
            data = await read_message(reader)
        message = parse_message(data)
        if message.content_type == "text/event-plain":
            events.append(parse_event_plain(message.body))
        else:
            replies.append(data)
    return replies


def exchanges() -> list[tuple[bytes, list[Message], list[bytes]]]:
    """(command sent, recorded events, recorded replies) per C->S record."""
    result: list[tuple[bytes, list[Message], list[bytes]]] = [(b"", [], [])]
    for record in read_records(FIXTURES / "esl_session.txt"):
        if record.direction == "C->S":
            result.append((record.data, [], []))
            continue
        message = parse_message(record.data)
        if message.content_type == "text/event-plain":
            result[-1][1].append(message)
        else:
            result[-1][2].append(record.data)
    return result


def recorded_body(replies: list[bytes]) -> str:
    return parse_message(replies[0]).body.decode()


async def test_recorded_session_replayed_byte_for_byte() -> None:
    """Every reply of the recorded session comes back from the peer with the same bytes."""
    session = exchanges()
    async with running_peer() as peer:
        peer.status_text = recorded_body(session[2][2])
        job_reply = parse_message(session[5][2][0])
        peer.new_uuid = lambda: job_reply.get("Job-UUID")
        reader, writer = await asyncio.open_connection("127.0.0.1", peer.port)
        got_events: list[EslEvent] = []
        try:
            for command, _, replies in session:
                writer.write(command)
                got = await read_replies(reader, len(replies), got_events)
                if command == b"api show channels as json\n\n" and peer.channels:
                    check_channels_json(got[0], replies[0], peer)
                else:
                    assert got == replies, command
            assert await reader.read() == b""  # the peer closed after the disconnect notice
        finally:
            writer.close()
            await writer.wait_closed()
    check_events(got_events, [m for _, events, _ in session for m in events])


def check_channels_json(got: bytes, recorded: bytes, peer: EslPeer) -> None:
    ours, theirs = (json.loads(parse_message(x).body) for x in (got, recorded))
    assert ours["row_count"] == len(ours["rows"]) == len(peer.channels) == 1
    assert list(ours["rows"][0]) == list(theirs["rows"][0])
    assert ours["rows"][0]["uuid"] == theirs["rows"][0]["uuid"]
    assert parse_message(got).body.startswith(b'{"row_count":1,"rows":[{"uuid":')


def check_events(got: list[EslEvent], recorded_messages: list[Message]) -> None:
    """The A leg's events: the recorded ones of that leg, same headers in the same order."""
    recorded = [parse_event_plain(m.body) for m in recorded_messages]
    a_leg = [e for e in recorded if e.unique_id.endswith("e51a") or e.name == "BACKGROUND_JOB"]
    assert (
        [e.name for e in got]
        == [e.name for e in a_leg]
        == [
            "CHANNEL_CREATE",
            "CHANNEL_ANSWER",
            "BACKGROUND_JOB",
            "CHANNEL_HANGUP",
            "CHANNEL_HANGUP_COMPLETE",
        ]
    )
    job, recorded_job = got[2], a_leg[2]
    assert _stable(job) == _stable(recorded_job)
    assert job.body == recorded_job.body
    for ours, theirs in zip(got, a_leg, strict=True):
        if ours.name == "BACKGROUND_JOB":
            continue
        assert ours.unique_id == theirs.unique_id
        assert ours.get("Channel-Name") == theirs.get("Channel-Name") == "loopback/hold-a"
        assert ours.variable("origination_caller_id_number") == "1000"
        assert _leading(ours) == _leading(theirs)
    assert got[-1].get_all("Hangup-Cause") == ["NORMAL_CLEARING", "NORMAL_CLEARING"]


def _stable(event: EslEvent) -> list[tuple[str, str]]:
    return [(k, "*" if k in VARYING else v) for k, v in event.all_headers]


def _leading(event: EslEvent) -> list[str]:
    """Header names up to the first variable: the part whose order FreeSWITCH fixes."""
    names = [k for k, _ in event.all_headers]
    return names[: next(i for i, k in enumerate(names) if k.startswith("variable_"))]


async def test_wrong_password_is_refused_and_disconnected() -> None:
    """A wrong password gets FreeSWITCH's '-ERR invalid' and the connection is closed."""
    async with running_peer(password="secret") as peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", peer.port)
        try:
            assert await read_message(reader) == b"Content-Type: auth/request\n\n"
            writer.write(b"auth ClueCon\n\n")
            reply = await read_message(reader)
            assert reply == b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n"
            notice = parse_message(await read_message(reader))
            assert notice.content_type == "text/disconnect-notice"
            assert await reader.read() == b""
        finally:
            writer.close()
            await writer.wait_closed()


async def test_commands_need_the_blank_line() -> None:
    """A command without its terminating blank line is not answered (strict framing)."""
    async with running_peer() as peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", peer.port)
        try:
            await read_message(reader)
            writer.write(b"auth ClueCon\n")
            await writer.drain()
            await asyncio.sleep(0.1)
            assert peer.commands == []
            writer.write(b"\n")
            assert b"+OK accepted" in await read_message(reader)
        finally:
            writer.close()
            await writer.wait_closed()


async def test_json_events_are_refused() -> None:
    """We only ever use plain events; the peer says no to json rather than pretend."""
    async with running_peer() as peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", peer.port)
        try:
            await read_message(reader)
            writer.write(b"auth ClueCon\n\nevent json ALL\n\n")
            await read_message(reader)
            assert b"Reply-Text: -ERR" in await read_message(reader)
        finally:
            writer.close()
            await writer.wait_closed()


def test_originate_variables_keep_quoted_commas_and_spaces() -> None:
    """Single-quoted values may hold commas and spaces; the number is the last dial segment."""
    variables, dialstring, app, arg = parse_originate(
        "{origination_uuid=u1,fax_ident='+1 555, 0100',c2_job=7}sofia/gateway/pstn/31201234567"
        " &txfax(/var/fax/x y.tif)"
    )
    assert variables == {"origination_uuid": "u1", "fax_ident": "+1 555, 0100", "c2_job": "7"}
    assert (dialstring, app, arg) == ("sofia/gateway/pstn/31201234567", "txfax", "/var/fax/x y.tif")


def test_split_message_needs_the_whole_body() -> None:
    """The reader helper relies on this: a partial body is not a message yet."""
    assert split_message(b"Content-Length: 3\n\nab") is None
