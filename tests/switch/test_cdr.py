"""Call records: mod_json_cdr's posts parsed as recorded (both encodings, both legs), and
stored through the intake: rated at every level, balances and rollups moved in the same
transaction, a uuid stored once, directions and call types derived as ASTPP does. On SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from c2bot.bot.services import Services
from c2bot.storage.models import (
    Account,
    CallRecord,
    CallRollup,
    CdrReject,
    Did,
    SipDevice,
)
from c2bot.switch.cdr import (
    B_LEG,
    DUPLICATE,
    REJECTED,
    STORED,
    CdrError,
    CdrIntake,
    decode_body,
    read_cdr,
)
from tests.conftest import World
from tests.support.ratingworld import RatingWorld, add_rating_world
from tests.support.xmlcurl import Post, recorded_posts

POSTS = {post.label: post for post in recorded_posts("json_cdr_post.txt")}
A_LEGS = ("answered-2", "busy-2", "answered-tone-2")
B_LEGS = ("answered-1", "busy-1", "answered-tone-1")
# 2026-11-25 19:45:12 UTC, the recorded tone call
START = 1795635912


def recorded(label: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(POSTS[label].body)
    return document


def encode_values(variables: dict[str, str]) -> dict[str, str]:
    """As mod_json_cdr's encode-values=true (curl_easy_escape: all but unreserved)."""
    return {k: quote(v, safe="-._~") for k, v in variables.items()}


def decoded_variables(document: dict[str, Any]) -> dict[str, str]:
    from urllib.parse import unquote

    return {k: unquote(v) for k, v in document["variables"].items()}


def call_document(
    uuid: str,
    *,
    account: str = "1001",
    number: str = "31201234567",
    billsec: int = 60,
    gateways: tuple[str, ...] = ("gw-alpha",),
    extra: dict[str, str] | None = None,
    encoded: bool = True,
    start: int = START,
) -> dict[str, Any]:
    """The recorded tone call's A leg made an outbound call of `account` to `number` that went
    out by a bridge to `gateways` (failover), as our dialplan sets it up."""
    document = recorded("answered-tone-2")
    variables = decoded_variables(document)
    dial = "|".join(f"sofia/gateway/{gw}/{number}" for gw in gateways)
    answered = start if billsec else 0
    variables.update(
        {
            "uuid": uuid,
            "call_uuid": uuid,
            "accountcode": account,
            "c2_account": account,
            "c2_direction": "outbound",
            "c2_call_type": "STANDARD",
            "c2_trunks": "alpha,beta",
            "sip_from_user": f"{account}-100",
            "user_name": f"{account}-100",
            "last_app": "bridge",
            "last_arg": "{hangup_after_bridge=true}" + dial,
            "start_epoch": str(start),
            "answer_epoch": str(answered),
            "end_epoch": str(start + billsec + 5),
            "start_stamp": "2026-11-25 19:45:12",
            "duration": str(billsec + 5),
            "billsec": str(billsec),
        }
    )
    if not billsec:
        variables.update(hangup_cause="NO_ANSWER", hangup_cause_q850="19")
    variables.update(extra or {})
    document["variables"] = encode_values(variables) if encoded else variables
    profile = document["callflow"][0]["caller_profile"]
    profile.update(
        uuid=uuid,
        destination_number=number,
        caller_id_number="+31201234500",
        caller_id_name="Acme",
        context=f"c2-{account}",
    )
    document["app_log"] = {
        "applications": [{"app_name": "bridge", "app_data": dial, "app_stamp": "0"}]
    }
    return document


def as_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def as_form(document: dict[str, Any]) -> bytes:
    """`encode=true`: the document URL-encoded in a form field `cdr`."""
    return b"cdr=" + quote(json.dumps(document), safe="").encode()


# --- parsing ---------------------------------------------------------------------------------


def test_recorded_legs_parsed() -> None:
    """Each recorded post: its B legs known as such, the A legs' figures decoded."""
    legs = {label: read_cdr(post.body, "application/json") for label, post in POSTS.items()}
    assert {label for label, leg in legs.items() if leg.b_leg} == set(B_LEGS)
    fax = legs["answered-2"]
    assert fax.uuid == "fa50fa50-0000-4000-8000-00000000f001"
    assert (fax.duration, fax.billsec, fax.hangup_cause, fax.hangup_cause_q850) == (
        37,
        37,
        "NORMAL_CLEARING",
        16,
    )
    assert fax.started_at == datetime(2026, 11, 25, 19, 41, 53, tzinfo=UTC)
    assert fax.answered_at == fax.started_at
    assert fax.ended_at == datetime(2026, 11, 25, 19, 42, 30, tzinfo=UTC)
    assert (fax.caller_id_number, fax.caller_id_name, fax.called_number) == (
        "default",
        "Outbound Call",
        "9178",
    )
    assert fax.fax and fax.account == "" and fax.direction is None
    busy = legs["busy-2"]
    assert busy.answered_at is None and busy.billsec == 0
    assert (busy.hangup_cause, busy.hangup_cause_q850) == ("USER_BUSY", 17)
    assert not busy.fax and busy.called_number == "busy"


def test_encodings_agree() -> None:
    """Raw JSON with encoded values, unencoded values, a `cdr=` form, base64: one record."""
    document = call_document("u-1")
    plain = call_document("u-1", encoded=False)
    forms = [
        (as_json(document), "application/json"),
        (as_json(plain), "application/json"),
        (as_form(document), "application/x-www-form-urlencoded"),
        (b"cdr=" + quote(base64.b64encode(as_json(document))).encode(), ""),
    ]
    parsed = [read_cdr(body, kind) for body, kind in forms]
    assert all(leg == parsed[0] for leg in parsed)
    leg = parsed[0]
    assert leg.account == "1001" and leg.direction == "outbound"
    assert leg.call_type == "STANDARD" and leg.sip_user == "1001-100"
    assert leg.gateways == ("gw-alpha",) and leg.trunks == ("alpha", "beta")
    assert leg.called_number == "31201234567" and not leg.b_leg


def test_percent_in_unencoded_value_kept_and_callflow_as_object() -> None:
    """An unencoded record keeps a literal `%`; an old FreeSWITCH's single callflow object."""
    document = call_document("u-2", encoded=False, extra={"c2_note": "100%25 sure"})
    document["callflow"] = document["callflow"][0]
    leg = read_cdr(as_json(document))
    assert leg.called_number == "31201234567"
    encoded = decode_body(as_json(call_document("u-2", extra={"c2_note": "100% sure"})))
    assert encoded["variables"]["c2_note"] == "100%25%20sure"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"callflow": []}', "no variables"),
        (b"cdr=%5B%5D", "not an object"),
        (b"uuid=1&x=2", "without a cdr field"),
        (b'{"variables": {"start_epoch": "1795635912"}}', "no uuid"),
        (b'{"variables": {"uuid": "x"}}', "no start_epoch"),
        (b'{"variables": {"uuid": "x", "start_epoch": "soon"}}', "start_epoch is not"),
        (
            b'{"variables": {"uuid": "x", "start_epoch": "1795635912", "billsec": "1.5"}}',
            "billsec is not a whole number",
        ),
        (
            b'{"variables": {"uuid": "x", "start_epoch": "1795635912", "billsec": "-1"}}',
            "do not fit a call",
        ),
        (
            b'{"variables": {"uuid": "x", "start_epoch": "1795635912", "duration": "9999999999"}}',
            "do not fit a call",
        ),
    ],
)
def test_unreadable_records(body: bytes, reason: str) -> None:
    with pytest.raises(CdrError, match=reason):
        read_cdr(body, "application/x-www-form-urlencoded" if b"=" in body[:5] else "")


def test_recording_and_odd_q850() -> None:
    """The recording: our variable, else a record_session the channel ran (also one a bridge
    set up with execute_on_answer); a q850 that is no cause is left out."""
    path = "/var/c2/recordings/1001/calls/u-r.wav"
    ours = call_document("u-r", extra={"c2_record_file": path, "hangup_cause_q850": "70000"})
    leg = read_cdr(as_json(ours))
    assert leg.recording == path and leg.hangup_cause_q850 is None
    bridged = call_document("u-r")
    bridged["app_log"]["applications"][0]["app_data"] = (
        f"[execute_on_answer=record_session {path}]user/1001-101@1001.sip.localhost"
    )
    assert read_cdr(as_json(bridged)).recording == path
    ran = call_document("u-r")
    ran["app_log"]["applications"].insert(
        0, {"app_name": "record_session", "app_data": path, "app_stamp": "0"}
    )
    assert read_cdr(as_json(ran)).recording == path
    assert read_cdr(as_json(call_document("u-r"))).recording == ""


def test_b_leg_by_originator() -> None:
    """A bridge's B leg: its caller profile names an originator, or `originator` is set."""
    document = call_document("u-b")
    document["callflow"][0]["caller_profile"]["originator"] = {"originator_caller_profiles": []}
    assert read_cdr(as_json(document)).b_leg
    other = call_document("u-b2", extra={"originator": "u-a"})
    assert read_cdr(as_json(other)).b_leg
    assert not read_cdr(as_json(call_document("u-a"))).b_leg


# --- storing ---------------------------------------------------------------------------------


@pytest.fixture
async def rates(services: Services, world: World) -> RatingWorld:
    async with services.sessions.begin() as session:
        return await add_rating_world(session, direct=True)


async def balances(services: Services) -> dict[str, Decimal]:
    async with services.sessions() as session:
        rows = (await session.execute(select(Account.number, Account.balance))).all()
    return {number: balance for number, balance in rows}


async def records(services: Services) -> dict[str, CallRecord]:
    async with services.sessions() as session:
        found = (await session.scalars(select(CallRecord))).all()
    return {record.uuid: record for record in found}


async def test_outbound_call_rated_stored_once(services: Services, rates: RatingWorld) -> None:
    """1001 (R100's customer) 60 s to 31201234567 by alpha: debit 0.02 at r100-retail, cost
    0.01 (R100's buy price), carrier cost 0.005; 1001 and R100 pay; the rollup counts it;
    the same uuid again (also at the same moment) changes nothing."""
    intake = CdrIntake(services.sessions, services.settings)
    body = as_json(call_document("call-1"))
    outcomes = await asyncio.gather(*(intake.take(body, "application/json") for _ in range(3)))
    assert sorted(outcomes) == [DUPLICATE, DUPLICATE, STORED]
    assert await intake.take(body) == DUPLICATE
    record = (await records(services))["call-1"]
    assert record.account_id == rates.accounts["1001"]
    assert record.reseller_id == rates.accounts["R100"]
    assert record.trunk_id == rates.trunks["alpha"]
    assert (record.debit, record.cost, record.carrier_debit, record.carrier_cost) == (
        Decimal("0.02"),
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("0.005"),
    )
    assert (record.code, record.country, record.rating_note) == ("31", "NL", "")
    assert (record.direction, record.call_type, record.sip_user) == (
        "outbound",
        "STANDARD",
        "1001-100",
    )
    money = await balances(services)
    assert money["1001"] == Decimal("-0.02") and money["R100"] == Decimal("-0.01")
    assert money["1002"] == 0 and money["R200"] == 0
    async with services.sessions() as session:
        rollups = (await session.scalars(select(CallRollup))).all()
    assert len(rollups) == 1
    rollup = rollups[0]
    assert (rollup.attempted, rollup.completed, rollup.duration, rollup.longest) == (1, 1, 60, 60)
    assert (rollup.debit, rollup.cost, rollup.carrier_cost) == (
        Decimal("0.02"),
        Decimal("0.01"),
        Decimal("0.005"),
    )


async def test_failover_trunk_and_direct_account(services: Services, rates: RatingWorld) -> None:
    """A direct account (no reseller) pays its debit only; with failover, the gateway after
    the failed legs took the call; an unanswered call costs nothing and counts as attempted."""
    intake = CdrIntake(services.sessions, services.settings)
    failed = {"originate_causes": "ARRAY::x1;NO_ROUTE_DESTINATION"}
    answered = call_document(
        "call-2", account="3001", gateways=("gw-beta", "gw-alpha2"), extra=failed
    )
    unanswered = call_document("call-3", account="3001", billsec=0, gateways=("gw-beta",))
    assert await intake.take(as_json(answered)) == STORED
    assert await intake.take(as_json(unanswered)) == STORED
    found = await records(services)
    assert found["call-2"].trunk_id == rates.trunks["alpha"]
    assert found["call-2"].reseller_id is None
    # 3001 buys at wholesale: 31 at 0.010 (60/60); alpha costs 0.005 for 60 s
    assert (found["call-2"].debit, found["call-2"].cost, found["call-2"].carrier_debit) == (
        Decimal("0.01"),
        Decimal("0.005"),
        Decimal("0.01"),
    )
    assert found["call-3"].trunk_id == rates.trunks["beta"] and found["call-3"].debit == 0
    assert found["call-3"].hangup_cause == "NO_ANSWER"
    money = await balances(services)
    assert money["3001"] == Decimal("-0.01") and money["R100"] == 0


async def test_dialplan_number_and_trunk_variables(services: Services, rates: RatingWorld) -> None:
    """`c2_number` (the translated number) is what is rated; `c2_trunk` names the trunk even
    when the bridge string shows another's gateway first."""
    intake = CdrIntake(services.sessions, services.settings)
    document = call_document(
        "t-1",
        number="0612345678",
        gateways=("gw-alpha", "gw-beta"),
        extra={"c2_number": "31612345678", "c2_trunk": "beta"},
    )
    assert await intake.take(as_json(document)) == STORED
    record = (await records(services))["t-1"]
    assert record.called_number == "0612345678"
    assert record.code == "316" and record.trunk_id == rates.trunks["beta"]
    # 1001 at r100-retail 316: 0.010 + 0.090 x (60 - 5 grace = 55 -> 30 + 30) / 60 = 0.1
    # beta's 316 costs 0.035 a minute, per second: 60 s = 0.035
    assert (record.debit, record.carrier_cost) == (Decimal("0.1"), Decimal("0.035"))


async def test_directions_and_types_derived(services: Services, rates: RatingWorld) -> None:
    """Without our variables: a DID of ours -> inbound DID (not charged); a device -> local;
    a fax channel -> FAX; anything else outbound STANDARD (rated); FREE -> not debited."""
    async with services.sessions.begin() as session:
        session.add(Did(number="+31201234599", account_id=rates.accounts["1001"]))
        session.add(
            SipDevice(
                account_id=rates.accounts["1001"],
                username="1001-101",
                extension="101",
                password_sealed="x",
            )
        )
    bare = {"c2_direction": "", "c2_call_type": ""}
    intake = CdrIntake(services.sessions, services.settings)
    cases = {
        "did": call_document("d1", number="0201234599", extra=bare),
        "device": call_document("d2", number="1001-101", extra=bare),
        "extension": call_document("d3", number="101", extra=bare),
        "fax": call_document("d4", extra={**bare, "fax_result_code": "0"}),
        "pstn": call_document("d5", extra=bare),
        "free": call_document("d6", extra={"c2_call_type": "FREE"}),
    }
    for document in cases.values():
        assert await intake.take(as_json(document)) == STORED
    found = await records(services)
    kinds = {uuid: (r.direction, r.call_type) for uuid, r in found.items()}
    assert kinds == {
        "d1": ("inbound", "DID"),
        "d2": ("local", "LOCAL"),
        "d3": ("local", "LOCAL"),
        "d4": ("outbound", "FAX"),
        "d5": ("outbound", "STANDARD"),
        "d6": ("outbound", "FREE"),
    }
    assert found["d1"].debit == 0 and found["d1"].sip_user == ""
    assert found["d1"].rating_note == "inbound call: not charged per minute"
    assert found["d4"].debit == found["d5"].debit == Decimal("0.02")
    assert found["d6"].debit == 0 and found["d6"].cost == Decimal("0.01")
    money = await balances(services)
    assert money["1001"] == Decimal("-0.04")
    assert money["R100"] == Decimal("-0.03")
    async with services.sessions() as session:
        billable = await session.scalar(select(func.sum(CallRollup.billable)))
    assert billable == 5 * 60  # the FREE call's seconds are not billable


async def test_recorded_calls_counted_once_and_b_leg_alone(services: Services) -> None:
    """The recorded posts in their order: three calls, each its A leg; a B leg alone stores
    nothing; a call without an account is kept, unrated, with the reason."""
    intake = CdrIntake(services.sessions, services.settings)
    outcomes = [await intake.take(post.body, "application/json") for post in POSTS.values()]
    assert outcomes == [B_LEG, STORED] * 3
    found = await records(services)
    assert set(found) == {read_cdr(POSTS[label].body).uuid for label in A_LEGS}
    fax = found["fa50fa50-0000-4000-8000-00000000f001"]
    assert fax.call_type == "FAX" and fax.account_id is None and fax.debit == 0
    assert fax.rating_note == "no account: not charged"
    lone = call_document("lone-b", extra={"originator": "never-came"})
    assert await intake.take(as_json(lone)) == B_LEG
    assert "lone-b" not in await records(services)


async def test_unreadable_record_kept_raw(services: Services) -> None:
    intake = CdrIntake(services.sessions, services.settings)
    assert await intake.take(b"{oops", "application/json", "", "127.0.0.1") == REJECTED
    async with services.sessions() as session:
        (reject,) = (await session.scalars(select(CdrReject))).all()
    assert reject.body == b"{oops" and reject.source == "127.0.0.1"
    assert reject.reason.startswith("not JSON")


# Helpers for the other CDR tests.
__all__ = ["Post", "as_form", "as_json", "call_document", "records"]
