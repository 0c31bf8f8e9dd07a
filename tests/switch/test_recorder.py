"""Recordings made by dialling 1800: the call's hang-up event becomes one Recording row.

The call is placed on the Event Socket peer with the variables our 1800 dialplan sets; the
recorder listens through the same CallRouter the serve process uses.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from c2bot.bot.faxbridge import FaxBridge
from c2bot.bot.mail.outbox import Outbox
from c2bot.bot.services import Services
from c2bot.faxgw.worker import CallRouter
from c2bot.storage.models import AuditEntry, Recording
from c2bot.switch.esl import EventStream, SwitchPool
from c2bot.switch.recorder import PhoneRecorder
from c2bot.switch.wire import EslEvent
from tests.conftest import World, test_settings
from tests.support.eslpeer import EslPeer, connected_pool, running_peer

# 2026-11-25 19:38:04 UTC is 20:38:04 in Amsterdam, the accounts' time zone.
MOMENT = datetime(2026, 11, 25, 19, 38, 4, tzinfo=UTC)


def write_wav(path: Path, seconds: float, rate: int = 8000, channels: int = 1) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x01\x00" * channels * int(rate * seconds))
    return path.stat().st_size


@dataclass
class Line:
    peer: EslPeer
    pool: SwitchPool
    recorder: PhoneRecorder
    directory: Path
    stream: EventStream

    def dial_1800(self, path: Path, account: str = "1001", device: str = "1001-100") -> str:
        """A device dials 1800, records into ``path`` and hangs up; returns the call's uuid."""
        call = self.peer.place_call(
            device,
            "1800",
            accountcode=account,
            bridged=False,
            application=("record", str(path)),
            variables={
                "c2_record_account": account,
                "c2_record_file": str(path),
                "c2_record_device": device,
            },
        )
        self.peer.hang_up(call.uuid)
        return call.uuid

    async def hangup_event(self, uuid: str) -> EslEvent:
        while True:
            event = await self.stream.get(5)
            if event.name == "CHANNEL_HANGUP_COMPLETE" and event.unique_id == uuid:
                return event


@pytest.fixture
async def line(services: Services, world: World, tmp_path: Path) -> AsyncIterator[Line]:
    directory = tmp_path / "recordings"
    settings = test_settings(services.settings.database_url, C2_RECORDINGS_DIR=str(directory))
    recorder = PhoneRecorder(settings, services.sessions, clock=lambda: MOMENT)
    async with running_peer() as peer, connected_pool(peer) as pool:
        router = CallRouter(pool)
        router.handlers.append(recorder.on_event)
        router.start()
        stream = pool.subscribe()
        try:
            yield Line(peer, pool, recorder, directory, stream)
        finally:
            stream.close()
            await router.stop()


async def recordings(services: Services) -> list[Recording]:
    async with services.sessions() as session:
        return list(await session.scalars(select(Recording).order_by(Recording.id)))


async def until_stored(line: Line, count: int) -> None:
    for _ in range(250):
        if line.recorder.stored >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{line.recorder.stored} recording(s) stored, not {count}")


async def test_dialling_1800_stores_one_recording(
    services: Services, world: World, line: Line
) -> None:
    """The hang-up event makes a phone recording named in the account's time zone, with the
    file's rate, length and size, relative to C2_RECORDINGS_DIR; the same event again (or
    twice at once) adds nothing."""
    path = line.directory / "1001" / "phone-abc.wav"
    size = write_wav(path, 2.5)
    uuid = line.dial_1800(path)
    event = await line.hangup_event(uuid)
    await until_stored(line, 1)
    [stored] = await recordings(services)
    assert stored.name == "phone-20261125-203804"
    assert stored.account_id == world.customer.account_id
    assert stored.filename == "1001/phone-abc.wav"
    assert (stored.sample_rate, stored.duration_ms, stored.size) == (8000, 2500, size)
    assert (stored.source, stored.recorded_by) == ("phone", "1001-100")
    async with services.sessions() as session:
        [entry] = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "recording.add")
        )
    assert (entry.object_id, entry.account_id) == (stored.name, stored.account_id)
    assert entry.actor_label == "SIP device 1001-100 (dialled 1800)"
    assert entry.details["call"] == uuid
    again = await asyncio.gather(line.recorder.store(event), line.recorder.store(event))
    assert again == [None, None]
    assert len(await recordings(services)) == 1


async def test_a_second_recording_in_the_same_second_gets_a_suffix(
    services: Services, world: World, line: Line
) -> None:
    """Names are unique per account: phone-...-2 for the next one in the same second; another
    account may have the plain name."""
    for index, account in enumerate(("1001", "1001", "2001"), start=1):
        path = line.directory / account / f"call-{index}.wav"
        write_wav(path, 1.5, rate=16000)
        line.dial_1800(path, account=account, device=f"{account}-100")
        await until_stored(line, index)
    names = [(r.account_id, r.name, r.sample_rate) for r in await recordings(services)]
    assert names == [
        (world.customer.account_id, "phone-20261125-203804", 16000),
        (world.customer.account_id, "phone-20261125-203804-2", 16000),
        (world.other.account_id, "phone-20261125-203804", 16000),
    ]


async def test_bad_recordings_are_logged_and_skipped(
    services: Services, world: World, line: Line, caplog: pytest.LogCaptureFixture
) -> None:
    """Too short, missing, not playable, outside the recordings directory, or for an unknown
    account: each is logged with the reason, and no row is made."""
    caplog.set_level(logging.INFO, logger="c2bot.switch.recorder")
    short = line.directory / "1001" / "short.wav"
    write_wav(short, 0.4)
    stereo = line.directory / "1001" / "stereo.wav"
    write_wav(stereo, 2, channels=2)
    outside = line.directory.parent / "elsewhere.wav"
    write_wav(outside, 2)
    cases = [
        (short, "1001", "too short"),
        (line.directory / "1001" / "missing.wav", "1001", "does not exist"),
        (stereo, "1001", "stereo"),
        (outside, "1001", "not in C2_RECORDINGS_DIR"),
    ]
    good = line.directory / "9999" / "fine.wav"
    write_wav(good, 2)
    for path, account, _ in [*cases, (good, "9999", "unknown account")]:
        event = await line.hangup_event(line.dial_1800(path, account=account))
        assert await line.recorder.store(event) is None
    for _, _, words in [*cases, (good, "9999", "unknown account")]:
        assert words in caplog.text, words
    assert await recordings(services) == []


async def test_serve_with_only_esl_records_phone_recordings(
    services: Services, world: World, tmp_path: Path
) -> None:
    """`c2bot serve --only esl` runs the recorder on the switch's events (no fax part)."""
    directory = tmp_path / "recordings"
    async with running_peer() as peer:
        settings = test_settings(
            services.settings.database_url,
            C2_ESL_PORT=peer.port,
            C2_RECORDINGS_DIR=str(directory),
        )
        served = Services(settings=settings, engine=services.engine)
        bridge = FaxBridge(served, Outbox(served, CollectorRegistry()), ("esl",))
        await bridge.start(lambda name, run: None)
        try:
            assert bridge.worker is None and bridge.router is not None
            assert await bridge.router.pool.get().wait_connected(5)
            path = directory / "1001" / "served.wav"
            write_wav(path, 1.2)
            call = peer.place_call(
                "1001-100",
                "1800",
                accountcode="1001",
                bridged=False,
                variables={
                    "c2_record_account": "1001",
                    "c2_record_file": str(path),
                    "c2_record_device": "1001-100",
                },
            )
            peer.hang_up(call.uuid)
            for _ in range(100):
                if await recordings(services):
                    break
                await asyncio.sleep(0.05)
        finally:
            await bridge.stop()
    [stored] = await recordings(services)
    assert (stored.filename, stored.duration_ms, stored.recorded_by) == (
        "1001/served.wav",
        1200,
        "1001-100",
    )
