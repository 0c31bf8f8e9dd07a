"""EslClient and SwitchPool against the Event Socket peer, over real loopback sockets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from c2bot.config.settings import load_settings
from c2bot.switch import (
    EslClient,
    EslEvent,
    EventStream,
    SwitchError,
    SwitchPool,
    SwitchUnavailable,
    pool_from_settings,
)
from tests.support.eslpeer import EslPeer, running_peer
from tests.support.net import free_port

FAST = {"call_timeout": 3.0, "connect_timeout": 2.0, "backoff": (0.05, 0.2)}


def make_client(peer: EslPeer, name: str = "default", password: str = "ClueCon") -> EslClient:
    return EslClient(name=name, host="127.0.0.1", port=peer.port, password=password, **FAST)  # type: ignore[arg-type]


@pytest.fixture
async def peer() -> AsyncIterator[EslPeer]:
    async with running_peer() as running:
        yield running


@pytest.fixture
async def client(peer: EslPeer) -> AsyncIterator[EslClient]:
    esl = make_client(peer)
    await esl.start()
    assert await esl.wait_connected(5)
    try:
        yield esl
    finally:
        await esl.stop()


async def next_named(stream: EventStream, name: str) -> EslEvent:
    while True:
        event = await stream.get(5)
        if name in (event.name, event.subclass):
            return event


async def test_api_returns_the_body(client: EslClient, peer: EslPeer) -> None:
    """api status answers with the switch's status text, minus the last newline."""
    peer.status_text = "UP 0 years\nFreeSWITCH is ready\n"
    assert await client.api("status") == "UP 0 years\nFreeSWITCH is ready"
    assert await client.api("show channels as json") == '{"row_count": 0}'
    assert peer.commands[-1] == "api show channels as json"


async def test_err_answers_raise_switch_error(client: EslClient) -> None:
    """-ERR bodies become SwitchError carrying FreeSWITCH's text."""
    with pytest.raises(SwitchError) as caught:
        await client.api("uuid_kill 00000000-0000-0000-0000-000000000000")
    assert caught.value.reply == "-ERR No such channel!"
    assert not isinstance(caught.value, SwitchUnavailable)
    with pytest.raises(SwitchError, match="Command not found"):
        await client.api("no_such_api_command")


async def test_bgapi_originate_matches_its_job(client: EslClient, peer: EslPeer) -> None:
    """bgapi returns the BACKGROUND_JOB body of its own Job-UUID; the call gets our variables."""
    stream = client.subscribe()
    result = await client.bgapi(
        "originate {origination_uuid=call-1,c2_job='7, urgent'}sofia/gateway/pstn/31201234567"
        " &park()"
    )
    assert result == "+OK call-1"
    created = await next_named(stream, "CHANNEL_CREATE")
    assert created.unique_id == "call-1"
    assert created.variable("c2_job") == "7, urgent"
    assert created.host == "default"
    assert peer.originates[0].number == "31201234567"
    assert await client.api("uuid_exists call-1") == "true"
    assert await client.api("uuid_kill call-1") == "+OK"
    hangup = await next_named(stream, "CHANNEL_HANGUP_COMPLETE")
    assert hangup.unique_id == "call-1"
    assert await client.api("uuid_exists call-1") == "false"
    stream.close()


async def test_busy_and_no_answer_fail_the_originate(client: EslClient, peer: EslPeer) -> None:
    """A busy line answers -ERR USER_BUSY and hangs up with that cause, twice in the event."""
    peer.lines["200"] = "busy"
    peer.lines["201"] = "noanswer"
    stream = client.subscribe()
    with pytest.raises(SwitchError) as busy:
        await client.bgapi("originate {origination_uuid=b1,c2_job=3}sofia/gateway/pstn/200 &park()")
    assert busy.value.reply == "-ERR USER_BUSY"
    hangup = await next_named(stream, "CHANNEL_HANGUP_COMPLETE")
    assert hangup.get_all("Hangup-Cause") == ["USER_BUSY", "USER_BUSY"]
    assert hangup.variable("c2_job") == "3"
    with pytest.raises(SwitchError, match="NO_ANSWER"):
        await client.bgapi("originate sofia/gateway/pstn/201 &park()")
    assert [o.result for o in peer.originates] == ["-ERR USER_BUSY\n", "-ERR NO_ANSWER\n"]
    stream.close()


async def test_a_slow_answer_times_out_without_shifting_replies(
    client: EslClient, peer: EslPeer
) -> None:
    """A timed-out call raises SwitchUnavailable; its late reply is not given to the next call."""
    peer.delays["status"] = 0.5
    with pytest.raises(SwitchUnavailable, match="no reply"):
        await client.api("status", timeout=0.1)
    assert await client.api("uuid_exists nope") == "false"
    assert client.state == "connected"


async def test_calls_from_many_tasks_at_once(client: EslClient) -> None:
    """Concurrent api and bgapi calls each get their own answer."""
    uuids = [f"c-{n}" for n in range(15)]
    originates = [
        client.bgapi(f"originate {{origination_uuid={u}}}sofia/gateway/pstn/{n} &park()")
        for n, u in enumerate(uuids)
    ]
    checks = [client.api(f"uuid_exists missing-{n}") for n in range(15)]
    results = await asyncio.gather(*originates, *checks)
    assert results[:15] == [f"+OK {u}" for u in uuids]
    assert results[15:] == ["false"] * 15
    exists = await asyncio.gather(*(client.api(f"uuid_exists {u}") for u in uuids))
    assert exists == ["true"] * 15


async def test_reconnects_and_subscribes_again(client: EslClient, peer: EslPeer) -> None:
    """After the switch drops us the client reconnects, re-subscribes, and events flow again."""
    stream = client.subscribe()
    peer.kick()
    for _ in range(100):
        if client.state != "connected":
            break
        await asyncio.sleep(0.01)
    assert client.state.startswith(("down", "connecting"))
    assert await client.wait_connected(5)
    assert client.health()["reconnects"] == 1
    assert sum(c.startswith("event plain ") for c in peer.commands) == 2
    await client.bgapi("originate {origination_uuid=after}sofia/gateway/pstn/1 &park()")
    assert (await next_named(stream, "CHANNEL_CREATE")).unique_id == "after"
    stream.close()


async def test_calls_fail_fast_while_down() -> None:
    """With no switch listening, calls raise SwitchUnavailable and health says why."""
    client = EslClient(name="gone", host="127.0.0.1", port=free_port(), password="x", **FAST)  # type: ignore[arg-type]
    assert client.state == "stopped"
    with pytest.raises(SwitchUnavailable, match="not started"):
        await client.api("status")
    await client.start()
    try:
        assert not await client.wait_connected(0.3)
        with pytest.raises(SwitchUnavailable):
            await client.api("status")
        health = client.health()
        assert str(health["state"]).startswith(("down: connection refused", "connecting"))
        assert health["last_error"] == "connection refused"
    finally:
        await client.stop()
    assert client.state == "stopped"


async def test_wrong_password_shows_in_health(peer: EslPeer) -> None:
    """A refused password keeps the client down, with the switch's answer in the state."""
    client = make_client(peer, password="wrong")
    await client.start()
    try:
        assert not await client.wait_connected(0.3)
        assert "-ERR invalid" in str(client.health()["last_error"])
    finally:
        await client.stop()


async def test_stop_is_clean(peer: EslPeer) -> None:
    """stop() says exit, joins the thread, ends streams; later calls are refused."""
    client = make_client(peer)
    await client.start()
    assert await client.wait_connected(5)
    stream = client.subscribe()
    await client.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("esl-")]
    assert peer.commands[-1] == "exit"
    assert [e async for e in stream] == []
    with pytest.raises(SwitchUnavailable):
        await client.api("status")
    await client.stop()  # twice is harmless


async def test_pool_of_two_switches() -> None:
    """A pool from settings: default host plus C2_ESL_HOSTS; events say which host they are from."""
    async with running_peer() as first, running_peer(password="other") as second:
        settings = load_settings(
            C2_ESL_HOST="127.0.0.1",
            C2_ESL_PORT=first.port,
            C2_ESL_HOSTS=f"fs2=127.0.0.1:{second.port}:other",
        )
        pool = pool_from_settings(settings, **FAST)
        await pool.start()
        try:
            assert pool.get() is pool.get("default")
            with pytest.raises(SwitchError, match="fs2"):
                pool.get("fs9")
            assert await pool.get("default").wait_connected(5)
            assert await pool.get("fs2").wait_connected(5)
            stream = pool.subscribe()
            await pool.get("fs2").bgapi(
                "originate {origination_uuid=two}sofia/gateway/pstn/2 &park()"
            )
            await pool.get().bgapi("originate {origination_uuid=one}sofia/gateway/pstn/1 &park()")
            created = {}
            while len(created) < 2:
                event = await next_named(stream, "CHANNEL_CREATE")
                created[event.host] = event.unique_id
            assert created == {"fs2": "two", "default": "one"}
            assert [o.uuid for o in second.originates] == ["two"]
            assert {h["state"] for h in pool.health().values()} == {"connected"}
            stream.close()
        finally:
            await pool.stop()


def test_pool_rejects_duplicate_names() -> None:
    """Two switches with one name would make get() ambiguous."""
    one = EslClient(name="a", host="h", port=1, password="p")
    with pytest.raises(ValueError, match="two switches"):
        SwitchPool([one, EslClient(name="a", host="h", port=2, password="p")])


async def test_a_full_stream_drops_and_counts(client: EslClient) -> None:
    """A consumer that falls behind loses new events (counted), not the process's memory."""
    stream = client.subscribe(maxsize=2)
    await client.bgapi("originate {origination_uuid=full}sofia/gateway/pstn/1 &park()")
    await asyncio.sleep(0.05)
    assert stream.dropped == 1
    assert [(await stream.get(1)).name for _ in range(2)] == ["CHANNEL_CREATE", "CHANNEL_ANSWER"]
    stream.close()
    assert [e async for e in stream] == []
