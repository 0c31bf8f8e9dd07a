"""Call records in: what mod_json_cdr posts, parsed, rated and stored once per call.

**What comes in.** One POST per channel (leg) when it is destroyed: the raw JSON document
(`Content-Type: application/json`, mod_json_cdr's default) or, with `encode=true`, a form whose
`cdr` field holds it (`encode=base64`: base64 of it). With `encode-values=true` (the default)
only the values inside `variables` are URL-encoded (`2026-11-25%2019%3A41%3A53`); we decode them,
and take unencoded values as they are. The stamps tell which: an encoded record has no `:` in
`start_stamp`. Caller and called number come from `callflow[0].caller_profile` (`callflow` is a
list in current FreeSWITCH, a single object in old ones); the figures from `variables`:
`duration`, `billsec`, `hangup_cause`, `hangup_cause_q850`, `start_epoch` / `answer_epoch`
(0: never answered) / `end_epoch`, `uuid`, `accountcode`, our dialplan's `c2_direction`,
`c2_call_type`, `c2_rate_group`, `c2_rate_code`, `c2_trunks`, `c2_trunk`, `c2_number` (the
number after the account's number translation: what is rated), the SIP user (`c2_device`,
`sip_user`, `user_name`, `sip_auth_username`, `sip_from_user`; none on inbound calls, whose
`sip_from_user` is the outside caller) and a recording (below).

**One record per call.** The call is its A leg, the channel our dialplan ran on: it carries
`accountcode` and our variables, and its billsec is what the caller is charged for. A leg that
FreeSWITCH originated for another (a bridge's B leg: its caller profile names an `originator`,
or the `originator` / `originating_leg_uuid` variables name another channel; a loopback pair's
`loopback_leg=B`) is not a second call: it is answered 200 and not stored. When only the B leg
of a call ever arrives, nothing is stored for that call: the B leg knows neither the account
nor the price, and its A leg is not lost but waiting, in mod_json_cdr's `err-log-dir` (it
writes every post it could not deliver there), for `c2bot import cdr DIR`. Storing the B leg
instead would count the call twice once the A leg comes. Set `log-b-leg=false` to save
FreeSWITCH the B legs' posts.

**Direction and call type** come from `c2_direction` / `c2_call_type` when our dialplan set
them (ASTPP's own `call_direction` / `calltype` are taken too). Otherwise they are derived as
ASTPP's dialplan does (`define_call_direction`): the called number is one of our DIDs ->
`inbound` (also when our DID plan ran: `c2_did`); else it is a SIP device of the platform (its
username, or an extension of the account whose device context `c2-<account>` the call came
from) -> `local`; else `outbound`. Call type: `FAX` when the channel ran `txfax`/`rxfax` or
carries spandsp's `fax_result_code`; else `DID` for inbound, `LOCAL` for local, `STANDARD` for
outbound. `FREE` is only ever set by the dialplan (ASTPP's FREE comes from its bundled-minute
packages, which c2bot has not): a FREE call is stored with debit 0.

**Recording.** `c2_record_file`, `record_path`, `record_file` or `recording_file`; else the path
of a `record_session` / `record` the channel ran (the application log, or `execute_on_answer`
in a bridge's dial string): FreeSWITCH writes `<uuid>.wav` under C2_RECORDINGS_DIR.

**Trunk** (outbound calls): `c2_trunk` when set (the outbound dialplan sets it before each
trunk's bridges: the trunk that answered, or the last one tried); else the gateways of the
`bridge` the A leg ran (`sofia/gateway/<name>/...`, in dial order), mapped to trunks by gateway
or failover gateway; with failover, the gateway tried after as many as `originate_causes` lists
failed. (The B leg's `sip_gateway_name` would say it too, but B legs are not kept.)

**Storing** (`CdrIntake`, group commit): the record, its rollup rows (storage.calls) and the
balances (the account pays its debit, its reseller its cost) in one transaction, committed
before the post is answered. On C2_DATABASE_URL's database the writer runs that transaction
straight on the driver (SQLite: a connection of its own, the whole batch in one worker-thread
hop; PostgreSQL: an asyncpg connection of `lookups`' pool), with the statements SQLAlchemy
would send, compiled once; elsewhere through a session (`store_rated`). A record we cannot
read (not JSON, no uuid, a figure that is not a number) raises `CdrError` with the reason;
the intake keeps it raw in `cdr_rejects` with that reason and the post is answered 200; a
database failure is raised (the endpoint answers 503).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import re
import sqlite3
import threading
import weakref
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, unquote

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Dialect, Table, bindparam, func, insert, literal, select, true, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from c2bot.config.settings import Settings
from c2bot.storage.calls import add_to_rollups, rollup_upserts
from c2bot.storage.db import SessionFactory
from c2bot.storage.models import (
    Account,
    CallRecord,
    CallType,
    CdrReject,
    Did,
    Direction,
    Fixed,
    SipDevice,
    Trunk,
    exact,
    utcnow,
)
from c2bot.switch import lookups
from c2bot.switch.dialplan import DEVICE_CONTEXT, did_candidates
from c2bot.switch.lookups import Query, Reader
from c2bot.switch.rating import country_of, international_digits, rate_call
from c2bot.switch.translation import TranslationError, parse_rules, translate
from c2bot.switch.wire import LazyDecoded

log = logging.getLogger(__name__)


# Longer than any call (a week, in seconds); larger figures are not a call's.
LONGEST = 7 * 86400


class CdrError(ValueError):
    """A record we cannot take; the message says why."""


@dataclass(frozen=True)
class Cdr:
    """One leg as mod_json_cdr reported it, decoded (nothing looked up yet)."""

    uuid: str
    b_leg: bool
    account: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    caller_id_number: str
    caller_id_name: str
    called_number: str
    number: str  # `c2_number`: the number after the account's translation, as rated and routed
    context: str
    sip_user: str
    duration: int
    billsec: int
    hangup_cause: str
    hangup_cause_q850: int | None
    direction: str | None  # None: derive (see the module's docstring)
    call_type: str | None
    did: str
    fax: bool
    rate_group: str
    rate_code: str
    trunk: str
    trunks: tuple[str, ...]
    gateways: tuple[str, ...]
    failed_legs: int
    recording: str


_DIRECTIONS = {d.value for d in Direction}
_CALL_TYPES = {t.value for t in CallType}
_GATEWAY = re.compile(r"sofia/gateway/([^/|,\s\]}]+)/")
_RECORD_IN_DATA = re.compile(r"record(?:_session)?\s+(\S+\.(?:wav|mp3|ogg|opus|flac))")
_RECORD_VARIABLES = ("c2_record_file", "record_path", "record_file", "recording_file")
_USER_VARIABLES = ("c2_device", "sip_user", "user_name", "sip_auth_username", "sip_from_user")
_RECORD_APPS = ("record_session", "record")


def decode_body(body: bytes, content_type: str = "") -> dict[str, Any]:
    """The JSON document of a post: raw JSON, or a form's `cdr` field (URL- or base64-encoded)."""
    text = body.strip()
    if not text:
        raise CdrError("empty body")
    if not text.startswith(b"{") and (
        b"cdr=" in text or "x-www-form-urlencoded" in content_type.lower()
    ):
        fields = dict(parse_qsl(text.decode("latin-1"), keep_blank_values=True))
        if "cdr" not in fields:
            raise CdrError("a form without a cdr field")
        raw = fields["cdr"].encode("latin-1").strip()
        if not raw.startswith((b"{", b"[")):
            try:
                raw = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise CdrError("the cdr field is neither JSON nor base64") from None
        text = raw
    try:
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError) as error:
        raise CdrError(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise CdrError("the JSON is not an object")
    return document


class _Variables(LazyDecoded):
    """A record's `variables`, each value decoded when first read (a record has about a
    hundred; we read a few dozen)."""

    __slots__ = ("_encoded",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        super().__init__(raw)
        stamp = raw.get("start_stamp") or raw.get("end_stamp") or ""
        self._encoded = not (isinstance(stamp, str) and ":" in stamp)

    def _decode_value(self, key: str, value: Any) -> str:
        if isinstance(value, str):
            return unquote(value) if self._encoded and "%" in value else value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise KeyError(key)

    def get(self, key: str, default: str = "") -> str:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            return default


def _variables(document: Mapping[str, Any]) -> _Variables:
    raw = document.get("variables")
    if not isinstance(raw, dict):
        raise CdrError("no variables object")
    return _Variables(raw)


def _profile(document: Mapping[str, Any]) -> dict[str, Any]:
    flow = document.get("callflow")
    first = flow[0] if isinstance(flow, list) and flow else flow
    if not isinstance(first, dict):
        return {}
    profile = first.get("caller_profile")
    return profile if isinstance(profile, dict) else {}


def _int(variables: Mapping[str, str], name: str, default: int | None = 0) -> int | None:
    value = variables.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise CdrError(f"{name} is not a whole number: {value[:40]!r}") from None


def _moment(variables: Mapping[str, str], name: str) -> datetime | None:
    epoch = _int(variables, name)
    if not epoch:
        return None
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        raise CdrError(f"{name} is not a time: {epoch}") from None


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _applications(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    log = document.get("app_log")
    apps = log.get("applications") if isinstance(log, dict) else None
    out: list[tuple[str, str]] = []
    for app in apps if isinstance(apps, list) else []:
        if isinstance(app, dict):
            out.append((str(app.get("app_name") or ""), str(app.get("app_data") or "")))
    return out


def _is_b_leg(profile: Mapping[str, Any], variables: Mapping[str, str], uuid: str) -> bool:
    if variables.get("loopback_leg") == "B":
        return True
    if isinstance(profile.get("originator"), dict):
        return True
    for name in ("originator", "originating_leg_uuid"):
        other = variables.get(name, "")
        if other and other != uuid:
            return True
    return False


def _recording(variables: Mapping[str, str], apps: list[tuple[str, str]]) -> str:
    for name in _RECORD_VARIABLES:
        if variables.get(name):
            return variables[name][:500]
    for app, data in apps:
        if app in _RECORD_APPS and data.strip():
            return data.split()[0][:500]
    for data in [d for _, d in apps] + [variables.get("execute_on_answer", "")]:
        found = _RECORD_IN_DATA.search(data)
        if found:
            return found[1][:500]
    return ""


def _bridge_data(variables: Mapping[str, str], apps: list[tuple[str, str]]) -> str:
    data = [d for app, d in apps if app == "bridge"]
    if variables.get("last_app") == "bridge" and variables.get("last_arg"):
        data.append(variables["last_arg"])
    return "|".join(data)


def _failed_legs(variables: Mapping[str, str]) -> int:
    causes = variables.get("originate_causes", "")
    if causes.startswith("ARRAY::"):
        causes = causes[len("ARRAY::") :]
    if not causes:
        return 0
    parts = [p.lstrip(":") for p in causes.split("|")]
    return sum(1 for p in parts if p and not p.endswith(";SUCCESS"))


def _choice(value: str, allowed: set[str], upper: bool = False) -> str | None:
    value = value.strip().upper() if upper else value.strip().lower()
    return value if value in allowed else None


def parse(document: Mapping[str, Any], query_uuid: str = "") -> Cdr:
    """One leg's record (see the module's docstring); `CdrError` when it cannot be read."""
    variables = _variables(document)
    profile = _profile(document)
    uuid = (variables.get("uuid") or _text(profile.get("uuid"), 64) or query_uuid).strip()
    if not uuid:
        raise CdrError("no uuid")
    if len(uuid) > 64:
        raise CdrError("the uuid is longer than 64 characters")
    started = _moment(variables, "start_epoch")
    if started is None:
        raise CdrError("no start_epoch")
    duration = _int(variables, "duration") or 0
    billsec = _int(variables, "billsec") or 0
    if not (0 <= billsec < LONGEST and 0 <= duration < LONGEST):
        raise CdrError(f"duration {duration} and billsec {billsec} do not fit a call")
    q850 = _int(variables, "hangup_cause_q850", None)
    apps = _applications(document)
    bridge = _bridge_data(variables, apps)
    account = (variables.get("accountcode") or variables.get("c2_account") or "").strip()
    names = ("last_app", "current_application")
    ran = {app for app, _ in apps} | {variables.get(n, "") for n in names}
    direction = _choice(
        variables.get("c2_direction") or variables.get("call_direction") or "", _DIRECTIONS
    )
    call_type = _choice(
        variables.get("c2_call_type") or variables.get("calltype") or "", _CALL_TYPES, True
    )
    context = _text(profile.get("context"), 100)
    sip_user = next((variables[n] for n in _USER_VARIABLES if variables.get(n)), "")
    return Cdr(
        uuid=uuid,
        b_leg=_is_b_leg(profile, variables, uuid),
        account=account[:32],
        started_at=started,
        answered_at=_moment(variables, "answer_epoch"),
        ended_at=_moment(variables, "end_epoch"),
        caller_id_number=_text(profile.get("caller_id_number"), 64),
        caller_id_name=_text(profile.get("caller_id_name"), 100),
        called_number=_text(profile.get("destination_number"), 64),
        number=variables.get("c2_number", "")[:64],
        context=context,
        sip_user=sip_user[:100],
        duration=duration,
        billsec=billsec,
        hangup_cause=variables.get("hangup_cause", "")[:64],
        hangup_cause_q850=q850 if q850 is not None and 0 <= q850 <= 255 else None,
        direction=direction,
        call_type=call_type,
        did=variables.get("c2_did", ""),
        fax=bool({"txfax", "rxfax"} & ran) or "fax_result_code" in variables,
        rate_group=variables.get("c2_rate_group", ""),
        rate_code=variables.get("c2_rate_code", "")[:32],
        trunk=variables.get("c2_trunk", ""),
        trunks=tuple(t.strip() for t in variables.get("c2_trunks", "").split(",") if t.strip()),
        gateways=tuple(dict.fromkeys(_GATEWAY.findall(bridge))),
        failed_legs=_failed_legs(variables),
        recording=_recording(variables, apps),
    )


def read_cdr(body: bytes, content_type: str = "", query_uuid: str = "") -> Cdr:
    """`parse(decode_body(...))`."""
    return parse(decode_body(body, content_type), query_uuid)


# --- rating a parsed record ------------------------------------------------------------------

_ACCOUNT = Query(
    select(Account.id, Account.reseller_id, Account.number_translation).where(
        Account.number == bindparam("number")
    )
)
_DID = Query(select(Did.id).where(Did.number.in_([bindparam("number0"), bindparam("number1")])))
_DEVICE = Query(select(SipDevice.id).where(SipDevice.username == bindparam("user")))
_EXTENSION = Query(
    select(SipDevice.id)
    .join(Account, Account.id == SipDevice.account_id)
    .where(Account.number == bindparam("account"), SipDevice.extension == bindparam("ext"))
)
_TRUNKS = Query(
    select(Trunk.id, Trunk.name, Trunk.gateway, Trunk.failover_gateways).order_by(Trunk.id)
)
# An outbound call's account (by number) and every trunk in one read: a row per trunk (the
# account's columns on each), or one row without trunk columns when there are no trunks.
_ONE = select(literal(1).label("one")).subquery("one")
_ACCOUNT_AND_TRUNKS = Query(
    select(
        Account.id.label("account_id"),
        Account.reseller_id,
        Account.number_translation,
        Trunk.id,
        Trunk.name,
        Trunk.gateway,
        Trunk.failover_gateways,
    )
    .select_from(_ONE)
    .outerjoin(Account, Account.number == bindparam("number"))
    .outerjoin(Trunk, true())
    .order_by(Trunk.id)
)


async def derive_direction(read: Reader, cdr: Cdr, region: str) -> str:
    """Our variable, else ASTPP's rule: one of our DIDs, a device of ours, else outbound."""
    if cdr.direction:
        return cdr.direction
    if cdr.did:
        return Direction.INBOUND.value
    numbers = did_candidates(cdr.called_number, region) if cdr.called_number else []
    if numbers and await read(_DID, {"number0": numbers[0], "number1": numbers[-1]}):
        return Direction.INBOUND.value
    called = cdr.called_number
    if called and await read(_DEVICE, {"user": called}):
        return Direction.LOCAL.value
    if called and cdr.context.startswith(DEVICE_CONTEXT):
        owner = cdr.context[len(DEVICE_CONTEXT) :]
        if await read(_EXTENSION, {"account": owner, "ext": called}):
            return Direction.LOCAL.value
    return Direction.OUTBOUND.value


def derive_call_type(cdr: Cdr, direction: str) -> str:
    if cdr.call_type:
        return cdr.call_type
    if cdr.fax:
        return CallType.FAX.value
    if direction == Direction.INBOUND:
        return CallType.DID.value
    if direction == Direction.LOCAL:
        return CallType.LOCAL.value
    return CallType.STANDARD.value


async def trunk_of(read: Reader, cdr: Cdr) -> int | None:
    """The trunk an outbound call left by (see the module's docstring), None when unknown."""
    if not cdr.trunk and not cdr.gateways:
        return None
    return _pick_trunk(await read(_TRUNKS, {}), cdr)


def _pick_trunk(rows: Sequence[Any], cdr: Cdr) -> int | None:
    """`trunk_of` on the trunks' rows (id, name, gateway, failover_gateways)."""
    if cdr.trunk:
        named = [row.id for row in rows if row.name == cdr.trunk]
        if named:
            return int(named[0])
    by_gateway: dict[str, int] = {}
    for row in rows:
        failovers = [g.strip() for g in (row.failover_gateways or "").split(",")]
        for gateway in [row.gateway, *failovers]:
            if gateway:
                by_gateway.setdefault(gateway, row.id)
    tried = cdr.gateways
    if not tried:
        return None
    # Failover tries the gateways in order: the one after the failed ones answered; a call
    # nobody answered ended on the last one tried.
    failed = cdr.failed_legs
    index = failed if cdr.billsec > 0 else max(failed - 1, 0)
    return by_gateway.get(tried[min(index, len(tried) - 1)])


async def charge_call(
    read: Reader,
    *,
    account_id: int | None,
    reseller_id: int | None,
    direction: str,
    call_type: str,
    number: str,
    billsec: int,
    trunk_id: int | None,
) -> dict[str, Any]:
    """Every level's figures of one call, as CallRecord columns. Only outbound calls are
    charged per minute (rating.rate_call); inbound (DID) and local calls cost nothing per
    minute; a FREE call is not debited (its cost to the seller stays)."""
    zero = exact(0)
    figures: dict[str, Any] = {
        "code": "",
        "destination": "",
        "country": "",
        "rate_group_id": None,
        "trunk_id": trunk_id,
        "debit": zero,
        "cost": zero,
        "carrier_debit": zero,
        "carrier_cost": zero,
        "rating_note": "",
        "reseller_id": reseller_id,
    }
    if account_id is None or direction != Direction.OUTBOUND:
        figures["country"] = country_of(international_digits(number))
        why = "no account" if account_id is None else f"{direction} call"
        figures["rating_note"] = f"{why}: not charged" + (" per minute" if account_id else "")
        return figures
    charges = await rate_call(
        read, account_id=account_id, number=number, billsec=billsec, trunk_id=trunk_id
    )
    figures.update(
        code=charges.code,
        destination=charges.destination,
        country=charges.country,
        rate_group_id=charges.rate_group_id,
        debit=charges.debit,
        cost=charges.cost,
        carrier_debit=charges.carrier_debit,
        carrier_cost=charges.carrier_cost,
        rating_note=charges.note,
        reseller_id=charges.reseller_id,
    )
    if call_type == CallType.FREE:
        figures["debit"] = zero
        if charges.reseller_id is None:
            figures["carrier_debit"] = zero
        figures["rating_note"] = "; ".join(filter(None, ["FREE call: not debited", charges.note]))
    figures["rating_note"] = figures["rating_note"][:200]
    return figures


def rated_number(cdr_number: str, translation: str) -> str:
    """The number as the dialplan sent it on: the account's number translation applied."""
    if not translation:
        return cdr_number
    try:
        return translate(parse_rules(translation), cdr_number)
    except TranslationError:
        return cdr_number


async def rate_record(read: Reader, cdr: Cdr, settings: Settings) -> dict[str, Any]:
    """The call_records row of an A leg: looked up, derived and rated."""
    direction = await derive_direction(read, cdr, settings.fax_country)
    call_type = derive_call_type(cdr, direction)
    outbound = direction == Direction.OUTBOUND
    account: Any = None
    trunk_id = None
    if outbound and (cdr.trunk or cdr.gateways):  # the account and the trunks in one read
        rows = await read(_ACCOUNT_AND_TRUNKS, {"number": cdr.account})
        first = rows[0]
        if cdr.account and first.account_id is not None:
            account = _ACCOUNT.row(first.account_id, first.reseller_id, first.number_translation)
        trunk_id = _pick_trunk([row for row in rows if row.id is not None], cdr)
    elif cdr.account:
        found = await read(_ACCOUNT, {"number": cdr.account})
        account = found[0] if found else None
    number = cdr.number or cdr.called_number
    if account is not None and outbound and not cdr.number:
        number = rated_number(number, account.number_translation)
    figures = await charge_call(
        read,
        account_id=account.id if account else None,
        reseller_id=account.reseller_id if account else None,
        direction=direction,
        call_type=call_type,
        number=number,
        billsec=cdr.billsec,
        trunk_id=trunk_id,
    )
    if account is None and cdr.account:
        figures["rating_note"] = f"no account {cdr.account}: not charged"
    return {
        "uuid": cdr.uuid,
        "account_id": account.id if account else None,
        "started_at": cdr.started_at,
        "answered_at": cdr.answered_at,
        "ended_at": cdr.ended_at,
        "caller_id_number": cdr.caller_id_number,
        "caller_id_name": cdr.caller_id_name,
        "called_number": cdr.called_number,
        "sip_user": "" if direction == Direction.INBOUND else cdr.sip_user,
        "direction": direction,
        "call_type": call_type,
        "duration": cdr.duration,
        "billsec": cdr.billsec,
        "hangup_cause": cdr.hangup_cause,
        "hangup_cause_q850": cdr.hangup_cause_q850,
        "recording": cdr.recording,
        "rated_at": utcnow(),
        **figures,
    }


# --- storing: group commit --------------------------------------------------------------------

STORED = "stored"
DUPLICATE = "duplicate"
B_LEG = "b_leg"
REJECTED = "rejected"
BATCH = 500

MOVE_BALANCE = (
    update(Account.__table__)  # type: ignore[arg-type]
    .where(Account.__table__.c.id == bindparam("b_account"))
    .values(balance=Account.__table__.c.balance - bindparam("b_amount", type_=Fixed()))
)


def _future() -> asyncio.Future[str]:
    return asyncio.get_running_loop().create_future()


@dataclass
class _Item:
    record: dict[str, Any] | None = None
    reject: dict[str, Any] | None = None
    done: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


_RECORDS: Table = CallRecord.__table__  # type: ignore[assignment]
_INSERT = _RECORDS.insert()


async def store_rated(session: AsyncSession, records: Sequence[dict[str, Any]]) -> set[str]:
    """Insert rated rows (a uuid already stored is skipped), add the new ones to the rollups
    and move balances: the account pays its debit, its reseller its cost. Returns the uuids
    stored now. The caller commits.

    Race-safe: a uuid inserted elsewhere between our check and our insert (another process,
    another FreeSWITCH) violates the unique constraint and fails the transaction; the intake
    then tries each record alone, and finds it stored."""
    first: dict[str, dict[str, Any]] = {}
    for row in records:
        first.setdefault(row["uuid"], row)
    if not first:
        return set()
    known = await session.scalars(select(_RECORDS.c.uuid).where(_RECORDS.c.uuid.in_(list(first))))
    for uuid in known:
        first.pop(uuid, None)
    if not first:
        return set()
    rows = list(first.values())
    await session.execute(_INSERT, rows)
    # The rollup reads figures by attribute; plain objects spare an ORM instance per call.
    await add_to_rollups(session, cast(list[CallRecord], [_Row(row) for row in rows]))
    moves = _moves(rows)
    if moves:
        await session.execute(MOVE_BALANCE, moves)
    return set(first)


def _moves(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The balance moves of stored rows: the account pays its debit, its reseller its cost
    (one update per account, in id order)."""
    owed: dict[int, Decimal] = defaultdict(Decimal)
    for row in rows:
        if row["account_id"] is not None and row["debit"]:
            owed[row["account_id"]] += row["debit"]
        if row["reseller_id"] is not None and row["cost"]:
            owed[row["reseller_id"]] += row["cost"]
    return [{"b_account": k, "b_amount": v} for k, v in sorted(owed.items()) if v]


class _Dml:
    """A Core statement compiled once for a dialect, run straight on the DB-API driver: its
    arguments are made as SQLAlchemy makes them (each column's bind processing: `Fixed` to
    millionths, UTC times to SQLite's text), so the rows are the same as through a session."""

    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = str(compiled)
        processors = compiled._bind_processors
        names = tuple(compiled.positiontup or ())
        missing = [name for name in names if name not in keys]
        if missing:  # a default SQLAlchemy would fill in: the caller must give every value
            raise ValueError(f"no value for {', '.join(missing)}")
        self._plan = [(name, processors.get(name)) for name in names]

    def args(self, row: Mapping[str, Any]) -> list[Any]:
        return [row[n] if p is None else p(row[n]) for n, p in self._plan]


_DML: dict[tuple[int, str, tuple[str, ...]], _Dml] = {}


def _dml(statement: Any, dialect: Dialect, keys: Sequence[str]) -> _Dml:
    key = (id(statement), dialect.name, tuple(keys))
    found = _DML.get(key)
    if found is None:
        found = _DML[key] = _Dml(statement, dialect, keys)
    return found


def _run(
    db: sqlite3.Connection, dialect: Dialect, statement: Any, rows: list[dict[str, Any]]
) -> None:
    dml = _dml(statement, dialect, list(rows[0]))
    db.executemany(dml.sql, [dml.args(row) for row in rows])


_REJECTS: Table = CdrReject.__table__  # type: ignore[assignment]
_REJECT_INSERT = _REJECTS.insert()


def _write_sqlite(
    db: sqlite3.Connection,
    lock: threading.Lock,
    dialect: Dialect,
    rejects: list[dict[str, Any]],
    records: list[dict[str, Any]],
) -> set[str]:
    """`store_rated` and the rejects in one transaction on our own SQLite connection, in a
    worker thread: one hop for the whole batch instead of one per statement."""
    with lock:  # one batch at a time, even if a cancelled one still runs
        db.execute("BEGIN IMMEDIATE")
        try:
            if rejects:
                now = utcnow()
                _run(db, dialect, _REJECT_INSERT, [{"received_at": now, **r} for r in rejects])
            stored = _store_sqlite(db, dialect, records)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return stored


def _store_sqlite(
    db: sqlite3.Connection, dialect: Dialect, records: Sequence[dict[str, Any]]
) -> set[str]:
    first: dict[str, dict[str, Any]] = {}
    for row in records:
        first.setdefault(row["uuid"], row)
    if not first:
        return set()
    marks = ",".join("?" * len(first))
    known = db.execute(
        f"SELECT uuid FROM {_RECORDS.name} WHERE uuid IN ({marks})",
        list(first),
    ).fetchall()
    for (uuid,) in known:
        first.pop(uuid, None)
    if not first:
        return set()
    rows = list(first.values())
    _run(db, dialect, _INSERT, rows)
    objects = cast(list[CallRecord], [_Row(row) for row in rows])
    for upsert, sums in rollup_upserts(objects, "sqlite"):
        _run(db, dialect, upsert, sums)
    moves = _moves(rows)
    if moves:
        _run(db, dialect, MOVE_BALANCE, moves)
    return set(first)


async def _write_postgresql(
    driver: Any,
    dialect: Dialect,
    rejects: list[dict[str, Any]],
    records: list[dict[str, Any]],
) -> set[str]:
    """`store_rated` and the rejects in one transaction straight on an asyncpg connection
    (one round trip a statement, none for SQLAlchemy's ping, BEGIN or result handling)."""
    async with driver.transaction():
        if rejects:
            now = utcnow()
            await _run_asyncpg(
                driver, dialect, _REJECT_INSERT, [{"received_at": now, **r} for r in rejects]
            )
        first: dict[str, dict[str, Any]] = {}
        for row in records:
            first.setdefault(row["uuid"], row)
        if not first:
            return set()
        known = await driver.fetch(
            f"SELECT uuid FROM {_RECORDS.name} WHERE uuid = ANY($1::varchar[])", list(first)
        )
        for found in known:
            first.pop(found[0], None)
        if not first:
            return set()
        rows = list(first.values())
        await _run_asyncpg(driver, dialect, _INSERT, rows)
        objects = cast(list[CallRecord], [_Row(row) for row in rows])
        for upsert, sums in rollup_upserts(objects, "postgresql"):
            await _run_asyncpg(driver, dialect, upsert, sums)
        moves = _moves(rows)
        if moves:
            await _run_asyncpg(driver, dialect, MOVE_BALANCE, moves)
    return set(first)


async def _run_asyncpg(
    driver: Any, dialect: Dialect, statement: Any, rows: list[dict[str, Any]]
) -> None:
    dml = _dml(statement, dialect, list(rows[0]))
    await driver.executemany(dml.sql, [dml.args(row) for row in rows])


def _direct(sessions: SessionFactory, settings: Settings) -> AsyncEngine | None:
    """The engine when it is C2_DATABASE_URL's PostgreSQL or SQLite file (written to straight
    on the driver: see `CdrIntake._commit`)."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine) or bind.dialect.name not in ("sqlite", "postgresql"):
        return None
    if bind.dialect.name == "sqlite" and bind.url.database in (None, "", ":memory:"):
        return None
    return bind if lookups.same_database(bind, settings) else None


class _Row:
    """A row's values as attributes."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class CdrIntake:
    """Takes posts (or files) and stores them with group commit.

    Each post is parsed and rated on its own (reads only, `lookups.reader`), then queued; one
    writer at a time commits everything queued so far (up to BATCH) in one transaction: the
    records, their rollups, the balances and any rejects. A post is answered once its batch
    committed. When a batch fails, its posts are tried one by one, so one bad row fails only
    its own post; a database that is down fails them all (the endpoint answers 503 and
    FreeSWITCH keeps the record). No task outlives the work: the writer ends when the queue is
    empty and the next post starts another.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        settings: Settings,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self._queue: list[_Item] = []
        self._writer: asyncio.Task[None] | None = None
        self._db: sqlite3.Connection | None = None  # see _sqlite
        self._db_lock = threading.Lock()
        self.outcomes = Counter(
            "c2bot_cdr_records",
            "Call records posted by mod_json_cdr, by outcome (stored, duplicate, b_leg, "
            "rejected, error)",
            ["outcome"],
            registry=registry,
        )

    async def take(
        self, body: bytes, content_type: str = "", query_uuid: str = "", source: str = ""
    ) -> str:
        """Store one posted record; the outcome. Raises when the database fails."""
        try:
            outcome = await self._take(body, content_type, query_uuid, source)
        except Exception:
            self.outcomes.labels("error").inc()
            raise
        self.outcomes.labels(outcome).inc()
        return outcome

    async def _take(self, body: bytes, content_type: str, query_uuid: str, source: str) -> str:
        try:
            cdr = read_cdr(body, content_type, query_uuid)
        except CdrError as error:
            log.warning("call record rejected (%s): %s", source, error)
            reject = {"source": source[:300], "reason": str(error), "body": body}
            return await self._write(_Item(reject=reject))
        if cdr.b_leg:
            return B_LEG
        async with lookups.reader(self.sessions, self.settings) as read:
            record = await rate_record(read, cdr, self.settings)
        return await self._write(_Item(record=record))

    async def _write(self, item: _Item) -> str:
        self._queue.append(item)
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name="cdr writer")
        return await item.done

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
                try:
                    outcomes = await self._commit(batch)
                except Exception as error:
                    if len(batch) == 1:
                        _settle(batch[0], error=error)
                        continue
                    log.warning("a batch of %d call records failed; one by one", len(batch))
                    for item in batch:
                        try:
                            (outcome,) = await self._commit([item])
                        except Exception as single:
                            log.exception("call record could not be stored")
                            _settle(item, error=single)
                        else:
                            _settle(item, outcome)
                    continue
                for item, outcome in zip(batch, outcomes, strict=True):
                    _settle(item, outcome)
        finally:
            self._writer = None

    def _sqlite(self, engine: AsyncEngine) -> sqlite3.Connection:
        """A SQLite connection of our own that the writer commits its batches on (one at a
        time, in a worker thread), set up as SQLAlchemy's (foreign keys, busy timeout)."""
        if self._db is None:
            path = os.path.abspath(engine.url.database or "")
            db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            weakref.finalize(self, db.close)
            self._db = db
        return self._db

    async def _commit(self, batch: list[_Item]) -> list[str]:
        records = [item.record for item in batch if item.record is not None]
        rejects = [item.reject for item in batch if item.reject is not None]
        engine = _direct(self.sessions, self.settings)
        if engine is not None and engine.dialect.name == "sqlite":
            db = self._sqlite(engine)
            stored = await asyncio.to_thread(
                _write_sqlite, db, self._db_lock, engine.dialect, rejects, records
            )
        elif engine is not None:
            pool = await lookups.lookup_pool(engine, self.settings)
            async with pool.acquire() as driver:
                stored = await _write_postgresql(driver, engine.dialect, rejects, records)
        else:
            async with self.sessions.begin() as session:
                if rejects:
                    await session.execute(insert(CdrReject), rejects)
                stored = await store_rated(session, records)
        outcomes: list[str] = []
        claimed: set[str] = set()
        for item in batch:
            if item.record is None:
                outcomes.append(REJECTED)
                continue
            uuid = item.record["uuid"]
            fresh = uuid in stored and uuid not in claimed
            claimed.add(uuid)
            outcomes.append(STORED if fresh else DUPLICATE)
        return outcomes


def _settle(item: _Item, outcome: str = "", error: BaseException | None = None) -> None:
    if item.done.done():
        return
    if error is not None:
        item.done.set_exception(error)
    else:
        item.done.set_result(outcome)


async def health(sessions: SessionFactory) -> dict[str, object]:
    """For /healthz: how many records were rejected, and the latest one's time and reason; how
    many calls were stored without an account we know (charged to nobody, so in no summary:
    usually a call the switch routed by its own dialplan, without our `accountcode`)."""
    unowned = _RECORDS.c.account_id.is_(None)
    try:
        async with sessions() as session:
            count = await session.scalar(select(func.count()).select_from(CdrReject)) or 0
            latest = (
                await session.execute(
                    select(CdrReject.received_at, CdrReject.reason, CdrReject.source)
                    .order_by(CdrReject.id.desc())
                    .limit(1)
                )
            ).first()
            uncharged = await session.scalar(select(func.count()).where(unowned)) or 0
            last_uncharged = (
                await session.execute(
                    select(_RECORDS.c.uuid, _RECORDS.c.started_at, _RECORDS.c.rating_note)
                    .where(unowned)
                    .order_by(_RECORDS.c.started_at.desc(), _RECORDS.c.id.desc())
                    .limit(1)
                )
            ).first()
    except Exception as error:  # the database part of /healthz says what is wrong
        return {"ok": False, "rejected": f"unknown: {type(error).__name__}"}
    report: dict[str, object] = {"ok": True, "rejected": count}
    if latest is not None:
        report["latest_rejected_at"] = latest.received_at.isoformat()
        report["latest_reason"] = latest.reason
        report["latest_source"] = latest.source
    report["without_account"] = uncharged
    if last_uncharged is not None:
        report["latest_without_account"] = {
            "uuid": last_uncharged.uuid,
            "started_at": last_uncharged.started_at.isoformat(),
            "note": last_uncharged.rating_note,
        }
    return report


# --- files mod_json_cdr could not post --------------------------------------------------------


@dataclass
class ImportSummary:
    stored: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    b_leg: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # file name, reason


async def import_dir(intake: CdrIntake, folder: Path) -> ImportSummary:
    """Take every `*.json` file of mod_json_cdr's `log-dir` (`<uuid>.cdr.json`,
    `a_<uuid>.cdr.json`, `b_<uuid>.cdr.json`), as if posted. Idempotent (a uuid is stored once);
    files are left where they are. A database failure raises (nothing of its batch stored)."""
    summary = ImportSummary()
    files = await asyncio.to_thread(_cdr_files, folder)
    for start in range(0, len(files), BATCH):
        chunk = files[start : start + BATCH]
        bodies = await asyncio.to_thread(_read_all, chunk)
        outcomes = await asyncio.gather(
            *(
                intake.take(body, "", _uuid_of(path.name), f"file {path}")
                for path, body in zip(chunk, bodies, strict=True)
            )
        )
        for path, body, outcome in zip(chunk, bodies, outcomes, strict=True):
            if outcome == REJECTED:
                summary.rejected.append((path.name, _reason(body, path.name)))
            else:
                getattr(summary, outcome).append(path.name)
    return summary


def _cdr_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(".json"))


def _read_all(paths: list[Path]) -> list[bytes]:
    return [path.read_bytes() for path in paths]


def _uuid_of(name: str) -> str:
    stem = name.removesuffix(".json").removesuffix(".cdr")
    return stem[2:] if stem[:2] in ("a_", "b_") else stem


def _reason(body: bytes, name: str) -> str:
    try:
        read_cdr(body, "", _uuid_of(name))
    except CdrError as error:
        return str(error)
    return "?"
