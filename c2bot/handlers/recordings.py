"""Recordings (the sounds the switch plays), and what the PBX handlers share to name things.

A recording is a 16-bit mono PCM WAV at 8 or 16 kHz, uploaded (the Slack form) or recorded by
dialling 1800. Its file is `<C2_RECORDINGS_DIR>/<account>/<name>-<token>.wav`, written whole
(temporary file, then rename) before a row points at it. Removing a recording keeps the file,
so `/route undo` can bring the recording back as it was; a recording is refused removal while
anything plays it.

IVRs, time conditions, conferences and conference profiles find their objects, their sounds
and their failovers through the helpers at the end of this module.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers import destinations
from c2bot.handlers.accounts import scoped, target_account
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import Destination
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.permissions import visible_accounts
from c2bot.handlers.replies import Reply, Table
from c2bot.handlers.routing_changes import remember, snapshot
from c2bot.storage.models import (
    Account,
    CallQueue,
    Conference,
    ConferenceProfile,
    Ivr,
    Recording,
    RingGroup,
    TimeCondition,
)
from c2bot.switch.sound import BadSound, inspect_wav

NONE_WORDS = frozenset({"", "none", "-", "off"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Columns that name a recording of the same account, with what the recording is there.
SOUND_COLUMNS: tuple[tuple[type[RingGroup | CallQueue | Conference | Ivr], str, str], ...] = (
    (RingGroup, "announcement", "announcement"),
    (RingGroup, "ringback", "ring-back"),
    (CallQueue, "moh", "music on hold"),
    (CallQueue, "agent_tone", "agent tone"),
    (CallQueue, "customer_tone", "customer tone"),
    (Conference, "greeting", "greeting"),
    (Ivr, "greeting", "welcome greeting"),
    (Ivr, "invalid_sound", "invalid message"),
    (Ivr, "exit_sound", "exit message"),
    (Ivr, "ringback", "ring-back"),
)
SOUND_WORDS = {
    RingGroup: "ring group",
    CallQueue: "queue",
    Conference: "conference",
    Ivr: "IVR",
}


@dataclass(frozen=True)
class NewRecording:
    """A WAV to keep under a name. With `request_ref` the same request stores it once."""

    name: str
    data: bytes
    account: str | None = None
    source: str = "upload"
    recorded_by: str = ""
    request_ref: str | None = None


@dataclass(frozen=True)
class RecordingFile:
    """A recording's answer with the file itself, for doors that can hand the sound over."""

    reply: Reply
    path: Path
    filename: str


def recording_path(ctx: Context, recording: Recording) -> Path:
    return ctx.settings.recordings_dir / recording.filename


def describe_length(duration_ms: int) -> str:
    return f"{duration_ms / 1000:.1f} s"


# --- adding ---------------------------------------------------------------------------------------


async def check_new_recording(ctx: Context, name: str, account: str | None) -> None:
    """Refuse now what `add_recording` would refuse for the name and account (before the
    file has arrived, e.g. while a Slack form is still open)."""
    destinations.check_name(name, "recording")
    async with ctx.sessions() as session:
        owner = await target_account(session, ctx, account, "the recording")
        if await _recording(session, owner.id, name) is not None:
            raise _taken(owner, name)


async def add_recording(ctx: Context, request: NewRecording) -> Reply:
    destinations.check_name(request.name, "recording")
    try:
        info = inspect_wav(request.data)
    except BadSound as bad:
        raise Invalid(str(bad), {"file": str(bad)}) from None
    async with ctx.sessions() as session:
        owner = await target_account(session, ctx, request.account, "the recording")
        relative = f"{_UNSAFE.sub('_', owner.number)}/{request.name}-{_token(request)}.wav"
        existing = await _recording(session, owner.id, request.name)
        if existing is not None and request.request_ref and existing.filename == relative:
            return _added(existing, owner)  # the same request again: it is already here
        if existing is not None:
            raise _taken(owner, request.name)
        path = ctx.settings.recordings_dir / relative
        await asyncio.to_thread(_write_whole, path, request.data)
        recording = Recording(
            account_id=owner.id,
            name=request.name,
            filename=relative,
            sample_rate=info.sample_rate,
            duration_ms=info.duration_ms,
            size=len(request.data),
            source=request.source,
            recorded_by=(request.recorded_by or ctx.actor.label)[:64],
        )
        session.add(recording)
        try:
            await session.flush()
            await remember(
                session,
                ctx,
                object_type="recording",
                key=f"{owner.number}:{request.name}",
                account_id=owner.id,
                summary=f"recording {request.name} added ({describe_length(info.duration_ms)})",
                before=None,
                after=recording,
            )
            await session.commit()
        except IntegrityError:
            await asyncio.to_thread(path.unlink, True)
            raise _taken(owner, request.name) from None
        except BaseException:
            await asyncio.to_thread(path.unlink, True)
            raise
    return _added(recording, owner)


def _token(request: NewRecording) -> str:
    """Random, or fixed by the request so a replayed request finds its own file."""
    if request.request_ref:
        return hashlib.sha256(request.request_ref.encode()).hexdigest()[:12]
    return secrets.token_hex(6)


def _write_whole(path: Path, data: bytes) -> None:
    """The switch may read the file at any moment: it appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".wav")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # FreeSWITCH may run as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _added(recording: Recording, owner: Account) -> Reply:
    return Reply(
        title=f"Recording {recording.name} added to account {owner.number}.",
        text=f"{describe_length(recording.duration_ms)} at {recording.sample_rate // 1000} kHz. "
        "Use it by name as a greeting, announcement, music on hold or `playback` destination.",
    )


def _taken(owner: Account, name: str) -> Invalid:
    return Invalid(
        f"Account {owner.number} already has a recording {name!r}; remove it first "
        "(`/c2 recording remove`) or pick another name.",
        {"name": "already exists"},
    )


async def _recording(session: AsyncSession, account_id: int, name: str) -> Recording | None:
    found: Recording | None = await session.scalar(
        select(Recording).where(Recording.account_id == account_id, Recording.name == name)
    )
    return found


# --- reading and removing -------------------------------------------------------------------------


async def list_recordings(ctx: Context, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        stmt = select(Recording).order_by(Recording.account_id, Recording.name)
        found = list(
            await session.scalars(await scoped(session, ctx, stmt, Recording.account_id, account))
        )
        numbers = await account_numbers(session, {r.account_id for r in found})
    if not found:
        return Reply(title="No recordings. Upload one with `/c2 recording add` or dial 1800.")
    rows = tuple(
        (
            numbers[r.account_id],
            r.name,
            describe_length(r.duration_ms),
            f"{r.sample_rate // 1000} kHz",
            r.source,
            r.recorded_by,
        )
        for r in found
    )
    columns = ("Account", "Name", "Length", "Rate", "Source", "By")
    return Reply(title=f"{len(rows)} recording(s)", table=Table(columns, rows))


async def show_recording(ctx: Context, name: str, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        recording = await find_owned(session, ctx, Recording, name, account, "recording")
        numbers = await account_numbers(session, {recording.account_id})
        used = await uses_of(session, recording.account_id, recording.name)
    return _shown(recording, numbers[recording.account_id], used)


def _shown(recording: Recording, number: str, used: Sequence[str]) -> Reply:
    fields = (
        ("Account", number),
        ("Length", describe_length(recording.duration_ms)),
        ("Format", f"16-bit mono PCM WAV, {recording.sample_rate // 1000} kHz"),
        ("Size", f"{recording.size:,} bytes"),
        ("Source", "recorded by phone (1800)" if recording.source == "phone" else "uploaded"),
        ("By", recording.recorded_by or "-"),
        ("Added", f"{recording.created_at:%Y-%m-%d %H:%M} UTC"),
        ("Used by", ", ".join(used) or "nothing yet"),
    )
    return Reply(title=f"Recording {recording.name}", fields=fields)


async def recording_file(ctx: Context, name: str, account: str | None = None) -> RecordingFile:
    """The recording's details and where its file is (`/c2 recording play`)."""
    async with ctx.sessions() as session:
        recording = await find_owned(session, ctx, Recording, name, account, "recording")
        numbers = await account_numbers(session, {recording.account_id})
        used = await uses_of(session, recording.account_id, recording.name)
    reply = _shown(recording, numbers[recording.account_id], used)
    filename = f"{numbers[recording.account_id]}-{recording.name}.wav"
    return RecordingFile(reply, recording_path(ctx, recording), filename)


async def remove_recording(ctx: Context, name: str, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        recording = await find_owned(session, ctx, Recording, name, account, "recording")
        numbers = await account_numbers(session, {recording.account_id})
        number = numbers[recording.account_id]
        used = await uses_of(session, recording.account_id, recording.name)
        if used:
            raise Invalid(
                f"Recording {name} of account {number} is in use: {', '.join(used)}. "
                "Point those elsewhere first.",
                {"name": "in use"},
            )
        before = snapshot(recording)
        await session.delete(recording)
        await session.flush()
        await remember(
            session,
            ctx,
            object_type="recording",
            key=f"{number}:{name}",
            account_id=recording.account_id,
            summary=f"recording {name} removed",
            before=before,
            after=None,
        )
        await session.commit()
    return Reply(title=f"Recording {name} removed from account {number}.")


async def uses_of(session: AsyncSession, account_id: int, name: str) -> list[str]:
    """What plays recording `name` of the account, in words (`IVR main (welcome greeting)`)."""
    found: list[str] = []
    for model, column, role in SOUND_COLUMNS:
        attribute = getattr(model, column)
        names = await session.scalars(
            select(model.name).where(model.account_id == account_id, attribute == name)
        )
        found += [f"{SOUND_WORDS[model]} {owner} ({role})" for owner in names]
    profiles = await session.scalars(
        select(ConferenceProfile).where(ConferenceProfile.account_id == account_id)
    )
    for profile in profiles:
        found += [
            f"conference profile {profile.name} ({key})"
            for key, value in sorted(profile.params.items())
            if key.endswith("-sound") and value == name
        ]
    found += await destinations.references(session, account_id, Destination("playback", name))
    return found


# --- shared by the PBX handlers -------------------------------------------------------------------

Owned = TypeVar("Owned", Ivr, TimeCondition, Conference, ConferenceProfile, Recording)
LISTING = {
    Ivr: "ivr",
    TimeCondition: "timecondition",
    Conference: "conference",
    ConferenceProfile: "confprofile",
    Recording: "recording",
}


async def find_owned(
    session: AsyncSession,
    ctx: Context,
    model: type[Owned],
    name: str,
    account: str | None,
    what: str,
) -> Owned:
    """An object by name: in `account:N` (checked), else among the accounts the actor may see
    (the actor's own first when several have that name)."""
    if account:
        owner = await target_account(session, ctx, account)
        found: Owned | None = await session.scalar(
            select(model).where(model.account_id == owner.id, model.name == name)
        )
        if found is None:
            raise NotFound(
                f"Account {owner.number} has no {what} {name!r}; "
                f"see `/c2 {LISTING[model]} list account:{owner.number}`."
            )
        return found
    stmt = select(model).where(model.name == name).order_by(model.account_id)
    visible = await visible_accounts(session, ctx.actor)
    if visible is not None:
        stmt = stmt.where(model.account_id.in_(visible))
    candidates = list(await session.scalars(stmt))
    mine = [c for c in candidates if c.account_id == ctx.actor.account_id]
    if len(mine) == 1 or len(candidates) == 1:
        return (mine or candidates)[0]
    if not candidates:
        raise NotFound(f"There is no {what} {name!r} you may see; see `/c2 {LISTING[model]} list`.")
    numbers = await account_numbers(session, {c.account_id for c in candidates})
    raise Invalid(
        f"Several accounts have {_a(what)} {name!r} ({', '.join(sorted(numbers.values()))}); "
        "add account:NUMBER.",
        {"account": "Name the account."},
    )


async def new_owner(
    session: AsyncSession,
    ctx: Context,
    model: type[Owned],
    name: str,
    account: str | None,
    what: str,
) -> Account:
    """The account a new object goes to (checked), refusing a name the account already uses."""
    destinations.check_name(name, what)
    owner = await target_account(session, ctx, account, f"the {what}")
    taken = await session.scalar(
        select(model.id).where(model.account_id == owner.id, model.name == name)
    )
    if taken is not None:
        raise Invalid(
            f"Account {owner.number} already has {_a(what)} {name!r}; change it with "
            f"`/c2 {LISTING[model]} edit {name}` or pick another name.",
            {"name": "already exists"},
        )
    return owner


def _a(what: str) -> str:
    return f"{'an' if what[0].lower() in 'aeiou' else 'a'} {what}"


async def account_numbers(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Account.id, Account.number).where(Account.id.in_(ids)))
    return {ident: number for ident, number in rows}


async def sound(
    session: AsyncSession,
    account: Account,
    value: str,
    field: str,
    tones: Sequence[str] = (),
) -> str:
    """A recording of the account by name (or one of `tones`); "" (or none) for no sound."""
    value = value.strip()
    if value.lower() in NONE_WORDS:
        return ""
    if value.lower() in tones:
        return value.lower()
    if await _recording(session, account.id, value) is None:
        also = f" or one of: {', '.join(tones)}" if tones else ""
        raise Invalid(
            f"Account {account.number} has no recording {value!r}{also}; upload one with "
            "`/c2 recording add` or dial 1800 from a device.",
            {field: f"no recording {value}"},
        )
    return value


def destination_words(text: str, field: str, region: str = "NL") -> Destination:
    """`ringgroup sales`, `pstn +31612345678`, `hangup busy` -> a destination; `none` -> unset."""
    kind, _, value = text.strip().partition(" ")
    if kind.lower() in NONE_WORDS:
        return destinations.UNSET
    try:
        return destinations.parse(kind, value, region, field=field)
    except Invalid as refused:
        raise Invalid(refused.message, {field: next(iter(refused.fields.values()), "")}) from None


async def checked_destination(
    session: AsyncSession,
    ctx: Context,
    account: Account,
    dest: Destination,
    field: str,
) -> Destination:
    if not dest.is_set:
        return dest
    return await destinations.check(session, ctx, account, dest, field=field)


def yes_no(value: str, field: str) -> bool:
    word = value.strip().lower()
    if word in ("yes", "on", "true", "1"):
        return True
    if word in ("no", "off", "false", "0"):
        return False
    raise Invalid(f"{field} takes yes or no (got {value!r}).", {field: "yes or no"})


def whole_number(value: str, field: str, low: int, high: int, unit: str = "") -> int:
    text = value.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise Invalid(
            f"{field} must be a whole number from {low} to {high}{unit} (got {value!r}).",
            {field: f"{low} to {high}"},
        )
    return int(text)
