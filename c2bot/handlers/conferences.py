"""Conferences, conference profiles and the digits members press (caller controls).

A profile holds mod_conference profile parameters under their own names (`enter-sound`,
`max-members`, ...), checked against the list below and stored as the switch reads them, except
sounds: a sound is a recording name of the account (the configuration served to the switch
turns it into the file's path) or one of the switch's own streams (`tone_stream://...`,
`silence_stream://...`, `local_stream://...`). A new profile starts with mod_conference's default
controls; its controls are stored with mod_conference's action names (`energy dn`, `vol talk up`).
A conference names a profile of its account, or `default` (the switch's own default profile
when the account has none by that name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers import destinations
from c2bot.handlers.accounts import scoped
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import Destination
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.recordings import (
    NONE_WORDS,
    account_numbers,
    find_owned,
    new_owner,
    sound,
    whole_number,
    yes_no,
)
from c2bot.handlers.replies import Reply, Table
from c2bot.handlers.routing_changes import remember, remember_object, snapshot
from c2bot.storage.models import Account, Conference, ConferenceControl, ConferenceProfile

DEFAULT_PROFILE = "default"
MAX_PIN = 16
SOUNDS: dict[str, str] = {
    "enter-sound": "played to everyone when a member joins",
    "exit-sound": "played to everyone when a member leaves",
    "alone-sound": "played to a member who is alone in the conference",
    "moh-sound": "music while a member is alone",
    "muted-sound": "played to a member who is muted",
    "unmuted-sound": "played to a member who is unmuted",
    "mute-detect-sound": "tells a muted member who talks that they are muted",
    "deaf-sound": "played to a member who is made deaf",
    "undeaf-sound": "played to a member who hears again",
    "locked-sound": "played to a caller when the conference is locked",
    "is-locked-sound": "played to everyone when the conference is locked",
    "is-unlocked-sound": "played to everyone when the conference is unlocked",
    "kicked-sound": "played to a member who is removed",
    "pin-sound": "asks for the PIN",
    "bad-pin-sound": "says the PIN was wrong",
    "max-members-sound": "tells a caller the conference is full",
}
NUMBERS: dict[str, tuple[int, int, str]] = {
    "max-members": (2, 1000, "most members at once"),
    "energy-level": (0, 1800, "noise gate: sound quieter than this is not passed on (0: off)"),
    "comfort-noise": (0, 10000, "level of the soft noise played in silence (0: off)"),
    "pin-retries": (1, 10, "tries at the PIN before the call ends"),
    "announce-count": (0, 1000, "say how many are in when more than this many (0: never)"),
}
CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    "rate": (("8000", "16000", "32000", "48000"), "sample rate, Hz"),
    "interval": (("10", "20", "30", "40", "60"), "packet time, ms"),
}
SWITCHES: dict[str, str] = {
    "verbose-events": "send full member details with every conference event (yes/no)",
}
TEXTS: dict[str, str] = {
    "caller-id-name": "caller-id name of calls the conference makes",
    "caller-id-number": "caller-id number of calls the conference makes",
}
MEMBER_FLAGS = (
    "mute",
    "deaf",
    "moderator",
    "endconf",
    "mintwo",
    "nomoh",
    "mute-detect",
    "dist-dtmf",
    "ghost",
    "join-only",
    "positional",
    "no-positional",
)
CONFERENCE_FLAGS = (
    "wait-mod",
    "audio-always",
    "restart-auto-record",
    "json-events",
    "livearray-sync",
    "rfc-4579",
)
FLAGS: dict[str, tuple[tuple[str, ...], str]] = {
    "member-flags": (MEMBER_FLAGS, "flags of every member, e.g. endconf|mute-detect"),
    "conference-flags": (CONFERENCE_FLAGS, "flags of the conference, e.g. wait-mod"),
}
PARAMS: dict[str, str] = (
    SOUNDS
    | {name: f"{help_} ({low}-{high})" for name, (low, high, help_) in NUMBERS.items()}
    | {name: f"{help_}: {', '.join(values)}" for name, (values, help_) in CHOICES.items()}
    | SWITCHES
    | TEXTS
    | {name: f"{help_}; known: {'|'.join(values)}" for name, (values, help_) in FLAGS.items()}
)
# mod_conference's caller-control actions (the words of its conference.conf), and the words
# people may type for each.
ACTIONS: dict[str, str] = {
    "mute": "mute or unmute yourself",
    "deaf mute": "stop or start hearing and talking",
    "energy up": "raise the noise gate",
    "energy equ": "reset the noise gate",
    "energy dn": "lower the noise gate",
    "vol talk up": "talk louder",
    "vol talk zero": "reset talk volume",
    "vol talk dn": "talk softer",
    "vol listen up": "hear louder",
    "vol listen zero": "reset listen volume",
    "vol listen dn": "hear softer",
    "hangup": "leave the conference",
}
_ACTION_WORDS = {"volume": "vol", "down": "dn", "equal": "equ", "equals": "equ", "reset": "zero"}
DEFAULT_CONTROLS = (
    ("0", "mute"),
    ("*", "deaf mute"),
    ("9", "energy up"),
    ("8", "energy equ"),
    ("7", "energy dn"),
    ("3", "vol talk up"),
    ("2", "vol talk zero"),
    ("1", "vol talk dn"),
    ("6", "vol listen up"),
    ("5", "vol listen zero"),
    ("4", "vol listen dn"),
    ("#", "hangup"),
)
_STREAM = re.compile(
    r"^(tone_stream://[A-Za-z0-9%(),;.=+ -]{1,200}|silence_stream://\d{1,7}"
    r"|local_stream://[A-Za-z0-9_-]{1,64})$"
)
_DIGITS = re.compile(r"^[0-9*#]{1,8}$")
_CALLER_NAME = re.compile(r"^[^\x00-\x1f\x7f\"<>]{1,80}$")
_CALLER_NUMBER = re.compile(r"^\+?[0-9]{1,20}$")


@dataclass(frozen=True)
class ConferenceChanges:
    greeting: str | None = None
    profile: str | None = None
    pin: str | None = None
    status: str | None = None

    def named(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


# --- conferences ----------------------------------------------------------------------------------


async def add_conference(
    ctx: Context, name: str, account: str | None, changes: ConferenceChanges
) -> Reply:
    async with ctx.sessions() as session:
        owner = await new_owner(session, ctx, Conference, name, account, "conference")
        conference = Conference(account_id=owner.id, name=name)
        await _apply_conference(session, owner, conference, changes)
        session.add(conference)
        await session.flush()
        await remember_object(
            session, ctx, "conference", conference, owner, f"conference {name} added", None
        )
        await session.commit()
    return _conference_shown(
        conference, owner.number, [], f"Conference {name} added to account {owner.number}."
    )


async def edit_conference(
    ctx: Context, name: str, account: str | None, changes: ConferenceChanges
) -> Reply:
    if not changes.named():
        raise Invalid("Say what to change, e.g. `pin:4321`, `greeting:welcome` or `status:off`.")
    async with ctx.sessions() as session:
        conference, owner = await _conference(session, ctx, name, account)
        before = snapshot(conference)
        await _apply_conference(session, owner, conference, changes)
        await session.flush()
        await remember_object(
            session,
            ctx,
            "conference",
            conference,
            owner,
            f"conference {name} changed: {', '.join(changes.named())}",
            before,
        )
        await session.commit()
        used = await destinations.references(session, owner.id, Destination("conference", name))
    return _conference_shown(conference, owner.number, used, f"Conference {name} changed.")


async def remove_conference(ctx: Context, name: str, account: str | None) -> Reply:
    async with ctx.sessions() as session:
        conference, owner = await _conference(session, ctx, name, account)
        used = await destinations.references(session, owner.id, Destination("conference", name))
        if used:
            raise Invalid(
                f"Conference {name} of account {owner.number} is in use: {', '.join(used)}. "
                "Point those elsewhere first.",
                {"name": "in use"},
            )
        before = snapshot(conference)
        await session.delete(conference)
        await session.flush()
        await remember_object(
            session,
            ctx,
            "conference",
            conference,
            owner,
            f"conference {name} removed",
            before,
            removed=True,
        )
        await session.commit()
    return Reply(title=f"Conference {name} removed from account {owner.number}.")


async def list_conferences(ctx: Context, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        stmt = select(Conference).order_by(Conference.account_id, Conference.name)
        stmt = await scoped(session, ctx, stmt, Conference.account_id, account)
        found = list(await session.scalars(stmt))
        numbers = await account_numbers(session, {c.account_id for c in found})
    if not found:
        return Reply(title="No conferences. Add one with `/c2 conference add NAME`.")
    rows = tuple(
        (
            numbers[c.account_id],
            c.name,
            "on" if c.enabled else "off",
            c.profile,
            "yes" if c.pin else "no",
            c.greeting or "-",
        )
        for c in found
    )
    columns = ("Account", "Name", "Status", "Profile", "PIN", "Greeting")
    return Reply(title=f"{len(rows)} conference(s)", table=Table(columns, rows))


async def show_conference(ctx: Context, name: str, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        conference, owner = await _conference(session, ctx, name, account)
        used = await destinations.references(session, owner.id, Destination("conference", name))
    return _conference_shown(conference, owner.number, used)


async def conference_form_values(ctx: Context, name: str, account: str | None) -> dict[str, str]:
    async with ctx.sessions() as session:
        conference, owner = await _conference(session, ctx, name, account)
    return {
        "name": conference.name,
        "account": owner.number,
        "greeting": conference.greeting,
        "profile": conference.profile,
        "pin": conference.pin,
        "status": "on" if conference.enabled else "off",
    }


async def _conference(
    session: AsyncSession, ctx: Context, name: str, account: str | None
) -> tuple[Conference, Account]:
    conference = await find_owned(session, ctx, Conference, name, account, "conference")
    owner = await session.get(Account, conference.account_id)
    assert owner is not None
    return conference, owner


async def _apply_conference(
    session: AsyncSession, owner: Account, conference: Conference, changes: ConferenceChanges
) -> None:
    settings: dict[str, Any] = {}
    if changes.greeting is not None:
        settings["greeting"] = await sound(session, owner, changes.greeting, "greeting")
    if changes.profile is not None:
        settings["profile"] = await _profile_name(session, owner, changes.profile)
    if changes.pin is not None:
        settings["pin"] = _pin(changes.pin)
    if changes.status is not None:
        settings["enabled"] = yes_no(changes.status, "status")
    for key, value in settings.items():
        setattr(conference, key, value)


async def _profile_name(session: AsyncSession, owner: Account, name: str) -> str:
    name = name.strip() or DEFAULT_PROFILE
    if name == DEFAULT_PROFILE:
        return name
    found = await session.scalar(
        select(ConferenceProfile.id).where(
            ConferenceProfile.account_id == owner.id, ConferenceProfile.name == name
        )
    )
    if found is None:
        raise Invalid(
            f"Account {owner.number} has no conference profile {name!r}; add one with "
            f"`/c2 confprofile add {name}`, or use `default`.",
            {"profile": f"no profile {name}"},
        )
    return name


def _pin(text: str) -> str:
    pin = text.strip()
    if pin.lower() in NONE_WORDS:
        return ""
    if not pin.isdigit() or not 3 <= len(pin) <= MAX_PIN:
        raise Invalid(
            f"A conference PIN is 3 to {MAX_PIN} digits, or `none` (got {text!r}).",
            {"pin": f"3 to {MAX_PIN} digits"},
        )
    return pin


def _conference_shown(
    conference: Conference, number: str, used: list[str], title: str | None = None
) -> Reply:
    info = (
        ("Account", number),
        ("Status", "on" if conference.enabled else "off (callers are turned away)"),
        ("Greeting", conference.greeting or "none"),
        ("Profile", conference.profile),
        ("PIN", conference.pin or "none (anyone who reaches it may join)"),
        ("Reached from", ", ".join(used) or "nothing yet"),
    )
    return Reply(title=title or f"Conference {conference.name}", fields=info)


# --- profiles -------------------------------------------------------------------------------------


async def add_profile(
    ctx: Context, name: str, account: str | None, params: Mapping[str, str]
) -> Reply:
    async with ctx.sessions() as session:
        owner = await new_owner(
            session, ctx, ConferenceProfile, name, account, "conference profile"
        )
        profile = ConferenceProfile(
            account_id=owner.id,
            name=name,
            params=await _checked_params(session, owner, {}, params),
            controls=[ConferenceControl(digits=d, action=a) for d, a in DEFAULT_CONTROLS],
        )
        session.add(profile)
        await session.flush()
        await _remember_profile(
            session, ctx, profile, owner, f"conference profile {name} added", None
        )
        await session.commit()
        title = f"Conference profile {name} added to account {owner.number}."
        return await _profile_shown(session, profile, owner, title)


async def edit_profile(
    ctx: Context, name: str, account: str | None, params: Mapping[str, str]
) -> Reply:
    if not params:
        raise Invalid(
            "Say which parameters to change, e.g. `max-members:20 moh-sound:hold-music`; "
            "`NAME:none` goes back to the switch's default."
        )
    async with ctx.sessions() as session:
        profile, owner = await _profile(session, ctx, name, account)
        before = snapshot(profile)
        profile.params = await _checked_params(session, owner, profile.params, params)
        summary = f"conference profile {name} changed: {', '.join(sorted(params))}"
        await _remember_profile(session, ctx, profile, owner, summary, before)
        await session.commit()
        return await _profile_shown(session, profile, owner, f"Conference profile {name} changed.")


async def set_control(
    ctx: Context, name: str, account: str | None, digits: str, action: str
) -> Reply:
    """`c2 confprofile control NAME set 0 mute`: what pressing the digits does."""
    digits = _control_digits(digits)
    chosen = control_action(action)
    async with ctx.sessions() as session:
        profile, owner = await _profile(session, ctx, name, account)
        before = snapshot(profile)
        existing = next((c for c in profile.controls if c.digits == digits), None)
        if existing is not None:
            existing.action = chosen
        else:
            profile.controls.append(ConferenceControl(digits=digits, action=chosen))
        summary = f"conference profile {name} control {digits} -> {chosen}"
        await _remember_profile(session, ctx, profile, owner, summary, before)
        await session.commit()
    return Reply(
        title=f"Conference profile {name}: pressing {digits} now does {chosen} ({ACTIONS[chosen]})."
    )


async def remove_control(ctx: Context, name: str, account: str | None, digits: str) -> Reply:
    digits = _control_digits(digits)
    async with ctx.sessions() as session:
        profile, owner = await _profile(session, ctx, name, account)
        existing = next((c for c in profile.controls if c.digits == digits), None)
        if existing is None:
            have = ", ".join(c.digits for c in profile.controls) or "none"
            raise NotFound(f"Conference profile {name} has no control {digits} (controls: {have}).")
        before = snapshot(profile)
        profile.controls.remove(existing)
        summary = f"conference profile {name} control {digits} removed"
        await _remember_profile(session, ctx, profile, owner, summary, before)
        await session.commit()
    return Reply(title=f"Conference profile {name}: control {digits} removed.")


async def remove_profile(ctx: Context, name: str, account: str | None) -> Reply:
    async with ctx.sessions() as session:
        profile, owner = await _profile(session, ctx, name, account)
        users = list(
            await session.scalars(
                select(Conference.name).where(
                    Conference.account_id == owner.id, Conference.profile == name
                )
            )
        )
        if users:
            raise Invalid(
                f"Conference profile {name} is used by conference(s) {', '.join(users)}; "
                "give them another profile first.",
                {"name": "in use"},
            )
        before = snapshot(profile)
        await session.delete(profile)
        await session.flush()
        await _remember_profile(
            session, ctx, profile, owner, f"conference profile {name} removed", before, gone=True
        )
        await session.commit()
    return Reply(title=f"Conference profile {name} removed from account {owner.number}.")


async def list_profiles(ctx: Context, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        stmt = select(ConferenceProfile).order_by(
            ConferenceProfile.account_id, ConferenceProfile.name
        )
        stmt = await scoped(session, ctx, stmt, ConferenceProfile.account_id, account)
        found = list(await session.scalars(stmt))
        numbers = await account_numbers(session, {p.account_id for p in found})
    if not found:
        return Reply(title="No conference profiles. Add one with `/c2 confprofile add NAME`.")
    rows = tuple(
        (
            numbers[p.account_id],
            p.name,
            ", ".join(f"{k}={v}" for k, v in sorted(p.params.items())) or "switch defaults",
            str(len(p.controls)),
        )
        for p in found
    )
    columns = ("Account", "Name", "Parameters", "Controls")
    return Reply(title=f"{len(rows)} conference profile(s)", table=Table(columns, rows))


async def show_profile(ctx: Context, name: str, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        profile, owner = await _profile(session, ctx, name, account)
        return await _profile_shown(session, profile, owner)


def control_action(text: str) -> str:
    """`energy down`, `vol-talk-up`, `volume listen zero` -> mod_conference's action name."""
    words = re.sub(r"[-_\s]+", " ", text.strip().lower()).split()
    action = " ".join(_ACTION_WORDS.get(w, w) for w in words).replace("hang up", "hangup")
    if action not in ACTIONS:
        known = "mute, deaf mute, energy up|down|equal, vol talk up|down|zero, "
        known += "vol listen up|down|zero, hangup"
        raise Invalid(
            f"{text!r} is not a conference control; use one of: {known}.", {"action": "unknown"}
        )
    return action


def describe_param(name: str) -> str:
    return PARAMS[name]


async def _profile(
    session: AsyncSession, ctx: Context, name: str, account: str | None
) -> tuple[ConferenceProfile, Account]:
    profile = await find_owned(session, ctx, ConferenceProfile, name, account, "conference profile")
    owner = await session.get(Account, profile.account_id)
    assert owner is not None
    return profile, owner


async def _checked_params(
    session: AsyncSession,
    owner: Account,
    current: Mapping[str, Any],
    changes: Mapping[str, str],
) -> dict[str, Any]:
    """The profile's parameters with `changes` applied; `none` removes one."""
    params = dict(current)
    for name, raw in changes.items():
        if name not in PARAMS:
            raise Invalid(
                f"{name!r} is not a conference profile parameter we serve; known: "
                f"{', '.join(sorted(PARAMS))}.",
                {"params": f"unknown {name}"},
            )
        value = raw.strip()
        if value.lower() in NONE_WORDS and name not in SWITCHES:
            params.pop(name, None)
            continue
        params[name] = await _param_value(session, owner, name, value)
    return params


async def _param_value(session: AsyncSession, owner: Account, name: str, value: str) -> str:
    if name in SOUNDS:
        if _STREAM.match(value):
            return value
        return await sound(session, owner, value, name)
    if name in NUMBERS:
        low, high, _ = NUMBERS[name]
        return str(whole_number(value, name, low, high))
    if name in CHOICES:
        values, _ = CHOICES[name]
        if value not in values:
            raise Invalid(
                f"{name} takes one of {', '.join(values)} (got {value!r}).", {name: "unknown"}
            )
        return value
    if name in SWITCHES:
        return "true" if yes_no(value, name) else "false"
    if name in FLAGS:
        known, _ = FLAGS[name]
        flags = [f.strip().lower() for f in re.split(r"[|,]", value) if f.strip()]
        unknown = [f for f in flags if f not in known]
        if unknown:
            raise Invalid(
                f"{name}: {', '.join(unknown)} is not a flag we serve; known: {'|'.join(known)}.",
                {name: "unknown flag"},
            )
        return "|".join(dict.fromkeys(flags))
    pattern = _CALLER_NAME if name == "caller-id-name" else _CALLER_NUMBER
    if not pattern.match(value):
        what = "at most 80 printable characters" if name == "caller-id-name" else "digits, + first"
        raise Invalid(f"{name} must be {what} (got {value!r}).", {name: what})
    return value


def _control_digits(text: str) -> str:
    digits = text.strip()
    if not _DIGITS.match(digits):
        raise Invalid(
            f"Control digits are 1 to 8 of 0-9, * and # (got {text!r}).", {"digits": "0-9 * #"}
        )
    return digits


async def _remember_profile(
    session: AsyncSession,
    ctx: Context,
    profile: ConferenceProfile,
    owner: Account,
    summary: str,
    before: dict[str, Any] | None,
    gone: bool = False,
) -> None:
    await session.flush()
    await remember(
        session,
        ctx,
        object_type="confprofile",
        key=f"{owner.number}:{profile.name}",
        account_id=owner.id,
        summary=summary,
        before=before,
        after=None if gone else profile,
    )


async def _profile_shown(
    session: AsyncSession, profile: ConferenceProfile, owner: Account, title: str | None = None
) -> Reply:
    users = list(
        await session.scalars(
            select(Conference.name).where(
                Conference.account_id == owner.id, Conference.profile == profile.name
            )
        )
    )
    info = [("Account", owner.number)]
    info += [(key, str(value)) for key, value in sorted(profile.params.items())]
    info.append(("Used by", ", ".join(f"conference {u}" for u in users) or "no conference yet"))
    rows = tuple(
        (c.digits, c.action, ACTIONS.get(c.action, ""))
        for c in sorted(profile.controls, key=lambda c: c.digits)
    )
    table = Table(("Digits", "Action", "Does"), rows) if rows else None
    text = "" if profile.params else "Parameters: the switch's defaults."
    return Reply(
        title=title or f"Conference profile {profile.name}",
        text=text,
        fields=tuple(info),
        table=table,
    )
