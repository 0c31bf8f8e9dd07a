"""Live calls and phone registrations, as every connected switch reports them.

Calls come from ``show channels as json`` (one row per leg; an empty switch answers
``{"row_count": 0}`` without ``rows``) and are grouped into calls by ``call_uuid``, which
FreeSWITCH gives both legs of a bridged call. Registrations come from ``show registrations as
json``, which has no user agent; ``sofia xmlstatus profile P reg`` adds it, matched by Call-ID.
A host that does not answer is reported, not fatal, unless no host answers at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from c2bot.switch.esl import EslClient, SwitchError, SwitchPool, SwitchUnavailable

__all__ = [
    "Call",
    "ChannelList",
    "LiveCall",
    "NoSuchCall",
    "Registration",
    "barge",
    "channels",
    "group_calls",
    "hangup",
    "live_channels",
    "parse_channels",
    "registration",
    "registrations",
]

log = logging.getLogger(__name__)
FIRST_CONNECT = 1.0  # seconds a switch that is still connecting gets before it is "unreachable"

T = TypeVar("T")

NO_SUCH_CHANNEL = "-ERR No such channel!"
# FreeSWITCH uuids, and the origination_uuid values people give them: nothing that could end
# an Event Socket command or start another argument.
CALL_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DIAL_STRING = re.compile(r"^[^\s{}]+$")
BARGE_ANSWER_SECONDS = 30


class NoSuchCall(SwitchError):
    """No switch has a channel with that uuid (it ended, or never was)."""

    def __init__(self, uuid: str) -> None:
        super().__init__(NO_SUCH_CHANNEL, f"no switch has a call {uuid}")
        self.uuid = uuid


@dataclass(frozen=True)
class LiveCall:
    """One leg of a call, as a row of ``show channels as json``."""

    uuid: str
    call_uuid: str
    direction: str
    created: datetime
    caller_number: str
    caller_name: str
    destination: str
    state: str  # channel state, e.g. CS_EXECUTE
    callstate: str  # call state, e.g. ACTIVE, RINGING, EARLY, HELD
    read_codec: str
    write_codec: str
    accountcode: str
    host: str  # the pool's name for the switch it is on
    name: str  # channel name, e.g. sofia/internal/1001-100@1001.sip.localhost

    @property
    def call_key(self) -> str:
        """What the legs of one call share: ``call_uuid``, else the leg's own uuid."""
        return self.call_uuid or self.uuid

    @property
    def codecs(self) -> str:
        if self.read_codec == self.write_codec:
            return self.read_codec
        return f"{self.read_codec}/{self.write_codec}"


@dataclass(frozen=True)
class Call:
    """The legs of one call; the A leg (the one that started it) first."""

    legs: tuple[LiveCall, ...]

    @property
    def a_leg(self) -> LiveCall:
        return self.legs[0]

    @property
    def b_leg(self) -> LiveCall | None:
        return self.legs[1] if len(self.legs) > 1 else None

    @property
    def accountcodes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(leg.accountcode for leg in self.legs if leg.accountcode))

    @property
    def codecs(self) -> str:
        return ", ".join(dict.fromkeys(leg.codecs for leg in self.legs if leg.codecs))

    def leg(self, uuid: str) -> LiveCall | None:
        wanted = uuid.lower()
        return next((leg for leg in self.legs if leg.uuid.lower() == wanted), None)

    def duration(self, now: datetime) -> timedelta:
        return max(timedelta(0), now - self.a_leg.created)


@dataclass(frozen=True)
class ChannelList:
    """Every answering switch's legs, and the switches that did not answer (name -> why)."""

    legs: tuple[LiveCall, ...]
    unreachable: dict[str, str] = field(default_factory=dict)

    def calls(self) -> list[Call]:
        return group_calls(self.legs)


@dataclass(frozen=True)
class Registration:
    """A SIP phone registered with a switch."""

    user: str
    realm: str
    contact: str  # e.g. sip:1001-100@192.0.2.10:5060
    user_agent: str
    network_ip: str
    network_port: str
    network_proto: str
    expires: datetime | None
    host: str
    profile: str
    call_id: str
    status: str = ""  # sofia's words, e.g. "Registered(UDP)(unknown) exp(...) expsecs(118)"


# --- calls ------------------------------------------------------------------------------------


async def live_channels(pool: SwitchPool | None) -> ChannelList:
    """Every leg on every switch that answers; SwitchUnavailable if none does."""
    answers, unreachable = await _each_host(pool, _host_channels)
    legs = tuple(leg for host_legs in answers.values() for leg in host_legs)
    return ChannelList(legs, unreachable)


async def channels(pool: SwitchPool | None) -> list[LiveCall]:
    return list((await live_channels(pool)).legs)


def group_calls(legs: Iterable[LiveCall]) -> list[Call]:
    """Legs grouped by call (and switch), oldest call first; within a call the A leg first."""
    grouped: dict[tuple[str, str], list[LiveCall]] = {}
    for leg in legs:
        grouped.setdefault((leg.host, leg.call_key), []).append(leg)
    calls = [Call(tuple(sorted(group, key=_a_leg_first))) for group in grouped.values()]
    return sorted(calls, key=lambda call: (call.a_leg.created, call.a_leg.uuid))


def _a_leg_first(leg: LiveCall) -> tuple[bool, datetime, str]:
    return (leg.uuid != leg.call_key, leg.created, leg.uuid)


async def _host_channels(client: EslClient) -> list[LiveCall]:
    return parse_channels(await client.api("show channels as json"), client.name)


def parse_channels(answer: str, host: str) -> list[LiveCall]:
    """The legs in one switch's ``show channels as json`` answer."""
    return [_live_call(row, host) for row in _rows(answer, host, "show channels")]


def _live_call(row: dict[str, Any], host: str) -> LiveCall:
    def text(key: str) -> str:
        return str(row.get(key) or "")

    return LiveCall(
        uuid=text("uuid"),
        call_uuid=text("call_uuid"),
        direction=text("direction"),
        created=_created(text("created_epoch"), text("created")),
        caller_number=text("cid_num"),
        caller_name=text("cid_name"),
        destination=text("dest"),
        state=text("state"),
        callstate=text("callstate"),
        read_codec=text("read_codec"),
        write_codec=text("write_codec"),
        accountcode=text("accountcode"),
        host=host,
        name=text("name"),
    )


def _created(epoch: str, stamp: str) -> datetime:
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    try:
        # The switch's local time; only a fallback, the epoch is always there on FreeSWITCH.
        return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").astimezone(UTC)
    except ValueError:
        return datetime.now(UTC)


async def hangup(pool: SwitchPool | None, uuid: str, host: str | None = None) -> None:
    """``uuid_kill`` on the switch that has the call (``host``, else each until one has it).

    NoSuchCall when no switch has it; SwitchUnavailable when it is not found and a switch that
    might have it did not answer.
    """
    _check_uuid(uuid)
    pool = _need(pool)
    clients = [pool.get(host)] if host else list(pool.clients.values())
    silent: list[str] = []
    for client in clients:
        try:
            await _ready(client)
            await client.api(f"uuid_kill {uuid}")
            return
        except SwitchUnavailable as error:
            silent.append(str(error))
        except SwitchError as error:
            if not error.reply.startswith(NO_SUCH_CHANNEL):
                raise
    if silent:
        raise SwitchUnavailable("; ".join(silent))
    raise NoSuchCall(uuid)


async def barge(
    pool: SwitchPool | None,
    uuid: str,
    dial_string: str,
    caller_id_name: str,
    caller_id_number: str,
    host: str | None = None,
    answer_seconds: int = BARGE_ANSWER_SECONDS,
) -> str:
    """Ring ``dial_string`` and, once answered, let it eavesdrop on ``uuid``; the new leg's uuid.

    Waits for the answer (up to ``answer_seconds``); a phone that does not answer, is busy or is
    not registered is a SwitchError whose reply names the cause (``-ERR NO_ANSWER``).
    DTMF on the listening phone: 2 speaks to ``uuid``'s party, 1 to the other, 3 to both,
    0 back to listening.
    """
    _check_uuid(uuid)
    if not DIAL_STRING.match(dial_string):
        raise ValueError(f"not a dial string: {dial_string!r}")
    client = _need(pool).get(host)
    variables = {
        "origination_caller_id_name": caller_id_name,
        "origination_caller_id_number": caller_id_number,
        "originate_timeout": str(answer_seconds),
        "eavesdrop_enable_dtmf": "true",
    }
    command = f"originate {{{_channel_variables(variables)}}}{dial_string} &eavesdrop({uuid})"
    await _ready(client)
    result = await client.bgapi(command, timeout=answer_seconds + 5)
    return result.removeprefix("+OK").strip()


def _channel_variables(variables: dict[str, str]) -> str:
    """``{a=b,c='d e'}`` contents; quotes, braces and line ends are dropped from values."""
    items = []
    for name, value in variables.items():
        clean = re.sub(r"['{}\r\n]", "", value)
        items.append(f"{name}='{clean}'" if re.search(r"[\s,]", clean) else f"{name}={clean}")
    return ",".join(items)


def _check_uuid(uuid: str) -> None:
    if not CALL_UUID.match(uuid):
        raise ValueError(f"not a call uuid: {uuid!r}")


# --- registrations ----------------------------------------------------------------------------


async def registrations(pool: SwitchPool | None) -> list[Registration]:
    """Every phone registered with any answering switch; SwitchUnavailable if none answers."""
    answers, _ = await _each_host(pool, lambda client: _host_registrations(client, None))
    return [found for host_found in answers.values() for found in host_found]


async def registration(pool: SwitchPool | None, username: str, realm: str) -> Registration | None:
    """The registration of ``username@realm`` that lasts longest, or None if there is none.

    SwitchUnavailable when there is no switch or none answers (the caller says so, rather
    than calling the phone unregistered).
    """

    def wanted(row: dict[str, Any]) -> bool:
        return str(row.get("reg_user", "")) == username and (
            str(row.get("realm", "")).lower() == realm.lower()
        )

    answers, _ = await _each_host(pool, lambda client: _host_registrations(client, wanted))
    found = [found for host_found in answers.values() for found in host_found]
    never = datetime.min.replace(tzinfo=UTC)
    return max(found, key=lambda r: r.expires or never, default=None)


async def _host_registrations(
    client: EslClient, wanted: Callable[[dict[str, Any]], bool] | None
) -> list[Registration]:
    rows = _rows(await client.api("show registrations as json"), client.name, "registrations")
    rows = [row for row in rows if wanted is None or wanted(row)]
    details: dict[str, dict[str, str]] = {}
    for profile in dict.fromkeys(_profile(row) for row in rows):
        if not profile:
            continue
        try:
            answer = await client.api(f"sofia xmlstatus profile {profile} reg")
        except SwitchError as error:
            if isinstance(error, SwitchUnavailable):
                raise
            log.warning("%s: sofia profile %s has no status: %s", client.name, profile, error)
            continue
        details.update(_xml_registrations(answer, client.name))
    return [_registration(row, details, client.name) for row in rows]


def _profile(row: dict[str, Any]) -> str:
    """``sofia/internal/sip:1000@127.0.0.1:5070`` -> ``internal``."""
    parts = str(row.get("url", "")).split("/", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "sofia" else ""


def _registration(
    row: dict[str, Any], details: dict[str, dict[str, str]], host: str
) -> Registration:
    token = str(row.get("token", ""))
    more = details.get(token, {})
    url = str(row.get("url", ""))
    expires = str(row.get("expires", ""))
    return Registration(
        user=str(row.get("reg_user", "")),
        realm=str(row.get("realm", "")),
        contact=_contact_uri(more.get("contact", "")) or url.split("/", 2)[-1],
        user_agent=more.get("agent", ""),
        network_ip=str(row.get("network_ip", "")),
        network_port=str(row.get("network_port", "")),
        network_proto=str(row.get("network_proto", "")),
        expires=datetime.fromtimestamp(int(expires), UTC) if expires.isdigit() else None,
        host=host,
        profile=_profile(row),
        call_id=token,
        status=more.get("status", ""),
    )


def _contact_uri(contact: str) -> str:
    """``"" <sip:1000@127.0.0.1:5070>`` -> ``sip:1000@127.0.0.1:5070``."""
    inside = re.search(r"<([^>]*)>", contact)
    return (inside[1] if inside else contact).strip()


def _xml_registrations(answer: str, host: str) -> dict[str, dict[str, str]]:
    """Call-ID -> the fields of each ``<registration>`` in sofia's xmlstatus answer."""
    try:
        # Our own switch's answer over the authenticated Event Socket, not a stranger's file;
        # the values phones send in are escaped by sofia.
        # Given as text, the declared ISO-8859-1 is moot: the client already decoded it.
        root = ET.fromstring(answer)  # noqa: S314
    except ET.ParseError as error:
        log.warning("%s: unreadable sofia xmlstatus answer: %s", host, error)
        return {}
    found: dict[str, dict[str, str]] = {}
    for item in root.iter("registration"):
        fields = {child.tag: (child.text or "").strip() for child in item}
        found[fields.get("call-id", "")] = fields
    return found


# --- shared -----------------------------------------------------------------------------------


def _need(pool: SwitchPool | None) -> SwitchPool:
    if pool is None:
        raise SwitchUnavailable("this c2bot process has no connection to the switch")
    return pool


async def _each_host(
    pool: SwitchPool | None, ask: Callable[[EslClient], Awaitable[T]]
) -> tuple[dict[str, T], dict[str, str]]:
    """Ask every switch at once: (answers by name, why the others did not answer)."""
    clients = list(_need(pool).clients.values())

    async def ready_then_ask(client: EslClient) -> T:
        await _ready(client)
        return await ask(client)

    results = await asyncio.gather(*map(ready_then_ask, clients), return_exceptions=True)
    answers: dict[str, T] = {}
    unreachable: dict[str, str] = {}
    for client, result in zip(clients, results, strict=True):
        if isinstance(result, SwitchUnavailable):
            unreachable[client.name] = str(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            answers[client.name] = result
    if not answers:
        raise SwitchUnavailable("; ".join(unreachable.values()) or "no switch answered")
    return answers, unreachable


async def _ready(client: EslClient) -> None:
    """A switch still making its connection (a process that just started, a reconnect under
    way) gets a moment before it counts as unreachable."""
    if client.health().get("state") == "connecting":
        await client.wait_connected(FIRST_CONNECT)


def _rows(answer: str, host: str, what: str) -> list[dict[str, Any]]:
    """The rows of a ``show ... as json`` answer (none when it is ``{"row_count": 0}``)."""
    try:
        data = json.loads(answer)
    except ValueError:
        raise SwitchError(answer[:200], f"{host}: {what} answered with no JSON") from None
    rows = data.get("rows", []) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise SwitchError(answer[:200], f"{host}: {what} answered with no rows list")
    return [row for row in rows if isinstance(row, dict)]
