"""Real faxes through the peer: spandsp sends the TIFF, the client sees mod_spandsp's events."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from c2bot.switch import EslClient, EslEvent, EventStream
from tests.conftest import missing_server
from tests.support.eslpeer import FIXTURES, EslPeer, running_peer

TX_FAX = FIXTURES / "tx_fax.tif"
LINE_WAIT = 180.0  # spandsp runs the whole call in memory; generous for slow CI machines


def require_spandsp() -> None:
    if importlib.util.find_spec("tests.support.spandsp") is None:
        missing_server("tests.support.spandsp")
    from tests.support import spandsp

    if not spandsp.available():
        missing_server("libspandsp.so.2")


@pytest.fixture
async def switch() -> AsyncIterator[tuple[EslPeer, EslClient]]:
    require_spandsp()
    async with running_peer() as peer:
        client = EslClient(name="fs1", host="127.0.0.1", port=peer.port, password="ClueCon")
        await client.start()
        assert await client.wait_connected(5)
        try:
            yield peer, client
        finally:
            await client.stop()


async def events_until(stream: EventStream, uuid: str, last: str) -> list[EslEvent]:
    """This channel's events up to and including the one named ``last``."""
    seen: list[EslEvent] = []
    while True:
        event = await stream.get(LINE_WAIT)
        if event.unique_id != uuid:
            continue
        seen.append(event)
        if last in (event.name, event.subclass):
            return seen


def names(events: list[EslEvent]) -> list[str]:
    return [e.subclass or e.name for e in events]


async def test_two_page_fax_goes_out(switch: tuple[EslPeer, EslClient]) -> None:
    """originate &txfax of the 2-page fixture: negotiation, two pages, success, hangup."""
    peer, client = switch
    stream = client.subscribe()
    result = await client.bgapi(
        "originate {origination_uuid=fx-1,fax_ident='+1 555 0100',fax_header='C2 Test',"
        f"c2_job=42}}sofia/gateway/pstn/31201234567 &txfax({TX_FAX})"
    )
    assert result == "+OK fx-1"
    events = await events_until(stream, "fx-1", "CHANNEL_HANGUP_COMPLETE")
    assert names(events) == [
        "CHANNEL_CREATE",
        "CHANNEL_ANSWER",
        "spandsp::txfaxnegociateresult",
        "spandsp::txfaxpageresult",
        "spandsp::txfaxpageresult",
        "spandsp::txfaxresult",
        "CHANNEL_HANGUP_COMPLETE",
    ]
    done = next(e for e in events if e.subclass == "spandsp::txfaxresult")
    assert done.get("fax-success") == "1"
    assert done.get("fax-result-code") == "0"
    assert done.get("fax-document-transferred-pages") == "2"
    assert done.get("fax-document-total-pages") == "2"
    assert done.get("fax-local-station-id") == "+1 555 0100"
    assert done.variable("fax_filename") == str(TX_FAX)
    assert done.variable("c2_job") == "42"
    assert "uuid" not in done.headers
    assert events[3].get("uuid") == "fx-1"
    assert [o.file for o in peer.originates] == [str(TX_FAX)]
    assert peer.originates[0].fax.success
    stream.close()


async def test_silent_line_fails_the_fax(switch: tuple[EslPeer, EslClient]) -> None:
    """Answered but no fax machine: only a failed txfaxresult, no negotiation or pages."""
    peer, client = switch
    peer.lines["555"] = "silence"
    peer.silence_seconds = 5.0
    stream = client.subscribe()
    await client.bgapi(
        f"originate {{origination_uuid=sl-1}}sofia/gateway/pstn/555 &txfax({TX_FAX})"
    )
    events = await events_until(stream, "sl-1", "CHANNEL_HANGUP_COMPLETE")
    assert not [n for n in names(events) if "negociate" in n or "page" in n]
    done = next(e for e in events if e.subclass == "spandsp::txfaxresult")
    assert done.get("fax-success") == "0"
    assert done.get("fax-result-code") == "49"  # as FreeSWITCH recorded: call dropped prematurely
    assert done.get("fax-document-transferred-pages") == "0"
    stream.close()


async def test_delivered_fax_arrives_with_its_variables(
    switch: tuple[EslPeer, EslClient], tmp_path: Path
) -> None:
    """deliver_fax runs rxfax into rx_path; rxfaxresult names the file and carries our variables."""
    peer, client = switch
    stream = client.subscribe()
    rx_path = tmp_path / "rx.tif"
    result = await peer.deliver_fax(
        TX_FAX,
        rx_path,
        variables={"c2_did": "31201234567", "accountcode": "1001"},
        caller_id="31612345678",
    )
    assert result.success and result.pages_transferred == 2
    uuid = peer.deliveries[0].uuid
    events = await events_until(stream, uuid, "CHANNEL_HANGUP_COMPLETE")
    assert names(events)[:3] == [
        "CHANNEL_CREATE",
        "CHANNEL_ANSWER",
        "spandsp::rxfaxnegociateresult",
    ]
    assert names(events).count("spandsp::rxfaxpageresult") == 2
    done = next(e for e in events if e.subclass == "spandsp::rxfaxresult")
    assert done.get("fax-success") == "1"
    assert done.variable("fax_filename") == str(rx_path)
    assert done.variable("c2_did") == "31201234567"
    assert done.variable("accountcode") == "1001"
    assert done.get("Caller-Caller-ID-Number") == "31612345678"
    assert "Hangup-Cause" not in done.headers
    assert rx_path.stat().st_size > 0
    stream.close()
