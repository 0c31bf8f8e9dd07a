"""The dialplan FreeSWITCH asks us for, call by call (mod_xml_curl), and the same walk in words.

`plan` follows a call from the number dialled to what the switch should do. Each object on the
way adds switch actions and a sentence: the actions become the XML document `answer` returns
to FreeSWITCH, the sentences are what `/route test` shows, so the explanation cannot drift from
what the switch does.

Contexts: a call in `c2-<account>` comes from one of that account's devices (or from an IVR
menu transferring within the account): another device's extension, 1800 to record a greeting,
a transfer target (`c2bot.switch.targets`), or a phone number outside the account, planned by
`c2bot.switch.outbound` (rate, balance, limits, least-cost routing). Any other context is a
call from outside, its number one of our DIDs. A number we do not route gets "not found", so
FreeSWITCH falls back to its own XML. Calls carry `c2_direction` and `c2_call_type` for their
record: inbound/DID (FAX for a fax DID), local/LOCAL from a device within its account,
outbound/STANDARD out of it.

Reads only, with a few Core selects per call (run by c2bot.switch.lookups as directly as the
database allows): the DID with its account, then one per object on the path, each joined with
what it needs (a ring group with its members, their devices and its recordings). Nothing is
cached between calls: a change in the database routes the next call. A depth limit and a
visited set stop a loop that slipped past the catalogue's checks.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import SubElement, tostring
from zoneinfo import ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy import BindParameter, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from c2bot.config.settings import Settings
from c2bot.storage.db import SessionFactory
from c2bot.storage.models import (
    Account,
    CallQueue,
    CallType,
    Conference,
    Did,
    Direction,
    Ivr,
    IvrOption,
    Recording,
    RingGroup,
    RingGroupMember,
    SipDevice,
    TimeCondition,
    TimeConditionRow,
)
from c2bot.switch import lookups, outbound, targets, xmldoc
from c2bot.switch.lookups import Query, Reader
from c2bot.switch.targets import (
    conference_profile_name,
    menu_name,
    object_name,
    queue_name,
    sip_domain,
)
from c2bot.switch.timeconditions import choose

MAX_HOPS = 8
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
DEVICE_CONTEXT = "c2-"
RECORD_EXTENSION = "1800"
RECORD_PROMPT = "record-prompt"  # an account's own recording with this name replaces the stock one
STOCK_RECORD_PROMPT = "voicemail/vm-record_message.wav"  # in every FreeSWITCH sound set
BEEP = "tone_stream://%(1000,0,640)"
RECORD_ARGS = "300 200 3"  # at most 5 minutes; 3 seconds of silence ends it
LEG_TIMEOUT = 30
UNAVAILABLE = "NORMAL_TEMPORARY_FAILURE"
UNALLOCATED = "UNALLOCATED_NUMBER"
# The hangup words of c2bot.handlers.destinations, as the switch's causes.
HANGUP_CAUSES = {
    "": "NORMAL_CLEARING",
    "normal": "NORMAL_CLEARING",
    "busy": "USER_BUSY",
    "unavailable": "NORMAL_TEMPORARY_FAILURE",
    "rejected": "CALL_REJECTED",
}
# Ring-back tones by country, as FreeSWITCH's vars.xml has them (written out: the switch's own
# vars.xml may lack one, e.g. nl-ring).
TONES = {
    "us-ring": "%(2000,4000,440,480)",
    "ca-ring": "%(2000,4000,440,480)",
    "uk-ring": "%(400,200,400,450);%(400,2000,400,450)",
    "gb-ring": "%(400,200,400,450);%(400,2000,400,450)",
    "au-ring": "%(400,200,383,417);%(400,2000,383,417)",
    "nl-ring": "%(1000,4000,425)",
    "de-ring": "%(1000,4000,425)",
    "eu-ring": "%(1000,4000,425)",
    "it-ring": "%(1000,4000,425)",
    "be-ring": "%(1000,3000,425)",
    "fr-ring": "%(1500,3500,440)",
    "ch-ring": "%(1000,4000,425)",
}
OBJECT_WORDS = {
    "ringgroup": "ring group",
    "conference": "conference",
    "queue": "queue",
    "ivr": "IVR",
    "timecondition": "time condition",
}
# Destinations a transfer target may name only when an IVR of the account sends calls there:
# they leave the account (and cost money), so a device must not reach them by dialling the
# target's number itself.
OUTSIDE_TYPES = frozenset({"pstn", "ip", "direct-ip", "other"})


@dataclass
class Plan:
    """What a call does: found or not, the account, steps in words, the switch's actions."""

    found: bool
    context: str
    destination: str
    account: str = ""
    extension: str = ""
    steps: list[str] = field(default_factory=list)
    actions: list[tuple[str, str]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Account:
    id: int
    number: str
    timezone: str


@dataclass(frozen=True)
class _Device:
    username: str
    extension: str
    enabled: bool
    voicemail: bool
    record_calls: bool


@dataclass(frozen=True)
class _Row:
    kind: str
    start_time: str
    end_time: str
    weekdays: str
    monthdays: str
    months: str
    years: str
    holiday_country: str
    priority: int
    dest_type: str
    dest_value: str


@dataclass(frozen=True)
class _Condition:
    force: str
    rows: list[_Row]


def label(kind: str, value: str) -> str:
    """A destination in words, in the dialplan's steps and everywhere commands name one."""
    if kind in OBJECT_WORDS:
        return f"{OBJECT_WORDS[kind]} {value}"
    if kind == "hangup":
        return f"hang up ({HANGUP_CAUSES.get(value, value)})"
    return f"{kind} {value}".strip()


def did_candidates(raw: str, region: str) -> list[str]:
    """The E.164 forms a dialled number may stand for: FreeSWITCH may give `31201234567`,
    `+31201234567`, `0031201234567`, `0201234567` or a `sip:` URI."""
    text = raw.strip()
    for prefix in ("sip:", "sips:", "tel:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
    text = text.split("@", 1)[0].split(";", 1)[0]
    text = re.sub(r"[\s().-]", "", text)
    digits = text.lstrip("+")
    if not digits.isdigit():
        return []
    if text.startswith("+"):
        return ["+" + digits]
    if digits.startswith("00"):
        return ["+" + digits[2:]]
    found = [] if digits.startswith("0") else ["+" + digits]
    try:
        national = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return found
    e164 = phonenumbers.format_number(national, phonenumbers.PhoneNumberFormat.E164)
    return [*found, e164] if e164 not in found else found


# --- queries (Core selects, run by c2bot.switch.lookups) -------------------------------------

_ann = aliased(Recording)
_tone = aliased(Recording)
_DID = Query(
    select(
        Did.number,
        Did.forward_type,
        Did.destination,
        Account.id,
        Account.number.label("account"),
        Account.timezone,
    )
    .join(Account, Account.id == Did.account_id)
    .where(Did.number.in_([bindparam("number0"), bindparam("number1")]))
)
_DEVICE_COLUMNS = (
    SipDevice.username,
    SipDevice.extension,
    SipDevice.enabled,
    SipDevice.voicemail,
    SipDevice.record_calls,
)


@functools.lru_cache(maxsize=32)
def _devices_query(count: int) -> Query:
    """Devices of an account by username or extension, for `count` words."""
    words: list[BindParameter[str]] = [bindparam(f"word{n}") for n in range(count)]
    return Query(
        select(*_DEVICE_COLUMNS).where(
            SipDevice.account_id == bindparam("account"),
            or_(SipDevice.username.in_(words), SipDevice.extension.in_(words)),
        )
    )


# The calling device's account (as c2bot.switch.outbound needs it) and the account's devices
# that the dialled number names (by username or extension): one read for a call from a device.
_target = aliased(SipDevice)
_FROM_DEVICE = Query(
    outbound.CALLER_SELECT.add_columns(
        _target.username.label("target_username"),
        _target.extension.label("target_extension"),
        _target.enabled.label("target_enabled"),
        _target.voicemail.label("target_voicemail"),
        _target.record_calls.label("target_record_calls"),
    ).outerjoin(
        _target,
        and_(
            _target.account_id == Account.id,
            or_(
                _target.username == bindparam("dialled"), _target.extension == bindparam("dialled")
            ),
        ),
    )
)
_RECORDING = Query(
    select(Recording.filename).where(
        Recording.account_id == bindparam("account"), Recording.name == bindparam("name")
    )
)
_member_device = aliased(SipDevice)
_RING_GROUP = Query(
    select(
        RingGroup.enabled,
        RingGroup.strategy,
        RingGroup.announcement,
        RingGroup.ringback,
        RingGroup.cid_name_prefix,
        RingGroup.cid_number_prefix,
        RingGroup.recording,
        RingGroup.skip_busy,
        RingGroup.noanswer_type,
        RingGroup.noanswer_value,
        _ann.filename.label("announcement_file"),
        _tone.filename.label("ringback_file"),
        RingGroupMember.target,
        RingGroupMember.delay,
        RingGroupMember.timeout,
        _member_device.username,
        _member_device.enabled.label("device_enabled"),
        _member_device.record_calls,
    )
    .outerjoin(
        _ann, and_(_ann.account_id == RingGroup.account_id, _ann.name == RingGroup.announcement)
    )
    .outerjoin(
        _tone, and_(_tone.account_id == RingGroup.account_id, _tone.name == RingGroup.ringback)
    )
    .outerjoin(RingGroupMember, RingGroupMember.group_id == RingGroup.id)
    .outerjoin(
        _member_device,
        and_(
            _member_device.account_id == RingGroup.account_id,
            _member_device.username == RingGroupMember.target,
        ),
    )
    .where(RingGroup.account_id == bindparam("account"), RingGroup.name == bindparam("name"))
    .order_by(RingGroupMember.position)
)
_TIME_CONDITION = Query(
    select(
        TimeCondition.enabled,
        TimeCondition.force,
        TimeCondition.forced_by,
        TimeCondition.failover_type,
        TimeCondition.failover_value,
        TimeConditionRow.id.label("row_id"),
        TimeConditionRow.kind,
        TimeConditionRow.start_time,
        TimeConditionRow.end_time,
        TimeConditionRow.weekdays,
        TimeConditionRow.monthdays,
        TimeConditionRow.months,
        TimeConditionRow.years,
        TimeConditionRow.holiday_country,
        TimeConditionRow.priority,
        TimeConditionRow.dest_type,
        TimeConditionRow.dest_value,
    )
    .outerjoin(TimeConditionRow, TimeConditionRow.condition_id == TimeCondition.id)
    .where(
        TimeCondition.account_id == bindparam("account"),
        TimeCondition.name == bindparam("name"),
    )
    .order_by(TimeConditionRow.priority, TimeConditionRow.id)
)
_IVR = Query(
    select(
        Ivr.enabled,
        Ivr.cid_name_prefix,
        Ivr.ringback,
        Ivr.failover_type,
        Ivr.failover_value,
        _tone.filename.label("ringback_file"),
    )
    .outerjoin(_tone, and_(_tone.account_id == Ivr.account_id, _tone.name == Ivr.ringback))
    .where(Ivr.account_id == bindparam("account"), Ivr.name == bindparam("name"))
)
_QUEUE = Query(
    select(
        CallQueue.enabled, CallQueue.timeout, CallQueue.failover_type, CallQueue.failover_value
    ).where(CallQueue.account_id == bindparam("account"), CallQueue.name == bindparam("name"))
)
_CONFERENCE = Query(
    select(
        Conference.enabled,
        Conference.profile,
        Conference.pin,
        Conference.greeting,
        _ann.filename.label("greeting_file"),
    )
    .outerjoin(
        _ann, and_(_ann.account_id == Conference.account_id, _ann.name == Conference.greeting)
    )
    .where(Conference.account_id == bindparam("account"), Conference.name == bindparam("name"))
)
_IVR_SENDS = Query(
    select(Ivr.id)
    .outerjoin(IvrOption, IvrOption.ivr_id == Ivr.id)
    .where(
        Ivr.account_id == bindparam("account"),
        or_(
            and_(
                IvrOption.dest_type == bindparam("type"), IvrOption.dest_value == bindparam("value")
            ),
            and_(Ivr.failover_type == bindparam("type"), Ivr.failover_value == bindparam("value")),
        ),
    )
    .limit(1)
)


# --- the walk ---------------------------------------------------------------------------------


class _Walk:
    """Follows destinations from one start, adding actions and sentences to the plan."""

    def __init__(
        self,
        read: Reader,
        settings: Settings,
        account: _Account,
        plan: Plan,
        now: datetime,
        did: str = "",
    ) -> None:
        self.read = read
        self.settings = settings
        self.account = account
        self.plan = plan
        self.now = now
        self.did = did
        self.domain = sip_domain(settings, account.number)
        # The switch needs absolute paths; the settings may be relative to our working folder.
        self.recordings = os.path.abspath(settings.recordings_dir)
        self.spool = os.path.abspath(settings.fax_spool)
        self.visited: set[tuple[str, str]] = set()
        self.hops = 0

    # small helpers

    def say(self, sentence: str) -> None:
        self.plan.steps.append(sentence)

    def do(self, application: str, data: str = "") -> None:
        self.plan.actions.append((application, data))

    def sound(self, filename: str) -> str:
        return os.path.join(self.recordings, filename)

    def call_recording(self) -> str:
        return os.path.join(self.recordings, self.account.number, "calls", "${uuid}.wav")

    def device_leg(self, username: str, timeout: int, delay: int = 0, record: bool = False) -> str:
        options = [f"leg_timeout={timeout}"]
        if delay:
            options.append(f"leg_delay_start={delay}")
        if record:
            options.append(f"execute_on_answer=record_session {self.call_recording()}")
        return f"[{','.join(options)}]user/{username}@{self.domain}"

    async def rows(self, query: Query, **values: Any) -> list[Any]:
        return await self.read(query, {"account": self.account.id, **values})

    async def devices(self, words: list[str]) -> dict[str, _Device]:
        """Devices of the account named by username or extension, under both keys."""
        found: dict[str, _Device] = {}
        named = {f"word{n}": word for n, word in enumerate(words)}
        for row in await self.rows(_devices_query(len(words)), **named):
            device = _Device(*row)
            found[device.username] = found[device.extension] = device
        return found

    def end(self, cause: str, why: str) -> None:
        self.say(why)
        self.do("hangup", cause)

    async def onward(
        self, kind: str, value: str, why: str, subject: str, *, tried: bool = False
    ) -> None:
        """Go on to an object's failover (or no-answer destination), or say that it ends.

        After something was `tried` (a bridge, a queue, a menu) the call ends by itself with
        that attempt's cause (no answer, busy), which tells the caller more than ours would."""
        if kind:
            self.say(f"{why}: on to {label(kind, value)}.")
            await self.go(kind, value)
        elif tried:
            self.say(f"{why}, and {subject} has no failover: the call ends.")
        else:
            self.end(UNAVAILABLE, f"{why}, and {subject} has no failover: the call is ended.")

    # the walk itself

    async def go(self, kind: str, value: str) -> None:
        if self.hops >= MAX_HOPS:
            self.end(
                UNAVAILABLE,
                f"{label(kind, value)} would be step {self.hops + 1}; calls stop after "
                f"{MAX_HOPS}, so it is hung up here (check the routing for a loop).",
            )
            return
        if kind in OBJECT_WORDS and (kind, value) in self.visited:
            self.end(
                UNAVAILABLE,
                f"{label(kind, value)} again: that is a loop, so the call is hung up here.",
            )
            return
        self.visited.add((kind, value))
        self.hops += 1
        route = ROUTES.get(kind)
        if route is None:
            self.end(UNAVAILABLE, f"{kind!r} is not a destination type the switch knows.")
            return
        await route(self, value)

    async def _local(self, value: str) -> None:
        sep = "|" if "|" in value else ","
        words = [w.strip() for w in value.split(sep) if w.strip()]
        devices = await self.devices(words)
        ring: list[_Device] = []
        for word in words:
            device = devices.get(word)
            if device is None:
                self.say(f"Device {word} does not exist (any more): skipped.")
            elif not device.enabled:
                self.say(f"Device {device.username} is disabled: skipped.")
            else:
                ring.append(device)
        if not ring:
            self.end(UNAVAILABLE, "No device is left to ring: the call is ended (unavailable).")
            return
        names = ", ".join(d.username for d in ring)
        how = "together" if sep == "," or len(ring) == 1 else "in turn"
        self.say(f"Rings {names} {how}, {LEG_TIMEOUT} s each.")
        for device in ring:
            if device.record_calls:
                self.say(f"Calls answered on {device.username} are recorded (device setting).")
        legs = [self.device_leg(d.username, LEG_TIMEOUT, record=d.record_calls) for d in ring]
        self.do("bridge", sep.join(legs))
        box = next((d for d in ring if d.voicemail), None)
        if box is None:
            self.say("Nobody answers: the call ends.")
            return
        self.say(f"Nobody answers: voicemail of {box.username}.")
        self.do("answer")
        self.do("voicemail", f"default {self.domain} {box.username}")

    async def _sip_did(self, value: str) -> None:
        device = (await self.devices([value])).get(value)
        if device is None or not device.enabled:
            state = "does not exist (any more)" if device is None else "is disabled"
            self.end(UNAVAILABLE, f"SIP trunk device {value} {state}: the call is ended.")
            return
        number = self.did or self.plan.destination
        self.say(f"Sent to SIP trunk device {device.username} with {number} as the number dialled.")
        to_uri = f"sip_invite_to_uri=<sip:{number}@{self.domain}>"
        self.do(
            "bridge", f"[leg_timeout={LEG_TIMEOUT},{to_uri}]user/{device.username}@{self.domain}"
        )
        self.say("No answer: the call ends.")

    async def _voicemail(self, value: str) -> None:
        device = (await self.devices([value])).get(value)
        if device is None or not device.voicemail:
            why = "does not exist (any more)" if device is None else "has voicemail off"
            self.end(UNAVAILABLE, f"Device {value} {why}: no voicemail, the call is ended.")
            return
        self.say(f"Voicemail of {device.username}.")
        self.do("answer")
        self.do("voicemail", f"default {self.domain} {device.username}")

    async def _pstn(self, value: str) -> None:
        self.say(f"Forwarded to {value} through the PSTN gateway.")
        self.do("bridge", f"{self.settings.pstn_gateway}{value}")
        self.say("No answer there: the call ends.")

    async def _ip(self, value: str) -> None:
        host = re.sub(r"^sips?:", "", value)
        number = self.did or self.plan.destination
        self.say(f"Sent as {number} to the SIP server {host}.")
        self.do("bridge", f"sofia/{self.settings.sip_profile}/{number}@{host}")
        self.say("No answer there: the call ends.")

    async def _direct_ip(self, value: str) -> None:
        address = re.sub(r"^sips?:", "", value)
        self.say(f"Sent to the SIP address {address}.")
        self.do("bridge", f"sofia/{self.settings.sip_profile}/{address}")
        self.say("No answer there: the call ends.")

    async def _other(self, value: str) -> None:
        self.say(f"Bridged to the dial string {value}.")
        self.do("bridge", value)
        self.say("No answer there: the call ends.")

    async def _hangup(self, value: str) -> None:
        cause = HANGUP_CAUSES.get(value, value or "NORMAL_CLEARING")
        self.end(cause, f"Hung up ({cause}).")

    async def _playback(self, value: str) -> None:
        found = await self.rows(_RECORDING, name=value)
        if not found:
            self.end(UNAVAILABLE, f"Recording {value} does not exist (any more): hung up.")
            return
        self.say(f"Plays recording {value}, then hangs up.")
        self.do("answer")
        self.do("playback", self.sound(found[0].filename))
        self.do("hangup", "NORMAL_CLEARING")

    async def _foip(self, value: str) -> None:
        did = self.did or self.plan.destination
        self.say(f"Received as a fax; the pages are mailed as PDF to {value}.")
        self.plan.variables["c2_did"] = did
        self.plan.variables["c2_call_type"] = CallType.FAX.value
        for setting in ("fax_enable_t38", "fax_enable_t38_request", "fax_use_ecm"):
            self.do("set", f"{setting}=true")
        self.do("set", f"fax_ident={did}")
        self.do("answer")
        self.do("playback", "silence_stream://500")
        self.do("rxfax", os.path.join(self.spool, "rx", "${uuid}.tif"))
        self.do("hangup", "")

    def ringback(self, word: str, filename: str | None, answered: bool) -> None:
        tone = TONES.get(word.lower()) or (self.sound(filename) if filename else "")
        if not tone:
            self.say(f"Ring-back {word} is neither a tone nor a recording: the usual ring-back.")
            return
        self.say(f"The caller hears ring-back {word}.")
        self.do("set", f"{'transfer_ringback' if answered else 'ringback'}={tone}")

    async def _ring_group(self, name: str) -> None:
        rows = await self.rows(_RING_GROUP, name=name)
        if not rows:
            self.end(UNAVAILABLE, f"Ring group {name} does not exist (any more): hung up.")
            return
        group = rows[0]
        if not group.enabled:
            await self.onward(
                group.noanswer_type,
                group.noanswer_value,
                f"Ring group {name} is disabled",
                "it",
            )
            return
        self.say(f"Ring group {name} ({group.strategy}).")
        self._caller_id(group.cid_name_prefix, group.cid_number_prefix)
        answered = False
        if group.announcement and group.announcement_file:
            self.say(f"Answers and plays announcement {group.announcement}.")
            self.do("answer")
            self.do("playback", self.sound(group.announcement_file))
            answered = True
        elif group.announcement:
            self.say(f"Announcement {group.announcement} does not exist (any more): skipped.")
        if group.ringback:
            self.ringback(group.ringback, group.ringback_file, answered)
        legs = self._group_legs(group, [r for r in rows if r.target is not None])
        if not legs:
            await self.onward(
                group.noanswer_type, group.noanswer_value, "Nobody in it can be rung", "it"
            )
            return
        if group.skip_busy:
            self.say("A busy member is passed over; the others keep ringing.")
        else:
            self.say("A busy member makes the whole group busy.")
            self.do("set", "fail_on_single_reject=USER_BUSY")
        self.do("bridge", ("|" if group.strategy == "sequence" else ",").join(legs))
        await self.onward(
            group.noanswer_type, group.noanswer_value, "Nobody answers", "it", tried=True
        )

    def _caller_id(self, name_prefix: str, number_prefix: str) -> None:
        if name_prefix:
            self.say(f"The caller's name is shown with prefix {name_prefix!r}.")
            self.do("set", f"effective_caller_id_name={name_prefix}${{caller_id_name}}")
        if number_prefix:
            self.say(f"The caller's number is shown with prefix {number_prefix!r}.")
            self.do("set", f"effective_caller_id_number={number_prefix}${{caller_id_number}}")

    def _group_legs(self, group: Any, members: list[Any]) -> list[str]:
        together = group.strategy != "sequence"
        if group.recording == "on":
            self.say("Calls are recorded (ring group setting).")
            self.do("set", "media_bug_answer_req=true")
            self.do("record_session", self.call_recording())
        elif group.recording == "off":
            self.say("Calls are not recorded, whatever the devices say (ring group setting).")
        legs: list[str] = []
        for member in members:
            delay = member.delay if together else 0
            when = f"after {delay} s, " if delay else ""
            if member.username is not None:
                if not member.device_enabled:
                    self.say(f"Member {member.target} is a disabled device: skipped.")
                    continue
                record = group.recording == "device" and bool(member.record_calls)
                recorded = ", recorded (device setting)" if record else ""
                self.say(f"Rings {member.target} ({when}for {member.timeout} s{recorded}).")
                legs.append(self.device_leg(member.target, member.timeout, delay, record))
            elif re.fullmatch(r"\+\d{3,20}", member.target):  # stored E.164
                self.say(f"Rings {member.target} by the PSTN ({when}for {member.timeout} s).")
                options = [f"leg_timeout={member.timeout}"]
                if delay:
                    options.append(f"leg_delay_start={delay}")
                gateway = self.settings.pstn_gateway
                legs.append(f"[{','.join(options)}]{gateway}{member.target}")
            else:
                self.say(f"Member {member.target} is no device (any more): skipped.")
        return legs

    async def _conference(self, name: str) -> None:
        rows = await self.rows(_CONFERENCE, name=name)
        if not rows or not rows[0].enabled:
            state = "does not exist (any more)" if not rows else "is disabled"
            self.end(UNAVAILABLE, f"Conference {name} {state}: the call is ended.")
            return
        conf = rows[0]
        self.do("answer")
        if conf.greeting and conf.greeting_file:
            self.say(f"Answers and plays greeting {conf.greeting}.")
            self.do("playback", self.sound(conf.greeting_file))
        profile = conference_profile_name(self.account.number, conf.profile)
        pin = f"+{conf.pin}" if conf.pin else ""
        asks = ", after asking for its PIN" if conf.pin else ""
        self.say(f"Joins conference {name} (profile {conf.profile}){asks}.")
        self.do("conference", f"{object_name(self.account.number, name)}@{profile}{pin}")

    async def _queue(self, name: str) -> None:
        rows = await self.rows(_QUEUE, name=name)
        if not rows:
            self.end(UNAVAILABLE, f"Queue {name} does not exist (any more): hung up.")
            return
        queue = rows[0]
        if not queue.enabled:
            await self.onward(
                queue.failover_type, queue.failover_value, f"Queue {name} is disabled", "it"
            )
            return
        self.say(f"Waits in queue {name} for an agent (at most {queue.timeout} s).")
        self.do("answer")
        self.do("callcenter", queue_name(self.account.number, name))
        await self.onward(
            queue.failover_type,
            queue.failover_value,
            "No agent takes the call",
            "the queue",
            tried=True,
        )

    async def _ivr(self, name: str) -> None:
        rows = await self.rows(_IVR, name=name)
        if not rows:
            self.end(UNAVAILABLE, f"IVR {name} does not exist (any more): hung up.")
            return
        ivr = rows[0]
        if not ivr.enabled:
            await self.onward(
                ivr.failover_type, ivr.failover_value, f"IVR {name} is disabled", "it"
            )
            return
        self.say(f"Answers with voice menu (IVR) {name}; the caller's choice routes the call.")
        self.do("answer")
        self._caller_id(ivr.cid_name_prefix, "")
        if ivr.ringback:
            self.ringback(ivr.ringback, ivr.ringback_file, answered=True)
        self.do("ivr", menu_name(self.account.number, name))
        await self.onward(
            ivr.failover_type, ivr.failover_value, "No valid choice is made", "the IVR", tried=True
        )

    async def _time_condition(self, name: str) -> None:
        rows = await self.rows(_TIME_CONDITION, name=name)
        if not rows:
            self.end(UNAVAILABLE, f"Time condition {name} does not exist (any more): hung up.")
            return
        first = rows[0]
        if not first.enabled:
            await self.onward(
                first.failover_type,
                first.failover_value,
                f"Time condition {name} is disabled",
                "it",
            )
            return
        condition = _Condition(
            first.force,
            [
                _Row(
                    r.kind,
                    r.start_time,
                    r.end_time,
                    r.weekdays,
                    r.monthdays,
                    r.months,
                    r.years,
                    r.holiday_country,
                    r.priority,
                    r.dest_type,
                    r.dest_value,
                )
                for r in rows
                if r.row_id is not None
            ],
        )
        try:
            picked = choose(condition, self.now, self.account.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.say(f"The account's time zone {self.account.timezone!r} is unknown: UTC is used.")
            picked = choose(condition, self.now, "UTC")
        by = f" by {first.forced_by}" if first.force != "auto" and first.forced_by else ""
        self.say(f"Time condition {name}{by}: {picked.reason}.")
        row = picked.row
        if isinstance(row, _Row):
            self.say(
                f"Row {picked.number} sends the call to {label(row.dest_type, row.dest_value)}."
            )
            await self.go(row.dest_type, row.dest_value)
            return
        await self.onward(first.failover_type, first.failover_value, "Failover", "it")


# Every destination type (c2bot.handlers.destinations.TYPES) and how the walk follows it.
ROUTES: dict[str, Callable[[_Walk, str], Awaitable[None]]] = {
    "local": _Walk._local,
    "ip": _Walk._ip,
    "direct-ip": _Walk._direct_ip,
    "pstn": _Walk._pstn,
    "sip-did": _Walk._sip_did,
    "ringgroup": _Walk._ring_group,
    "conference": _Walk._conference,
    "queue": _Walk._queue,
    "ivr": _Walk._ivr,
    "timecondition": _Walk._time_condition,
    "foip": _Walk._foip,
    "other": _Walk._other,
    "voicemail": _Walk._voicemail,
    "playback": _Walk._playback,
    "hangup": _Walk._hangup,
}


# --- entry points -----------------------------------------------------------------------------


async def plan(
    session: AsyncSession,
    settings: Settings,
    *,
    context: str,
    destination: str,
    caller: str,
    now: datetime,
    device: str = "",
) -> Plan:
    """What a call to `destination` in `context` does at `now` (UTC), as actions and steps."""
    result = Plan(found=False, context=context, destination=destination)
    return await _plan(lookups.session_reader(session), settings, result, now, caller, device)


async def _plan(
    read: Reader, settings: Settings, result: Plan, now: datetime, caller: str, device: str
) -> Plan:
    who = f" from {caller}" if caller else ""
    context = result.context
    if context.startswith(DEVICE_CONTEXT):
        await _from_device(read, settings, result, now, context[len(DEVICE_CONTEXT) :], device, who)
    else:
        await _from_outside(read, settings, result, now, who)
    if result.found:
        _finish(result)
    return result


async def _from_outside(
    read: Reader, settings: Settings, result: Plan, now: datetime, who: str
) -> None:
    numbers = did_candidates(result.destination, settings.fax_country)
    pair = {"number0": numbers[0], "number1": numbers[-1]} if numbers else {}
    found = await read(_DID, pair) if numbers else []
    row = found[0] if found else None
    if row is None:
        result.steps.append(f"{result.destination} is not one of our numbers: not found.")
        return
    account = _Account(row.id, row.account, row.timezone)
    _found(result, settings, account, f"did-{row.number}")
    result.variables["c2_did"] = row.number
    result.variables["c2_direction"] = Direction.INBOUND.value
    result.variables["c2_call_type"] = CallType.DID.value
    result.steps.append(f"Call to {row.number}{who}: a number of account {account.number}.")
    walk = _Walk(read, settings, account, result, now, did=row.number)
    if not row.forward_type:
        walk.end(UNALLOCATED, "Its forwarding is not set: the caller hears it is not in use.")
        return
    await walk.go(row.forward_type, row.destination or "")


async def _from_device(
    read: Reader,
    settings: Settings,
    result: Plan,
    now: datetime,
    number: str,
    device: str,
    who: str,
) -> None:
    dialled = result.destination
    found = await read(_FROM_DEVICE, {"number": number, "device": device, "dialled": dialled})
    row = found[0] if found else None
    if row is None:
        result.steps.append(f"There is no account {number}: not found.")
        return
    account = _Account(row.id, row.number, row.timezone)
    walk = _Walk(read, settings, account, result, now)
    if dialled == RECORD_EXTENSION:
        _found(result, settings, account, "record")
        _local(result, device)
        result.steps.append(f"Call to {dialled}{who}: record a greeting for account {number}.")
        await _record_greeting(walk, device)
        return
    named: dict[str, _Device] = {}
    for r in found:
        if r.target_username is not None:
            named[r.target_username] = named[r.target_extension] = _Device(
                r.target_username,
                r.target_extension,
                r.target_enabled,
                r.target_voicemail,
                r.target_record_calls,
            )
    target = named.get(dialled)
    if target is not None and target.username != device:
        _found(result, settings, account, f"device-{target.username}")
        _local(result, device)
        result.steps.append(f"Call to {dialled}{who}: device {target.username}.")
        await walk.go("local", target.username)
        return
    if target is not None and target.voicemail:
        _found(result, settings, account, "voicemail-check")
        _local(result, device)
        result.steps.append(f"Call to {dialled}{who}: its own number, so its voicemail box.")
        walk.do("answer")
        walk.do("voicemail", f"check default {walk.domain} {target.username}")
        return
    parsed = targets.parse_transfer_target(dialled)
    if parsed is None:
        await _outbound(walk, result, settings, row, who)
        return
    kind, value = parsed
    if kind in OUTSIDE_TYPES and not await _ivr_sends(walk, kind, value):
        result.steps.append(
            f"{dialled} names {label(kind, value)}, which no IVR of account {number} sends "
            "calls to: not found."
        )
        return
    _found(result, settings, account, f"to-{kind}")
    result.steps.append(f"Transferred within account {number} to {label(kind, value)}.")
    await walk.go(kind, value)


async def _outbound(walk: _Walk, result: Plan, settings: Settings, row: Any, who: str) -> None:
    """A number outside the account: the outbound plan (c2bot.switch.outbound)."""
    account, dialled = walk.account, result.destination
    out = await outbound.plan(
        walk.read,
        settings,
        row,
        dialled=dialled,
        caller=who.removeprefix(" from "),
        recording=walk.call_recording(),
    )
    if out is None:
        result.steps.append(f"{dialled} is no device or destination of account {account.number}.")
        return
    _found(result, settings, account, out.extension)
    result.steps.append(f"Call to {dialled}{who}: a number outside the account.")
    result.steps.extend(out.steps)
    result.variables.update(out.variables)
    result.actions.extend(out.actions)


def _local(result: Plan, device: str) -> None:
    """A call from a device to its own account (not a transfer of a call that came in)."""
    if device:
        result.variables["c2_direction"] = Direction.LOCAL.value
        result.variables["c2_call_type"] = CallType.LOCAL.value


async def _ivr_sends(walk: _Walk, kind: str, value: str) -> bool:
    return bool(await walk.rows(_IVR_SENDS, type=kind, value=value))


async def _record_greeting(walk: _Walk, device: str) -> None:
    number = walk.account.number
    own = await walk.rows(_RECORDING, name=RECORD_PROMPT)
    prompt = walk.sound(own[0].filename) if own else STOCK_RECORD_PROMPT
    target = os.path.join(walk.recordings, number, "phone-${uuid}.wav")
    walk.do("answer")
    walk.do("set", f"c2_record_account={number}")
    walk.do("set", f"c2_record_device={device or '${c2_device}'}")
    walk.do("set", f"c2_record_file={target}")
    walk.do("playback", prompt)
    walk.do("playback", BEEP)
    walk.do("record", f"${{c2_record_file}} {RECORD_ARGS}")
    walk.do("hangup", "NORMAL_CLEARING")
    which = f"recording {RECORD_PROMPT}" if own else "the stock prompt"
    walk.say(
        f"Answers, plays {which} and a beep, records up to 5 minutes (3 s of silence ends it); "
        f"after hang-up the recording appears in `/c2 recording list account:{number}`."
    )


def _found(result: Plan, settings: Settings, account: _Account, extension: str) -> None:
    result.found = True
    result.account = account.number
    result.extension = f"c2-{account.number}-{extension}"
    result.variables.update(
        {
            "accountcode": account.number,
            "c2_account": account.number,
            "domain_name": sip_domain(settings, account.number),
            "hangup_after_bridge": "true",
        }
    )


def _finish(result: Plan) -> None:
    """A bridge followed by more actions must let the call go on when nobody answers."""
    last_bridge = max(
        (i for i, (app, _) in enumerate(result.actions) if app == "bridge"), default=-1
    )
    if 0 <= last_bridge < len(result.actions) - 1:
        result.variables.setdefault("continue_on_fail", "true")


def render(result: Plan) -> bytes:
    """The plan as mod_xml_curl's dialplan document."""
    root, section = xmldoc.document("dialplan")
    context = SubElement(section, "context", name=result.context)
    extension = SubElement(context, "extension", name=result.extension)
    condition = SubElement(
        extension,
        "condition",
        field="destination_number",
        expression=f"^{re.escape(result.destination)}$",
    )
    actions = [("set", f"{k}={v}") for k, v in result.variables.items()] + result.actions
    for application, data in actions:
        attributes = {"application": application}
        if data:
            attributes["data"] = data
        SubElement(condition, "action", attributes)
    # As xmldoc.render, but serialised to text first: a third quicker for documents this small.
    return XML_DECLARATION + tostring(root, encoding="unicode").encode()


def _param(params: Mapping[str, str], name: str) -> str:
    """The caller profile being routed (`Hunt-*`), else the channel's (`Caller-*`)."""
    return params.get(f"Hunt-{name}") or params.get(f"Caller-{name}") or ""


async def answer(
    sessions: SessionFactory, settings: Settings, params: Mapping[str, str], now: datetime
) -> bytes:
    """The dialplan document for one mod_xml_curl request (its form fields), at `now` (UTC)."""
    destination = _param(params, "Destination-Number")
    if params.get("section", "dialplan") != "dialplan" or not destination:
        return xmldoc.not_found()
    device = (
        params.get("variable_c2_device")
        or params.get("variable_user_name")
        or params.get("variable_sip_auth_username")
        or ""
    )
    context = _param(params, "Context") or "default"
    result = Plan(found=False, context=context, destination=destination)
    caller = _param(params, "Caller-ID-Number")
    async with lookups.reader(sessions, settings) as read:
        await _plan(read, settings, result, now, caller, device)
    return render(result) if result.found else xmldoc.not_found()
