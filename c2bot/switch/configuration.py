"""Module configuration FreeSWITCH reads from us: `ivr.conf` (IVR menus), `conference.conf`
(conference profiles and their digit controls) and `callcenter.conf` (queues, agents, tiers).

Any other file is "not found", so FreeSWITCH uses its own. The modules ask again when they need
a piece (the `ivr` application for its menu on every call, mod_conference for a profile when a
conference starts and for the controls when a member joins, mod_callcenter for a queue it has
not loaded), naming it in the request; we then answer only that piece.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from xml.etree.ElementTree import Element, SubElement

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from c2bot.config.settings import Settings
from c2bot.storage.db import SessionFactory
from c2bot.storage.models import (
    Account,
    CallQueue,
    ConferenceProfile,
    Ivr,
    Recording,
    SipDevice,
)
from c2bot.switch.targets import (
    QUEUE_DOMAIN,
    account_context,
    agent_name,
    conference_profile_name,
    menu_name,
    queue_name,
    sip_domain,
    transfer_target,
)
from c2bot.switch.xmldoc import document, not_found, param, render

log = logging.getLogger(__name__)

Builder = Callable[[AsyncSession, Settings, Mapping[str, str]], Awaitable[Element | None]]
# (account id, recording name) -> absolute path of the file
Sounds = dict[tuple[int, str], str]

INVALID_SOUND = "ivr/ivr-that_was_an_invalid_entry.wav"
EXIT_SOUND = "voicemail/vm-goodbye.wav"
DEFAULT_MOH = "local_stream://moh"
INTER_DIGIT_MS = 2000
DIRECT_DIAL_DIGITS = r"/^(\d{2,5})$/"

DEFAULT_PROFILE = "default"
PROFILE_DEFAULTS: dict[str, str] = {
    "rate": "8000",
    "interval": "20",
    "energy-level": "100",
    "comfort-noise": "true",
    "timer-name": "soft",
    "moh-sound": DEFAULT_MOH,
    "muted-sound": "conference/conf-muted.wav",
    "unmuted-sound": "conference/conf-unmuted.wav",
    "alone-sound": "conference/conf-alone.wav",
    "enter-sound": "tone_stream://%(200,0,500,600,700)",
    "exit-sound": "tone_stream://%(500,0,300,200,100,50,25)",
    "kicked-sound": "conference/conf-kicked.wav",
    "locked-sound": "conference/conf-locked.wav",
    "is-locked-sound": "conference/conf-is-locked.wav",
    "is-unlocked-sound": "conference/conf-is-unlocked.wav",
    "pin-sound": "conference/conf-pin.wav",
    "bad-pin-sound": "conference/conf-bad-pin.wav",
}
# mod_conference profile parameters a profile may set. Left out on purpose: the ones that name
# files or templates on the switch (auto-record, cdr-log-dir, outcall-templ) and the control
# groups, which we set from the profile's own controls.
PROFILE_PARAMS = frozenset(
    (
        *PROFILE_DEFAULTS,
        "channels",
        "domain",
        "description",
        "tts-engine",
        "tts-voice",
        "member-enter-sound",
        "perpetual-sound",
        "mute-detect-sound",
        "deaf-sound",
        "undeaf-sound",
        "member-flags",
        "conference-flags",
        "pin",
        "moderator-pin",
        "pin-retries",
        "auto-energy-level",
        "max-energy-level",
        "auto-gain-level",
        "caller-id-name",
        "caller-id-number",
        "ivr-dtmf-timeout",
        "ivr-input-timeout",
        "sound-prefix",
        "max-members",
        "max-members-sound",
        "announce-count",
        "suppress-events",
        "verbose-events",
    )
)
# mod_conference's own control group "default" (its conference.conf), digits -> action.
DEFAULT_CONTROLS: tuple[tuple[str, str], ...] = (
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
_FS_CONTROLS = (
    *(action for _, action in DEFAULT_CONTROLS),
    *("mute on", "mute off", "deaf", "deaf on", "deaf off", "lock"),
)


def _spoken(action: str) -> str:
    """`vol talk dn` as people write it: `volume talk down`."""
    words = {"vol": "volume", "dn": "down", "equ": "equal", "hangup": "hang up"}
    return " ".join(words.get(word, word) for word in action.split())


# What a stored control action may say (FreeSWITCH's words or plain ones) -> FreeSWITCH's word.
CONTROL_ACTIONS: dict[str, str] = {
    **{action: action for action in _FS_CONTROLS},
    **{_spoken(action): action for action in _FS_CONTROLS},
}
QUEUE_STRATEGIES = frozenset(
    (
        "ring-all",
        "longest-idle-agent",
        "round-robin",
        "top-down",
        "agent-with-least-talk-time",
        "agent-with-fewest-calls",
        "sequentially-by-agent-order",
        "random",
        "ring-progressively",
    )
)
AGENT_RING_SECONDS = 20


async def answer(sessions: SessionFactory, settings: Settings, params: Mapping[str, str]) -> bytes:
    """The configuration document for `key_value` (ivr.conf, ...), or "not found"."""
    builder = BUILDERS.get(params.get("key_value", ""))
    if builder is None or params.get("section", "configuration") != "configuration":
        return not_found()
    async with sessions() as session:
        configuration = await builder(session, settings, params)
    if configuration is None:
        return not_found()
    root, section = document("configuration")
    section.append(configuration)
    return render(root)


def control_action(word: str) -> str | None:
    """FreeSWITCH's name for a conference control (`volume-talk-up` -> `vol talk up`)."""
    return CONTROL_ACTIONS.get(" ".join(word.lower().replace("-", " ").replace("_", " ").split()))


# -- ivr.conf ----------------------------------------------------------------------------------
async def _ivr(
    session: AsyncSession, settings: Settings, params: Mapping[str, str]
) -> Element | None:
    wanted = params.get("Menu-Name", "")
    query = select(Ivr, Account.number).join(Account, Ivr.account_id == Account.id)
    query = query.where(Ivr.enabled).order_by(Account.number, Ivr.name)
    if wanted:
        query = query.where(_named(Ivr.name, wanted))
    rows = [(ivr, number) for ivr, number in (await session.execute(query)).all()]
    if wanted:
        rows = [(ivr, number) for ivr, number in rows if menu_name(number, ivr.name) == wanted]
        if not rows:
            return None
    names = [
        (i.account_id, n) for i, _ in rows for n in (i.greeting, i.invalid_sound, i.exit_sound)
    ]
    sounds = await _sounds(session, settings, names)
    configuration = Element("configuration", name="ivr.conf", description="c2bot IVR menus")
    menus = SubElement(configuration, "menus")
    for ivr, number in rows:
        _menu(menus, ivr, number, sounds)
    return configuration


def _menu(menus: Element, ivr: Ivr, number: str, sounds: Sounds) -> None:
    context = account_context(number)
    attributes = {
        "name": menu_name(number, ivr.name),
        "invalid-sound": sounds.get((ivr.account_id, ivr.invalid_sound), INVALID_SOUND),
        "exit-sound": sounds.get((ivr.account_id, ivr.exit_sound), EXIT_SOUND),
        "timeout": str(max(ivr.timeout, 1) * 1000),
        "inter-digit-timeout": str(INTER_DIGIT_MS),
        "max-failures": str(max(ivr.retries, 1)),
        "max-timeouts": str(max(ivr.retries, 1)),
        "digit-len": "5" if ivr.direct_dial else "1",
    }
    greeting = sounds.get((ivr.account_id, ivr.greeting))
    if greeting:
        attributes["greet-long"] = attributes["greet-short"] = greeting
    failover = _transfer(number, ivr.failover_type, ivr.failover_value)
    if failover is not None:
        attributes["exec-on-max-failures"] = attributes["exec-on-max-timeouts"] = failover
    menu = SubElement(menus, "menu", attributes)
    for option in ivr.options:
        transfer = _transfer(number, option.dest_type, option.dest_value)
        if transfer is not None:
            SubElement(menu, "entry", action="menu-exec-app", digits=option.digit, param=transfer)
    if ivr.direct_dial:
        SubElement(
            menu,
            "entry",
            action="menu-exec-app",
            digits=DIRECT_DIAL_DIGITS,
            param=f"transfer $1 XML {context}",
        )


def _transfer(number: str, dest_type: str, dest_value: str) -> str | None:
    """`transfer <target> XML <context>` to a destination; None (and a warning) when there is
    none or it cannot be one, so one bad option does not take the whole menu down."""
    if not dest_type:
        return None
    try:
        target = transfer_target(number, dest_type, dest_value)
    except ValueError as error:
        log.warning("account %s: IVR destination skipped: %s", number, error)
        return None
    return f"transfer {target} XML {account_context(number)}"


# -- conference.conf ---------------------------------------------------------------------------
async def _conference(
    session: AsyncSession, settings: Settings, params: Mapping[str, str]
) -> Element | None:
    profile_wanted = params.get("profile_name", "")
    group_wanted = params.get("Controls", "") if params.get("Action") == "request-controls" else ""
    profiles = await _profiles(session, profile_wanted or group_wanted)
    configuration = Element(
        "configuration", name="conference.conf", description="c2bot conference profiles"
    )
    groups = SubElement(configuration, "caller-controls")
    if group_wanted:  # a member joins: only the digits of its profile
        if group_wanted == DEFAULT_PROFILE:
            _controls(groups, DEFAULT_PROFILE, DEFAULT_CONTROLS)
        for profile, number in profiles:
            if profile.controls:
                _controls(groups, conference_profile_name(number, profile.name), _pairs(profile))
        return configuration if len(groups) else None
    builtin = not profile_wanted or profile_wanted == DEFAULT_PROFILE
    builtin = builtin or (_default_of_account(profile_wanted) and not profiles)
    if profile_wanted and not profiles and not builtin:
        return None
    _controls(groups, DEFAULT_PROFILE, DEFAULT_CONTROLS)
    profiles_element = SubElement(configuration, "profiles")
    if builtin:
        _profile(profiles_element, profile_wanted or DEFAULT_PROFILE, {}, DEFAULT_PROFILE)
    names = [
        (p.account_id, str(v)) for p, _ in profiles for k, v in p.params.items() if _is_sound(k)
    ]
    sounds = await _sounds(session, settings, names)
    for profile, number in profiles:
        name = conference_profile_name(number, profile.name)
        if profile.controls:
            _controls(groups, name, _pairs(profile))
        values = {k: _sound(sounds, profile.account_id, k, v) for k, v in profile.params.items()}
        _profile(profiles_element, name, values, name if profile.controls else DEFAULT_PROFILE)
    return configuration


async def _profiles(session: AsyncSession, wanted: str) -> list[tuple[ConferenceProfile, str]]:
    if wanted and not wanted.startswith("c2-"):
        return []  # mod_conference's own profiles ("default"): not in the database
    query = select(ConferenceProfile, Account.number).join(
        Account, ConferenceProfile.account_id == Account.id
    )
    query = query.where(ConferenceProfile.enabled).order_by(Account.number, ConferenceProfile.name)
    if wanted:
        query = query.where(_named(ConferenceProfile.name, wanted))
    rows = [(profile, number) for profile, number in (await session.execute(query)).all()]
    if wanted:
        rows = [(p, n) for p, n in rows if conference_profile_name(n, p.name) == wanted]
    return rows


def _pairs(profile: ConferenceProfile) -> list[tuple[str, str]]:
    return [(control.digits, control.action) for control in profile.controls]


def _is_sound(key: str) -> bool:
    return key.endswith("-sound")


def _default_of_account(wanted: str) -> bool:
    """`c2-1001-default` for an account without its own "default": ours under that name."""
    return wanted.startswith("c2-") and wanted.endswith(f"-{DEFAULT_PROFILE}")


def _profile(parent: Element, name: str, values: Mapping[str, Any], group: str) -> None:
    profile = SubElement(parent, "profile", name=name)
    merged = dict(PROFILE_DEFAULTS)
    for key, value in values.items():
        if key in PROFILE_PARAMS and value is not None:
            merged[key] = _text(value)
    merged["caller-controls"] = group
    for key, value in merged.items():
        param(profile, key, value)


def _controls(parent: Element, name: str, controls: Iterable[tuple[str, str]]) -> None:
    group = SubElement(parent, "group", name=name)
    for digits, action in controls:
        known = control_action(action)
        if known is not None and digits:
            SubElement(group, "control", action=known, digits=digits)


def _sound(sounds: Sounds, account_id: int, key: str, value: Any) -> Any:
    if not _is_sound(key):
        return value
    return sounds.get((account_id, str(value)), value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- callcenter.conf ---------------------------------------------------------------------------
async def _callcenter(
    session: AsyncSession, settings: Settings, params: Mapping[str, str]
) -> Element | None:
    wanted = params.get("CC-Queue", "")
    query = select(CallQueue, Account.number).join(Account, CallQueue.account_id == Account.id)
    query = query.where(CallQueue.enabled).order_by(Account.number, CallQueue.name)
    if wanted:
        local = wanted.removesuffix(f"@{QUEUE_DOMAIN}")
        query = query.where(_named(CallQueue.name, local))
    rows = [(queue, number) for queue, number in (await session.execute(query)).all()]
    if wanted:
        rows = [(q, n) for q, n in rows if queue_name(n, q.name) == wanted]
        if not rows:
            return None
    sounds = await _sounds(session, settings, [(q.account_id, q.moh) for q, _ in rows])
    devices = await _devices(session, rows)
    configuration = Element(
        "configuration", name="callcenter.conf", description="c2bot call queues"
    )
    SubElement(configuration, "settings")
    queues = SubElement(configuration, "queues")
    agents = SubElement(configuration, "agents")
    tiers = SubElement(configuration, "tiers")
    seen: set[str] = set()
    for queue, number in rows:
        _queue(queues, queue, number, sounds)
        for rank, agent in enumerate(queue.agents, start=1):
            contact = _contact(
                settings, number, agent.target, devices.get((queue.account_id, agent.target))
            )
            if contact is None:
                continue
            name = agent_name(number, agent.target)
            if name not in seen:
                seen.add(name)
                _agent(agents, name, contact)
            SubElement(
                tiers,
                "tier",
                agent=name,
                queue=queue_name(number, queue.name),
                level=str(rank),
                position="1",
            )
    return configuration


def _queue(parent: Element, queue: CallQueue, number: str, sounds: Sounds) -> None:
    element = SubElement(parent, "queue", name=queue_name(number, queue.name))
    strategy = queue.strategy if queue.strategy in QUEUE_STRATEGIES else "longest-idle-agent"
    for key, value in (
        ("strategy", strategy),
        ("moh-sound", sounds.get((queue.account_id, queue.moh), DEFAULT_MOH)),
        ("time-base-score", "system"),
        ("max-wait-time", str(max(queue.timeout, 0))),
        ("max-wait-time-with-no-agent", "0"),
        ("max-wait-time-with-no-agent-time-reached", "5"),
        ("tier-rules-apply", "false"),
        ("tier-rule-wait-second", "300"),
        ("tier-rule-wait-multiply-level", "true"),
        ("tier-rule-no-agent-no-wait", "false"),
        ("discard-abandoned-after", "60"),
        ("abandoned-resume-allowed", "false"),
    ):
        param(element, key, value)


def _agent(parent: Element, name: str, contact: str) -> None:
    attributes = {
        "name": name,
        "type": "callback",
        "contact": contact,
        "status": "Available",
        "max-no-answer": "3",
        "wrap-up-time": "10",
        "reject-delay-time": "10",
        "busy-delay-time": "60",
        "no-answer-delay-time": "10",
    }
    SubElement(parent, "agent", attributes)


def _contact(settings: Settings, number: str, target: str, device: str | None) -> str | None:
    """How mod_callcenter rings an agent: the device's registrations, or the phone number
    through the carrier gateway (billed to the account, like any call it makes)."""
    prefix = f"[leg_timeout={AGENT_RING_SECONDS},accountcode={number}]"
    if device is not None:
        return f"{prefix}user/{device}@{sip_domain(settings, number)}"
    digits = target.removeprefix("+")
    if digits.isdigit() and 3 <= len(digits) <= 20 and digits.isascii():
        return f"{prefix}{settings.pstn_gateway}{target}"
    return None


async def _devices(
    session: AsyncSession, rows: list[tuple[CallQueue, str]]
) -> dict[tuple[int, str], str]:
    """(account id, target) -> username, for targets that are an enabled device of the queue's
    account."""
    accounts = {queue.account_id for queue, _ in rows}
    targets = {agent.target for queue, _ in rows for agent in queue.agents}
    if not targets:
        return {}
    query = select(SipDevice.account_id, SipDevice.username).where(
        SipDevice.account_id.in_(accounts), SipDevice.username.in_(targets), SipDevice.enabled
    )
    return {(a, u): u for a, u in (await session.execute(query)).all()}


# -- shared ------------------------------------------------------------------------------------
def _named(column: InstrumentedAttribute[str], wanted: str) -> ColumnElement[bool]:
    """Rows whose `c2-<account>-<name>` may be `wanted`: one (account, name) pair per `-` in it
    (account numbers may hold a `-` too); the caller keeps the exact match."""
    if not wanted.startswith("c2-"):
        return false()
    rest = wanted[3:]
    pairs = [(rest[:i], rest[i + 1 :]) for i, char in enumerate(rest) if char == "-"]
    return or_(
        false(),
        *(and_(Account.number == number, column == unquote(name)) for number, name in pairs),
    )


async def _sounds(
    session: AsyncSession, settings: Settings, names: Iterable[tuple[int, str]]
) -> Sounds:
    """Recording names of an account -> the file's absolute path (the switch plays files, and
    C2_RECORDINGS_DIR may be relative to c2bot's working directory)."""
    wanted = {(account, name) for account, name in names if name}
    if not wanted:
        return {}
    query = select(Recording.account_id, Recording.name, Recording.filename).where(
        Recording.account_id.in_({a for a, _ in wanted}),
        Recording.name.in_({n for _, n in wanted}),
        Recording.enabled,
    )
    rows = (await session.execute(query)).all()
    return {(a, n): recording_path(settings, f) for a, n, f in rows}


def recording_path(settings: Settings, filename: str) -> str:
    """Where the switch finds a recording's file (the same path on both hosts)."""
    return os.path.join(os.path.abspath(settings.recordings_dir), filename)


BUILDERS: dict[str, Builder] = {
    "ivr.conf": _ivr,
    "conference.conf": _conference,
    "callcenter.conf": _callcenter,
}


# -- pushing a queue change to a running mod_callcenter -------------------------------------------
@dataclass(frozen=True)
class QueueAgents:
    """One queue as mod_callcenter should hold it: its name and (agent, contact, level) rows."""

    queue: str
    agents: tuple[tuple[str, str, int], ...]


async def queue_agents(
    session: AsyncSession, settings: Settings, account_id: int, account_number: str, name: str
) -> QueueAgents | None:
    """The served form of one queue, or None when it is gone or disabled."""
    queue = await session.scalar(
        select(CallQueue).where(
            CallQueue.account_id == account_id, CallQueue.name == name, CallQueue.enabled
        )
    )
    if queue is None:
        return None
    devices = await _devices(session, [(queue, account_number)])
    rows = []
    for rank, agent in enumerate(queue.agents, start=1):
        contact = _contact(
            settings, account_number, agent.target, devices.get((account_id, agent.target))
        )
        if contact is not None:
            rows.append((agent_name(account_number, agent.target), contact, rank))
    return QueueAgents(queue_name(account_number, name), tuple(rows))
