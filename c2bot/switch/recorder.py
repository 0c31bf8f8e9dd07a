"""Recordings made by phone: a device dials 1800, speaks, hangs up; a Recording row appears.

Our dialplan for 1800 sets `c2_record_account` (account number), `c2_record_file` (a path in
C2_RECORDINGS_DIR) and `c2_record_device` (the device's username) before `record`, so the
call's CHANNEL_HANGUP_COMPLETE (or RECORD_STOP) event alone says whose recording it is and
where it lies. The file is checked like an upload (16-bit mono PCM WAV, 8 or 16 kHz) and stored
once per file: the same call's events, or several processes seeing one event, make one row.
A missing, unreadable or too-short file is logged and skipped; there is nobody to answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.config.settings import Settings
from c2bot.storage.db import SessionFactory
from c2bot.storage.models import Account, AuditEntry, Channel, Recording, utcnow
from c2bot.switch.sound import BadSound, SoundInfo, inspect_wav
from c2bot.switch.wire import EslEvent

log = logging.getLogger(__name__)

EVENTS = ("CHANNEL_HANGUP_COMPLETE", "RECORD_STOP")
MIN_DURATION_MS = 1000  # less is a hang-up straight after the beep, not a greeting
NAME_ATTEMPTS = 3  # another process may take the same name between our check and insert


@dataclass(frozen=True)
class PhoneRecording:
    """What the dialplan put on the call."""

    call_uuid: str
    account: str
    path: Path
    device: str


class PhoneRecorder:
    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.stored = 0
        # Handlers run as concurrent tasks; the hang-up and RECORD_STOP of one call must not
        # both find the file unrecorded.
        self._lock = asyncio.Lock()

    async def on_event(self, event: EslEvent) -> None:
        if event.name in EVENTS and event.variable("c2_record_file"):
            await self.store(event)

    async def store(self, event: EslEvent) -> int | None:
        """Store the call's recording; its row id, or None when skipped or already stored."""
        recording = self._recording(event)
        if recording is None:
            return None
        sound = await self._sound(recording)
        if sound is None:
            return None
        async with self._lock:
            for _ in range(NAME_ATTEMPTS):
                try:
                    return await self._insert(recording, *sound)
                except IntegrityError:
                    continue
        log.error("recording %s: no free name after %d tries", recording.path, NAME_ATTEMPTS)
        return None

    def _recording(self, event: EslEvent) -> PhoneRecording | None:
        account = event.variable("c2_record_account")
        device = event.variable("c2_record_device")
        raw = event.variable("c2_record_file")
        call_uuid = event.unique_id
        if not account or not raw:
            log.warning("call %s: recording %r names no account; skipped", call_uuid, raw)
            return None
        path = Path(raw)
        root = self.settings.recordings_dir.resolve()
        if not path.is_absolute() or not path.resolve().is_relative_to(root):
            log.warning(
                "call %s: recording %s is not in C2_RECORDINGS_DIR (%s); skipped",
                call_uuid, raw, root,
            )  # fmt: skip
            return None
        return PhoneRecording(call_uuid, account, path.resolve(), device)

    async def _sound(self, recording: PhoneRecording) -> tuple[SoundInfo, int] | None:
        """The file's sound and size, if it is one worth keeping."""
        try:
            data = await asyncio.to_thread(recording.path.read_bytes)
        except FileNotFoundError:
            log.warning(
                "call %s: recording %s does not exist (hung up before the beep, or the switch "
                "does not share C2_RECORDINGS_DIR with us); skipped",
                recording.call_uuid, recording.path,
            )  # fmt: skip
            return None
        except OSError as error:
            log.warning(
                "call %s: recording %s cannot be read (%s); skipped",
                recording.call_uuid, recording.path, error.strerror or error,
            )  # fmt: skip
            return None
        try:
            info = inspect_wav(data)
        except BadSound as error:
            log.warning(
                "call %s: recording %s skipped: %s", recording.call_uuid, recording.path, error
            )
            return None
        if info.duration_ms < MIN_DURATION_MS:
            log.info(
                "call %s: recording %s is %d ms, too short to keep; skipped",
                recording.call_uuid, recording.path, info.duration_ms,
            )  # fmt: skip
            return None
        return info, len(data)

    async def _insert(self, recording: PhoneRecording, info: SoundInfo, size: int) -> int | None:
        filename = str(recording.path.relative_to(self.settings.recordings_dir.resolve()))
        async with self.sessions.begin() as session:
            # The account row lock queues other processes storing for this account, so the
            # file check and the name choice below see each other's rows (PostgreSQL).
            account = (
                await session.execute(
                    select(Account.id, Account.timezone)
                    .where(Account.number == recording.account)
                    .with_for_update()
                )
            ).first()
            if account is None:
                log.warning(
                    "call %s: recording for unknown account %s skipped",
                    recording.call_uuid, recording.account,
                )  # fmt: skip
                return None
            known = await session.scalar(
                select(Recording.id).where(
                    Recording.account_id == account.id, Recording.filename == filename
                )
            )
            if known is not None:
                return None
            row = Recording(
                account_id=account.id,
                name=await _free_name(session, account.id, self._base_name(account.timezone)),
                filename=filename,
                sample_rate=info.sample_rate,
                duration_ms=info.duration_ms,
                size=size,
                source="phone",
                recorded_by=recording.device[:64],
            )
            session.add(row)
            await session.flush()
            row_id = row.id
            session.add(
                AuditEntry(
                    at=self.clock(),
                    actor_label=f"SIP device {recording.device or '?'} (dialled 1800)",
                    channel=Channel.SYSTEM,
                    action="recording.add",
                    object_type="recording",
                    object_id=row.name,
                    account_id=account.id,
                    details={"source": "phone", "filename": filename, "call": recording.call_uuid},
                )
            )
        self.stored += 1
        log.info(
            "recording %s stored for account %s from device %s",
            row.name, recording.account, recording.device or "?",
        )  # fmt: skip
        return row_id

    def _base_name(self, timezone: str) -> str:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return f"phone-{self.clock().astimezone(zone):%Y%m%d-%H%M%S}"


async def _free_name(session: AsyncSession, account_id: int, base: str) -> str:
    """``base``, else ``base-2``, ``base-3``... whichever the account does not use yet."""
    taken = set(
        await session.scalars(
            select(Recording.name).where(
                Recording.account_id == account_id, Recording.name.startswith(base)
            )
        )
    )
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"
