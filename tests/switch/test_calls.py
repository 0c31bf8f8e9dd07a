"""Live calls and registrations read from the switch, over the Event Socket peer.

The peer's answers are checked against the recordings first (registrations.txt byte for byte,
the rows of ``show channels as json`` key for key), so what c2bot parses here is what a real
FreeSWITCH sends.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from c2bot.switch import calls
from c2bot.switch.calls import NoSuchCall
from c2bot.switch.esl import DEFAULT_EVENTS, SwitchError, SwitchUnavailable
from c2bot.switch.wire import parse_message
from tests.support.eslpeer import (
    FIXTURES,
    EslPeer,
    connected_pool,
    read_records,
    recorded_answers,
    running_peer,
)

RECORDED_REGISTRATION = {
    "user": "1000",
    "realm": "127.0.0.1",
    "call_id": "280ee908@127.0.0.1",
    "expires_in": 118,
}
RECORDED_NOW = 1795636489 - 118  # the moment of the capture: EXPSECS(118)


def recorded_channels_answer() -> str:
    """The body of the recorded ``show channels as json`` with the two loopback legs."""
    for record in read_records(FIXTURES / "esl_session.txt"):
        message = parse_message(record.data) if record.direction == "S->C" else None
        if message is not None and message.body.startswith(b'{"row_count":2'):
            return message.body.decode()
    raise AssertionError("no recorded channel rows")


async def api(peer: EslPeer, command: str) -> str:
    """The raw body the peer answers to ``api COMMAND`` (what FreeSWITCH would send)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", peer.port)
    try:
        await reader.readuntil(b"\n\n")
        writer.write(b"auth ClueCon\n\n")
        await reader.readuntil(b"\n\n")
        writer.write(f"api {command}\n\n".encode())
        head = (await reader.readuntil(b"\n\n")).decode()
        length = int(head.split("Content-Length: ")[1].split("\n")[0])
        return (await reader.readexactly(length)).decode()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_peer_answers_registrations_as_recorded() -> None:
    """With the recorded phone registered, both recorded registration answers come back
    byte for byte; with none, the empty JSON form FreeSWITCH uses for `show`."""
    recorded = dict(recorded_answers())
    async with running_peer() as peer:
        assert await api(peer, "show registrations as json") == '{"row_count": 0}\n'
        peer.now = lambda: RECORDED_NOW
        peer.register(**RECORDED_REGISTRATION)  # type: ignore[arg-type]
        for command in ("show registrations as json", "sofia xmlstatus profile internal reg"):
            assert await api(peer, command) == recorded[command], command


async def test_peer_lists_placed_calls_in_the_recorded_row_form() -> None:
    """A placed call's legs carry exactly the recorded row keys, in order, both with call_uuid
    of the A leg (a bridged call), and the accountcode our dialplan sets."""
    recorded = json.loads(recorded_channels_answer())["rows"]
    async with running_peer() as peer:
        a_leg = peer.place_call("1001-100", "+31201234567", accountcode="1001")
        answer = json.loads(await api(peer, "show channels as json"))
    assert answer["row_count"] == 2
    by_direction = {row["direction"]: row for row in answer["rows"]}
    for row in recorded:
        assert list(by_direction[row["direction"]]) == list(row)
    assert {row["call_uuid"] for row in answer["rows"]} == {a_leg.uuid}
    assert {row["accountcode"] for row in answer["rows"]} == {"1001"}


def test_recorded_rows_parse_into_legs() -> None:
    """The real answer: epoch times, caller ids, codecs; the loopback B leg has no call_uuid,
    so the two legs are two calls (nothing says they belong together)."""
    legs = calls.parse_channels(recorded_channels_answer(), "fs1")
    a_leg = legs[0]
    assert a_leg.uuid == "e5a1c0de-0000-4000-8000-00000000e51a"
    assert a_leg.created == datetime(2026, 11, 25, 19, 38, 4, tzinfo=UTC)
    assert (a_leg.caller_name, a_leg.caller_number, a_leg.destination) == (
        "Outbound Call",
        "default",
        "hold",
    )
    assert (a_leg.callstate, a_leg.codecs, a_leg.host, a_leg.name) == (
        "ACTIVE",
        "L16",
        "fs1",
        "loopback/hold-a",
    )
    assert [len(call.legs) for call in calls.group_calls(legs)] == [1, 1]
    assert calls.parse_channels('{"row_count": 0}', "fs1") == []
    with pytest.raises(SwitchError, match="no JSON"):
        calls.parse_channels("-ERR something else", "fs1")


async def test_bridged_call_is_one_call_with_the_a_leg_first() -> None:
    """Both legs of a placed call group into one call; the A leg (the caller's) comes first."""
    async with running_peer() as peer, connected_pool(peer) as pool:
        assert await calls.channels(pool) == []
        a_leg = peer.place_call(
            "1001-100", "+31201234567", accountcode="1001", caller_name="Jan", codec="G722"
        )
        listing = await calls.live_channels(pool)
    assert listing.unreachable == {}
    [call] = listing.calls()
    assert call.a_leg.uuid == a_leg.uuid
    assert call.b_leg is not None and call.b_leg.direction == "outbound"
    assert (call.a_leg.caller_name, call.a_leg.caller_number) == ("Jan", "1001-100")
    assert call.a_leg.destination == "+31201234567"
    assert call.accountcodes == ("1001",)
    assert call.codecs == "G722"
    assert call.leg(a_leg.uuid.upper()) is call.a_leg


async def test_hangup_ends_both_legs_in_freeswitchs_order() -> None:
    """uuid_kill on the B leg ends the call: hangup events as recorded (killed leg, other leg,
    then the completes other-first). An unknown uuid is NoSuchCall, from FreeSWITCH's -ERR."""
    events_wanted = (*DEFAULT_EVENTS, "CHANNEL_HANGUP")
    async with running_peer() as peer, connected_pool(peer, events=events_wanted) as pool:
        a_leg = peer.place_call("1001-100", "+31201234567", accountcode="1001")
        b_uuid = a_leg.other_leg
        stream = pool.subscribe()
        with pytest.raises(NoSuchCall):
            await calls.hangup(pool, "00000000-0000-0000-0000-000000000000")
        await calls.hangup(pool, b_uuid)
        events = []
        while len(events) < 4:  # the call's create and answer may still be on their way
            event = await stream.get(5)
            if event.name.startswith("CHANNEL_HANGUP"):
                events.append(event)
        stream.close()
        assert peer.channels == {}
        assert "api uuid_kill 00000000-0000-0000-0000-000000000000" in peer.commands
        with pytest.raises(ValueError, match="not a call uuid"):
            await calls.hangup(pool, "x\n\napi fsctl shutdown")
    assert [(e.name, e.unique_id) for e in events] == [
        ("CHANNEL_HANGUP", b_uuid),
        ("CHANNEL_HANGUP", a_leg.uuid),
        ("CHANNEL_HANGUP_COMPLETE", a_leg.uuid),
        ("CHANNEL_HANGUP_COMPLETE", b_uuid),
    ]
    assert events[-1].get_all("Hangup-Cause") == ["NORMAL_CLEARING", "NORMAL_CLEARING"]


async def test_barge_originates_to_the_device_with_eavesdrop() -> None:
    """The listening phone is rung with our caller id and eavesdrop on the call's leg; a phone
    that is not registered fails as FreeSWITCH's user/ endpoint does."""
    async with running_peer() as peer, connected_pool(peer) as pool:
        a_leg = peer.place_call("1001-100", "+31201234567", accountcode="1001")
        with pytest.raises(SwitchError) as refused:
            await calls.barge(
                pool, a_leg.other_leg, "user/R100-200@R100.sip.localhost", "Listen 1001-100", "100"
            )
        assert refused.value.reply == "-ERR USER_NOT_REGISTERED"
        peer.register("R100-200", "R100.sip.localhost")
        listener = await calls.barge(
            pool,
            a_leg.other_leg,
            "user/R100-200@R100.sip.localhost",
            "Listen to 1001-100, Acme",
            "1001-100",
        )
        call = peer.originates[-1]
    assert listener == call.uuid and listener in peer.channels
    assert call.dialstring == "user/R100-200@R100.sip.localhost"
    assert (call.application, call.argument) == ("eavesdrop", a_leg.other_leg)
    assert call.variables["origination_caller_id_name"] == "Listen to 1001-100, Acme"
    assert call.variables["origination_caller_id_number"] == "1001-100"
    assert call.variables["eavesdrop_enable_dtmf"] == "true"


async def test_registrations_carry_the_user_agent_from_sofia() -> None:
    """Registrations join `show registrations` with sofia's xmlstatus (user agent, contact);
    one user@realm is found, an unregistered one is None."""
    async with running_peer() as peer, connected_pool(peer) as pool:
        assert await calls.registrations(pool) == []
        peer.now = lambda: RECORDED_NOW
        peer.register(**RECORDED_REGISTRATION)  # type: ignore[arg-type]
        peer.register("1001-100", "1001.sip.localhost", agent="Yealink SIP-T46U 108.86", port=5062)
        everyone = await calls.registrations(pool)
        found = await calls.registration(pool, "1001-100", "1001.SIP.localhost")
        missing = await calls.registration(pool, "1001-101", "1001.sip.localhost")
    assert [(r.user, r.realm) for r in everyone] == [
        ("1000", "127.0.0.1"),
        ("1001-100", "1001.sip.localhost"),
    ]
    recorded = everyone[0]
    assert recorded.user_agent == "fixture-sip-client/0.1"
    assert recorded.contact == "sip:1000@127.0.0.1:5070"
    assert recorded.expires == datetime(2026, 11, 25, 19, 54, 49, tzinfo=UTC)
    assert (recorded.network_ip, recorded.network_port, recorded.network_proto) == (
        "127.0.0.1",
        "5070",
        "udp",
    )
    assert (recorded.profile, recorded.host, recorded.call_id) == (
        "internal",
        "fs1",
        "280ee908@127.0.0.1",
    )
    assert "expsecs(118)" in recorded.status
    assert found is not None
    assert found.user_agent == "Yealink SIP-T46U 108.86"
    assert found.contact == "sip:1001-100@127.0.0.1:5062"
    assert missing is None


async def test_no_switch_or_switch_down_is_switch_unavailable() -> None:
    """No pool, or no host answering, is SwitchUnavailable: not 'no calls', not 'unregistered'."""
    with pytest.raises(SwitchUnavailable, match="no connection to the switch"):
        await calls.registration(None, "1001-100", "1001.sip.localhost")
    with pytest.raises(SwitchUnavailable):
        await calls.channels(None)
    async with connected_pool(down=1) as pool:
        with pytest.raises(SwitchUnavailable, match="fs1"):
            await calls.registration(pool, "1001-100", "1001.sip.localhost")
        with pytest.raises(SwitchUnavailable):
            await calls.live_channels(pool)
        with pytest.raises(SwitchUnavailable):
            await calls.hangup(pool, "e5a1c0de-0000-4000-8000-00000000e51a")


async def test_one_switch_down_is_reported_not_fatal() -> None:
    """With two switches, the one that answers is listed and the other is named as unreachable;
    hangup finds the call on whichever switch has it."""
    async with (
        running_peer() as first,
        running_peer() as second,
        connected_pool(first, second, down=1) as pool,
    ):
        on_second = second.place_call("2001-100", "+3215551234", accountcode="2001")
        listing = await calls.live_channels(pool)
        assert [leg.host for leg in listing.legs] == ["fs2", "fs2"]
        assert list(listing.unreachable) == ["fs3"]
        await calls.hangup(pool, on_second.uuid, host="fs2")
        assert second.channels == {}
        assert "api uuid_kill " + on_second.uuid not in first.commands
