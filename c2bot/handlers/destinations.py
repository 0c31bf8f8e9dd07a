"""Where a call goes next: one vocabulary for DIDs, ring groups, queues, IVRs and time conditions.

A destination is a type word and a value. The DID forwarding types are the platform's own; three
more (voicemail, playback, hangup) end a call inside the account and serve as failovers and
no-answer destinations. Objects are named within their account, so a value never reaches into
another account's routing.

Loops: a path the switch would follow by itself (time condition rows and failover, ring group
no-answer, queue failover, IVR failover) must never come back to where it started, or a call
would spin until FreeSWITCH gives up. A caller pressing digits is different: an IVR option that
leads back to the main menu is a feature, so only an IVR option naming its own IVR is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.accounts import normalise_email
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, NotAllowed
from c2bot.storage.models import (
    Account,
    CallQueue,
    Conference,
    Did,
    Ivr,
    Recording,
    RingGroup,
    SipDevice,
    TimeCondition,
)
from c2bot.switch.dialplan import HANGUP_CAUSES as HANGUP_CAUSES
from c2bot.switch.dialplan import OBJECT_WORDS as OBJECT_WORDS
from c2bot.switch.dialplan import label

DID_TYPES: dict[str, str] = {
    "local": "SIP device(s) of the account: a,b ring together, a|b in turn (DID-local)",
    "ip": "the DID sent to a SIP server, host[:port] (DID@IP/URL)",
    "direct-ip": "a SIP address as it is, user@host[:port] (Direct-IP)",
    "pstn": "a phone number, e.g. a mobile (PSTN)",
    "sip-did": "a SIP trunk device of the account, the DID kept as the number dialled",
    "ringgroup": "a ring group of the account, by name",
    "conference": "a conference of the account, by name",
    "queue": "a call queue of the account, by name",
    "ivr": "an IVR (voice menu) of the account, by name",
    "timecondition": "a time condition of the account, by name",
    "foip": "fax: received faxes mailed as PDF to one email address",
    "other": "a raw FreeSWITCH dial string (staff only)",
}
INNER_TYPES: dict[str, str] = {
    "voicemail": "a device's voicemail box, by device",
    "playback": "play a recording of the account, then hang up",
    "hangup": "end the call (optionally: busy, unavailable, rejected)",
}
TYPES: dict[str, str] = DID_TYPES | INNER_TYPES
OBJECT_TYPES: dict[str, type[RingGroup | Conference | CallQueue | Ivr | TimeCondition]] = {
    "ringgroup": RingGroup,
    "conference": Conference,
    "queue": CallQueue,
    "ivr": Ivr,
    "timecondition": TimeCondition,
}
_HOST = re.compile(
    r"^(?:sips?:)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?(;transport=(udp|tcp|tls))?$"
)
_SIP_ADDRESS = re.compile(
    r"^(?:sips?:)?[A-Za-z0-9_.!~*'()&=+$,;?/%-]+@[A-Za-z0-9.\[\]:-]+(;[a-z=]+)?$"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Destination:
    type: str
    value: str

    def label(self) -> str:
        return label(self.type, self.value)  # as the dialplan's steps name it

    @property
    def is_set(self) -> bool:
        return bool(self.type)


UNSET = Destination("", "")


def check_name(name: str, what: str, field: str = "name") -> str:
    """Object names: letters, digits, `-_.`; they appear in FreeSWITCH names and commands."""
    if not _NAME.match(name):
        raise Invalid(
            f"{what.capitalize()} name {name!r} must be 1 to 64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit.",
            {field: "letters, digits, - _ . only"},
        )
    return name


def device_targets(value: str) -> tuple[str, list[str]]:
    """`a,b` (ring together) or `a|b` (in turn) -> the separator and the device words."""
    sep = "|" if "|" in value else ","
    if "|" in value and "," in value:
        raise Invalid(
            "Use either ',' (ring together) or '|' (ring in turn) between devices, not both.",
            {"destination": "mixes , and |"},
        )
    words = [w.strip() for w in value.split(sep)]
    if not value.strip() or any(not w for w in words):
        raise Invalid("Name at least one device, e.g. 1001-100.", {"destination": "no device"})
    return sep, words


def phone_number(text: str, region: str, field: str = "destination") -> str:
    """A dialable number in E.164, or a refusal saying why not."""
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise Invalid(f"{text!r} is not a phone number.", {field: "not a phone number"}) from None
    if not phonenumbers.is_valid_number(parsed):
        raise Invalid(
            f"{text} is not a valid number (checked for {region} when it has no +country code).",
            {field: "not a valid number"},
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse(
    type_word: str, value: str, region: str = "NL", *, field: str = "destination"
) -> Destination:
    """Check a destination's words without the database: the type is known, the value fits it."""
    kind = type_word.strip().lower()
    value = value.strip()
    if kind not in TYPES:
        raise Invalid(
            f"{type_word!r} is not a forwarding type; use one of: {', '.join(TYPES)}.",
            {"type": "unknown type"},
        )
    if kind == "hangup":
        if value.lower() not in HANGUP_CAUSES:
            raise Invalid(
                f"hangup takes nothing or one of: {', '.join(w for w in HANGUP_CAUSES if w)}.",
                {field: "unknown cause"},
            )
        return Destination(kind, value.lower())
    if not value:
        raise Invalid(f"{kind} needs a destination: {TYPES[kind]}.", {field: "missing"})
    if "\n" in value or "\r" in value:
        raise Invalid("A destination is one line.", {field: "more than one line"})
    if kind == "pstn":
        return Destination(kind, phone_number(value, region, field))
    if kind == "foip":
        return Destination(kind, normalise_email(value))
    if kind == "ip" and not _HOST.match(value):
        raise Invalid(
            f"{value!r} is not a SIP server; give host[:port], e.g. pbx.acme.nl:5060.",
            {field: "not host[:port]"},
        )
    if kind == "direct-ip" and not _SIP_ADDRESS.match(value):
        raise Invalid(
            f"{value!r} is not a SIP address; give user@host[:port], e.g. 100@203.0.113.5.",
            {field: "not user@host"},
        )
    if kind == "local":
        sep, words = device_targets(value)
        return Destination(kind, sep.join(words))
    if kind in OBJECT_TYPES or kind == "playback":
        check_name(value, OBJECT_WORDS.get(kind, "recording"), field)
    if kind == "other" and len(value) > 500:
        raise Invalid("A dial string is at most 500 characters.", {field: "too long"})
    return Destination(kind, value)


async def device_of(session: AsyncSession, account: Account, word: str) -> SipDevice | None:
    """A device of the account by username (1001-100) or by extension (100)."""
    return await session.scalar(
        select(SipDevice).where(
            SipDevice.account_id == account.id,
            (SipDevice.username == word) | (SipDevice.extension == word),
        )
    )


async def object_of(
    session: AsyncSession, account_id: int, kind: str, name: str
) -> RingGroup | Conference | CallQueue | Ivr | TimeCondition | None:
    model = OBJECT_TYPES[kind]
    found: RingGroup | Conference | CallQueue | Ivr | TimeCondition | None = await session.scalar(
        select(model).where(model.account_id == account_id, model.name == name)
    )
    return found


async def check(
    session: AsyncSession,
    ctx: Context,
    account: Account,
    dest: Destination,
    *,
    field: str = "destination",
) -> Destination:
    """The destination as stored: its devices and objects exist in `account`; `other` is staff's.

    Device words become usernames, so a later extension change does not reroute calls.
    """
    if dest.type == "other" and not ctx.actor.is_staff:
        raise NotAllowed("Only support staff may forward to a raw dial string (type other).")
    if dest.type in ("local", "sip-did", "voicemail"):
        sep, words = device_targets(dest.value) if dest.type == "local" else (",", [dest.value])
        names = []
        for word in words:
            device = await device_of(session, account, word)
            if device is None:
                raise Invalid(
                    f"Account {account.number} has no SIP device {word!r}; "
                    f"see `/c2 device list account:{account.number}`.",
                    {field: f"no device {word}"},
                )
            if dest.type == "voicemail" and not device.voicemail:
                raise Invalid(
                    f"Device {device.username} has voicemail off; turn it on with "
                    f"`/c2 device edit {device.username} voicemail:on`.",
                    {field: "voicemail is off"},
                )
            names.append(device.username)
        return Destination(dest.type, sep.join(names))
    if dest.type in OBJECT_TYPES and not await object_of(
        session, account.id, dest.type, dest.value
    ):
        what = OBJECT_WORDS[dest.type]
        raise Invalid(
            f"Account {account.number} has no {what} {dest.value!r}.",
            {field: f"no {what} {dest.value}"},
        )
    if dest.type == "playback":
        found = await session.scalar(
            select(Recording.id).where(
                Recording.account_id == account.id, Recording.name == dest.value
            )
        )
        if found is None:
            raise Invalid(
                f"Account {account.number} has no recording {dest.value!r}; "
                "upload one with `/c2 recording add` or dial 1800 from a device.",
                {field: f"no recording {dest.value}"},
            )
    return dest


async def edges(
    session: AsyncSession, account_id: int, dest: Destination, *, digits: bool = False
) -> list[tuple[str, Destination]]:
    """Where an object sends calls next, each with the reason (`row 2`, `failover`, `digit 1`).

    Without `digits`, only the paths the switch takes by itself (see the module docstring).
    """
    if dest.type not in OBJECT_TYPES:
        return []
    found = await object_of(session, account_id, dest.type, dest.value)
    if found is None:
        return []
    out: list[tuple[str, Destination]] = []
    if isinstance(found, TimeCondition):
        out += [
            (f"row {n} (priority {row.priority})", Destination(row.dest_type, row.dest_value))
            for n, row in enumerate(found.rows, 1)
        ]
        out.append(("failover", Destination(found.failover_type, found.failover_value)))
    elif isinstance(found, RingGroup):
        out.append(("no answer", Destination(found.noanswer_type, found.noanswer_value)))
    elif isinstance(found, CallQueue):
        out.append(("failover", Destination(found.failover_type, found.failover_value)))
    elif isinstance(found, Ivr):
        if digits:
            out += [
                (f"digit {o.digit}", Destination(o.dest_type, o.dest_value)) for o in found.options
            ]
        out.append(("failover", Destination(found.failover_type, found.failover_value)))
    return [(why, d) for why, d in out if d.is_set]


async def find_loop(
    session: AsyncSession, account_id: int, origin: Destination, new: Destination
) -> list[str] | None:
    """If sending `origin` to `new` lets the switch come back to `origin` by itself, the path
    (labels from origin back to origin); else None."""
    if new == origin:
        return [origin.label(), origin.label()]
    seen: set[Destination] = set()
    stack: list[tuple[Destination, list[str]]] = [(new, [origin.label(), new.label()])]
    while stack:
        here, path = stack.pop()
        if here in seen:
            continue
        seen.add(here)
        for _why, nxt in await edges(session, account_id, here):
            if nxt == origin:
                return [*path, origin.label()]
            stack.append((nxt, [*path, nxt.label()]))
    return None


async def refuse_loop(
    session: AsyncSession,
    account_id: int,
    origin: Destination,
    new: Destination,
    field: str = "destination",
) -> None:
    path = await find_loop(session, account_id, origin, new)
    if path is not None:
        raise Invalid(
            f"That would make a loop: {' -> '.join(path)}. Calls would go round without end; "
            "pick a destination that does not lead back.",
            {field: "loops back"},
        )


async def references(session: AsyncSession, account_id: int, dest: Destination) -> list[str]:
    """Who sends calls to `dest` (so it is not removed from under them), in words."""
    found: list[str] = []
    same_account = Did.account_id == account_id
    for did in await session.scalars(select(Did).where(same_account)):
        if _points_at(did.forward_type or "", did.destination or "", dest):
            found.append(f"DID {did.number}")
    for kind, model in OBJECT_TYPES.items():
        objects: Sequence[RingGroup | Conference | CallQueue | Ivr | TimeCondition] = (
            await session.scalars(select(model).where(model.account_id == account_id))
        ).all()  # type: ignore[assignment]
        for obj in objects:
            here = Destination(kind, obj.name)
            for why, nxt in await edges(session, account_id, here, digits=True):
                if _points_at(nxt.type, nxt.value, dest):
                    found.append(f"{here.label()} ({why})")
            members: list[str] = []
            if isinstance(obj, RingGroup):
                members = [m.target for m in obj.members]
            elif isinstance(obj, CallQueue):
                members = [a.target for a in obj.agents]
            if dest.type == "local" and dest.value in members:
                found.append(f"{here.label()} ({'member' if kind == 'ringgroup' else 'agent'})")
    return found


def _points_at(kind: str, value: str, dest: Destination) -> bool:
    if dest.type == "local":  # a device: any local/sip-did/voicemail naming it
        return kind in ("local", "sip-did", "voicemail") and dest.value in re.split(r"[,|]", value)
    return kind == dest.type and value == dest.value


def describe_types(types: Sequence[str] = tuple(TYPES)) -> str:
    return "; ".join(f"{t}: {TYPES[t]}" for t in types)
