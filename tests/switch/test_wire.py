"""The wire parser against every byte of the real FreeSWITCH recordings."""

from __future__ import annotations

from collections import Counter

import pytest
from greenswitch.esl import ESLEvent

from c2bot.switch.wire import (
    Message,
    WireError,
    iter_messages,
    parse_event_plain,
    parse_message,
    render_event_plain,
    render_headers,
    split_message,
    url_decode,
    url_encode,
)
from tests.support.eslpeer import FIXTURES, Record, read_records

TRANSCRIPTS = [
    "esl_session.txt",
    "fax_events.txt",
    "fax_fail_events.txt",
    "fax_fail_timeout_events.txt",
    "busy_call_events.txt",
]


def server_messages(name: str) -> list[tuple[Record, Message]]:
    return [
        (r, parse_message(r.data)) for r in read_records(FIXTURES / name) if r.direction == "S->C"
    ]


def events(name: str) -> list[tuple[Record, Message]]:
    return [(r, m) for r, m in server_messages(name) if m.content_type == "text/event-plain"]


def label(message: Message) -> str:
    if message.content_type != "text/event-plain":
        return ""
    event = parse_event_plain(message.body)
    return event.subclass or event.name


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_every_server_record_is_one_whole_message(name: str) -> None:
    """Each S->C record parses as exactly one message, and renders back to the same bytes."""
    records = server_messages(name)
    assert records
    for record, message in records:
        if message.content_type == "text/event-plain":
            event = parse_event_plain(message.body)
            pairs = [(k, v) for k, v in event.all_headers if k != "Content-Length"]
            assert render_event_plain(pairs, event.body) == record.data
        else:
            assert render_headers(message.headers) + b"\n" + message.body == record.data


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_client_records_are_single_commands(name: str) -> None:
    """Each C->S record is one command line ended by a blank line, as FreeSWITCH requires."""
    for record in read_records(FIXTURES / name):
        if record.direction == "C->S":
            assert record.data.endswith(b"\n\n")
            assert b"\n" not in record.data[:-2]


def test_a_stream_of_messages_splits_where_the_records_do() -> None:
    """Concatenated server bytes come apart into the recorded messages, none left over."""
    records = [r for r in read_records(FIXTURES / "fax_events.txt") if r.direction == "S->C"]
    stream = b"".join(r.data for r in records)
    assert [m for m in iter_messages(stream)] == [parse_message(r.data) for r in records]
    assert split_message(stream[:-1][-50:]) is None


def test_incomplete_and_overlong_messages_are_errors() -> None:
    """A body shorter than Content-Length, or bytes after the message, are refused."""
    whole = b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n"
    assert parse_message(whole).body == b"+OK\n"
    assert split_message(whole[:-1]) is None
    with pytest.raises(WireError):
        parse_message(whole[:-1])
    with pytest.raises(WireError):
        parse_message(whole + b"x")
    with pytest.raises(WireError):
        parse_message(b"Content-Length: many\n\n")


def test_fax_call_event_sequence() -> None:
    """The successful fax has the recorded events, in the recorded order."""
    assert [label(m) for _, m in events("fax_events.txt")] == [
        "CHANNEL_CREATE",
        "CHANNEL_CREATE",
        "CHANNEL_ANSWER",
        "CHANNEL_ANSWER",
        "BACKGROUND_JOB",
        "spandsp::txfaxnegociateresult",
        "spandsp::rxfaxnegociateresult",
        "spandsp::rxfaxpageresult",
        "spandsp::txfaxpageresult",
        "spandsp::rxfaxpageresult",
        "spandsp::txfaxpageresult",
        "spandsp::rxfaxresult",
        "CHANNEL_HANGUP_COMPLETE",
        "spandsp::txfaxresult",
        "CHANNEL_HANGUP_COMPLETE",
    ]


def test_event_counts_of_the_other_transcripts() -> None:
    """Failed, timed-out and busy calls: the event counts the README describes."""
    timeout = Counter(label(m) for _, m in events("fax_fail_timeout_events.txt"))
    assert timeout["spandsp::txfaxresult"] == 1
    assert not [k for k in timeout if "negociate" in k or "page" in k or "rxfax" in k]
    busy = Counter(label(m) for _, m in events("busy_call_events.txt"))
    assert busy == Counter(
        {
            "CHANNEL_CREATE": 2,
            "CHANNEL_EXECUTE": 1,
            "CHANNEL_EXECUTE_COMPLETE": 1,
            "CHANNEL_HANGUP_COMPLETE": 2,
            "BACKGROUND_JOB": 1,
        }
    )
    session = Counter(label(m) for _, m in events("esl_session.txt"))
    assert session["BACKGROUND_JOB"] == 1 and session["CHANNEL_HANGUP_COMPLETE"] == 2


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("esl_session.txt", "+OK e5a1c0de-0000-4000-8000-00000000e51a\n"),
        ("fax_events.txt", "+OK fa50fa50-0000-4000-8000-00000000f001\n"),
        ("busy_call_events.txt", "-ERR USER_BUSY\n"),
    ],
)
def test_background_job_body_is_split_from_the_headers(name: str, body: str) -> None:
    """The nested result is the body, its Job-UUID is the one the bgapi reply gave."""
    messages = [m for _, m in server_messages(name)]
    reply = next(m for m in messages if m.get("Reply-Text").startswith("+OK Job-UUID"))
    job = next(parse_event_plain(m.body) for m in messages if label(m) == "BACKGROUND_JOB")
    assert job.body == body
    assert job.get("Job-UUID") == reply.get("Job-UUID") != ""
    assert job.get("Content-Length") == str(len(body))
    assert body.strip() not in job.get("Job-Command-Arg")


def test_greenswitch_would_glue_the_job_body_onto_a_header() -> None:
    """Why we parse events ourselves: greenswitch's parser appends the body to the last header."""
    message = next(m for _, m in events("busy_call_events.txt") if label(m) == "BACKGROUND_JOB")
    theirs = ESLEvent(message.body.decode())
    assert "-ERR USER_BUSY" in theirs.headers["Content-Length"]
    assert parse_event_plain(message.body).get("Content-Length") == "15"


def test_custom_subclass_comes_first_and_is_decoded() -> None:
    """CUSTOM events put Event-Subclass before Event-Name; the subclass is URL-decoded."""
    for _, message in events("fax_events.txt"):
        event = parse_event_plain(message.body, host="fs1")
        if event.name != "CUSTOM":
            assert event.subclass == ""
            continue
        assert event.subclass.startswith("spandsp::")
        assert [k for k, _ in event.all_headers][:2] == ["Event-Subclass", "Event-Name"]
        assert event.host == "fs1"


def test_hangup_cause_appears_twice_and_the_first_wins() -> None:
    """CHANNEL_HANGUP_COMPLETE repeats Hangup-Cause; both are kept, the mapping has the first."""
    hangups = [
        parse_event_plain(m.body)
        for _, m in events("busy_call_events.txt")
        if label(m) == "CHANNEL_HANGUP_COMPLETE"
    ]
    assert len(hangups) == 2
    for event in hangups:
        assert event.get_all("Hangup-Cause") == ["USER_BUSY", "USER_BUSY"]
        assert event.get("Hangup-Cause") == "USER_BUSY"
        assert event.variable("hangup_cause_q850") == "17"


def test_values_are_url_decoded() -> None:
    """%2B, %20, %3A and friends decode; the tx result reports what the fixture README says."""
    result = next(
        parse_event_plain(m.body)
        for _, m in events("fax_events.txt")
        if label(m) == "spandsp::txfaxresult"
    )
    assert result.unique_id == "fa50fa50-0000-4000-8000-00000000f001"
    assert result.get("fax-success") == "1"
    assert result.get("fax-document-transferred-pages") == "2"
    assert result.get("fax-local-station-id") == "+1 555 0100"
    assert result.get("fax-remote-station-id") == "RX Station 9178"
    assert result.variable("fax_filename") == "/srv/fx/in.tif"
    assert result.get("Event-Date-GMT") == "Wed, 25 Nov 2026 19:42:30 GMT"
    assert result.variable("missing") == ""
    rx = next(
        parse_event_plain(m.body)
        for _, m in events("fax_events.txt")
        if label(m) == "spandsp::rxfaxresult"
    )
    assert rx.variable("fax_filename").startswith("/srv/fx/work/rx_")
    assert "Hangup-Cause" not in rx.headers


def test_job_command_arg_decodes_to_the_command_sent() -> None:
    """The BACKGROUND_JOB echoes the originate arguments; decoded, they are what we sent."""
    for name in ("fax_events.txt", "fax_fail_events.txt", "busy_call_events.txt"):
        records = read_records(FIXTURES / name)
        sent = next(r.data.decode() for r in records if r.data.startswith(b"bgapi originate"))
        job = next(
            parse_event_plain(m.body) for _, m in events(name) if label(m) == "BACKGROUND_JOB"
        )
        assert "originate " + job.get("Job-Command-Arg") == sent.removeprefix("bgapi ").strip()


def test_url_encoding_matches_freeswitch() -> None:
    """Our encoder leaves ',', '/', '(' and quotes alone, as FreeSWITCH does."""
    assert (
        url_encode("Wed, 25 Nov 2026 19:42:30 GMT") == "Wed,%2025%20Nov%202026%2019%3A42%3A30%20GMT"
    )
    assert url_encode("{a=b}x/y &park()") == "%7Ba%3Db%7Dx/y%20%26park()"
    assert url_encode("'+1 555'") == "'%2B1%20555'"
    assert url_decode(url_encode("é\n%")) == "é\n%"
