"""Recordings: WAVs checked for the switch (refused with what was found and what is needed),
stored whole under the account, listed, played, refused removal while used, undone."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.config.settings import Settings
from c2bot.handlers import recordings, routing_changes
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.handlers.recordings import NewRecording
from c2bot.storage.models import (
    Account,
    AuditEntry,
    Channel,
    ConferenceProfile,
    Ivr,
    Recording,
    TimeCondition,
    TimeConditionRow,
)
from tests.conftest import World, test_settings

NEEDED = "needed: 16-bit mono PCM WAV at 8 kHz or 16 kHz."


def wav_bytes(rate: int = 8000, channels: int = 1, width: int = 2, seconds: float = 0.5) -> bytes:
    """A WAV of silence-ish samples written by the `wave` module."""
    frames = int(rate * seconds)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(bytes((i * 7) % 256 for i in range(frames * channels * width)))
    return out.getvalue()


def float_wav(rate: int = 8000, frames: int = 800) -> bytes:
    """A 32-bit IEEE float WAV (format 3), which the `wave` module cannot write."""
    data = struct.pack(f"<{frames}f", *([0.25] * frames))
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return test_settings(database_url, C2_RECORDINGS_DIR=str(tmp_path / "recordings"))


def ctx(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SLACK)


async def add(
    services: Services, actor: Actor, name: str, data: bytes | None = None, **extra: str
) -> str:
    request = NewRecording(name=name, data=data or wav_bytes(), **extra)  # type: ignore[arg-type]
    return (await recordings.add_recording(ctx(services, actor), request)).title


async def account_id(services: Services, number: str) -> int:
    async with services.sessions() as session:
        found = await session.scalar(select(Account.id).where(Account.number == number))
        assert found is not None
        return found


async def test_good_wavs_are_stored_under_the_account(
    services: Services, world: World, settings: Settings
) -> None:
    """8 and 16 kHz mono 16-bit WAVs are kept whole in <dir>/<account>/<name>-<token>.wav."""
    eight, sixteen = wav_bytes(8000, seconds=1.5), wav_bytes(16000, seconds=0.25)
    assert await add(services, world.customer, "welcome", eight) == (
        "Recording welcome added to account 1001."
    )
    await add(services, world.reseller, "hold", sixteen, account="1002")
    async with services.sessions() as session:
        stored = {r.name: r for r in await session.scalars(select(Recording))}
        audit = list(await session.scalars(select(AuditEntry.action)))
    welcome, hold = stored["welcome"], stored["hold"]
    assert welcome.filename.startswith("1001/welcome-") and welcome.filename.endswith(".wav")
    assert hold.filename.startswith("1002/hold-")
    assert (settings.recordings_dir / welcome.filename).read_bytes() == eight
    assert (settings.recordings_dir / hold.filename).read_bytes() == sixteen
    assert (welcome.sample_rate, welcome.duration_ms, welcome.size) == (8000, 1500, len(eight))
    assert (hold.sample_rate, hold.duration_ms) == (16000, 250)
    assert (welcome.source, welcome.recorded_by) == ("upload", "Jan Jansen")
    assert audit == ["recording.created", "recording.created"]
    leftovers = [p.name for p in settings.recordings_dir.rglob(".upload-*")]
    assert leftovers == []
    listing = await recordings.list_recordings(ctx(services, world.reseller))
    assert listing.table is not None
    assert [row[:4] for row in listing.table.rows] == [
        ("1001", "welcome", "1.5 s", "8 kHz"),
        ("1002", "hold", "0.2 s", "16 kHz"),
    ]


BAD_SOUNDS = [
    (wav_bytes(channels=2), "The WAV is 16-bit stereo at 8000 Hz (stereo); "),
    (wav_bytes(rate=44100), "The WAV is 16-bit mono at 44100 Hz (44100 Hz); "),
    (wav_bytes(width=1), "The WAV is 8-bit mono at 8000 Hz (8-bit samples); "),
    (float_wav(), "The WAV is 32-bit float; "),
    (b"ID3\x03\x00 an mp3 pretending", "The file is an MP3 file; "),
    (b"hello, not a sound at all", "The file is not a WAV; "),
]


async def test_wrong_sounds_are_refused_with_what_was_found(
    services: Services, world: World, settings: Settings
) -> None:
    """Stereo, 44.1 kHz, 8-bit, float, MP3 and not-a-WAV: each refusal names what the file is
    and what the switch needs; nothing is kept."""
    for data, found in BAD_SOUNDS:
        with pytest.raises(Invalid) as refused:
            await add(services, world.customer, "bad", data)
        assert refused.value.message == found + NEEDED
        assert refused.value.fields == {"file": found + NEEDED}
    async with services.sessions() as session:
        assert await session.scalar(select(Recording.id)) is None
    assert not settings.recordings_dir.exists() or not any(settings.recordings_dir.rglob("*"))


async def test_names_accounts_and_replays(services: Services, world: World) -> None:
    """A taken name, a bad name and another account are refused; the same request twice
    stores one recording."""
    await add(services, world.customer, "welcome")
    with pytest.raises(Invalid, match="Account 1001 already has a recording 'welcome'"):
        await add(services, world.customer, "welcome")
    with pytest.raises(Invalid, match="must be 1 to 64 letters"):
        await add(services, world.customer, "hello world")
    with pytest.raises(NotAllowed):
        await add(services, world.customer, "theirs", account="2001")
    first = await add(services, world.customer, "again", request_ref="slack:view:V9")
    second = await add(services, world.customer, "again", request_ref="slack:view:V9")
    assert first == second == "Recording again added to account 1001."
    async with services.sessions() as session:
        names = list(await session.scalars(select(Recording.name).order_by(Recording.name)))
    assert names == ["again", "welcome"]
    with pytest.raises(NotFound, match="no recording 'welcome' you may see"):
        await recordings.show_recording(ctx(services, world.other), "welcome")
    with pytest.raises(NotAllowed):
        await recordings.show_recording(ctx(services, world.other), "welcome", "1001")


async def test_removal_is_refused_while_used_and_undone(
    services: Services, world: World, settings: Settings
) -> None:
    """Greetings, profile sounds and playback destinations keep a recording; once free it is
    removed (its file stays), and `/route undo` brings it back."""
    await add(services, world.customer, "welcome")
    acme = await account_id(services, "1001")
    async with services.sessions.begin() as session:
        session.add(Ivr(account_id=acme, name="main", greeting="welcome"))
        session.add(
            ConferenceProfile(account_id=acme, name="quiet", params={"moh-sound": "welcome"})
        )
        session.add(
            TimeCondition(
                account_id=acme,
                name="office",
                rows=[TimeConditionRow(priority=1, dest_type="playback", dest_value="welcome")],
            )
        )
    customer = ctx(services, world.customer)
    shown = await recordings.show_recording(customer, "welcome")
    used = dict(shown.fields)["Used by"]
    assert used == (
        "IVR main (welcome greeting), conference profile quiet (moh-sound), "
        "time condition office (row 1 (priority 1))"
    )
    with pytest.raises(Invalid) as refused:
        await recordings.remove_recording(customer, "welcome")
    assert refused.value.message.startswith(f"Recording welcome of account 1001 is in use: {used}")
    async with services.sessions.begin() as session:
        for model in (Ivr, ConferenceProfile, TimeCondition):
            for obj in await session.scalars(select(model)):
                await session.delete(obj)
    played = await recordings.recording_file(customer, "welcome")
    assert played.path.read_bytes() == wav_bytes() and played.filename == "1001-welcome.wav"
    removed = await recordings.remove_recording(customer, "welcome")
    assert removed.title == "Recording welcome removed from account 1001."
    assert played.path.exists()  # kept for undo
    undone = await routing_changes.undo_last(customer)
    assert undone.title == "Undone: recording welcome removed"
    async with services.sessions() as session:
        back = await session.scalar(select(Recording))
    assert (
        back is not None
        and back.name == "welcome"
        and back.filename == played.path.relative_to(settings.recordings_dir).as_posix()
    )
