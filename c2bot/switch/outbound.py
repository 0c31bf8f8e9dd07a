"""Outbound calls: what the switch does when a SIP device dials a number outside its account.

`c2bot.switch.dialplan` asks `plan` when a device (context `c2-<account>`) dials something that
is neither a device nor a transfer target of its account. A number that is no phone number
after the account's number translation (`+` and 3 to 20 digits, or 6 to 20 digits) and no
emergency number is not ours: `plan` answers None and the switch gets "not found" (its own
XML may know a feature code). Otherwise the answer is the call's whole plan, every step also in
words (so `/route test NUMBER from:DEVICE` explains exactly what the switch is told):

1. The account (from the device's context) and its reseller, one select with the device
   (CALLER, which the dialplan reads for every call from a device anyway).
2. The account's number translation on the dialled number (the platform's `match/replace`,
   c2bot.switch.translation); the result is what is rated and routed.
3. Emergency numbers (112, 911 and the platform country's own, as `phonenumbers` knows them)
   go out whatever the status, balance and limits, uncut, as call type FREE: over the trunks
   that have a rate for the number, else the platform's PSTN gateway (C2_PSTN_GATEWAY).
4. A suspended account (or reseller) is refused: OUTGOING_CALL_BARRED.
5. The origination rate (c2bot.switch.rating); none: NO_ROUTE_DESTINATION. For a reseller's
   customer also the reseller's buy rate (its own group), which is what the call costs it.
6. Balance: prepaid accounts spend their balance, postpaid ones balance + credit limit. A call
   that cannot pay the connection cost and the first (initial) block is refused with
   CALL_REJECTED; the same for the reseller against its buy price. Otherwise the longest call
   both can pay (at most MAX_SECONDS) is cut by `sched_hangup +N allotted_timeout`, scheduled
   when the call is answered (`execute_on_answer`), so ringing costs no talk time.
7. Concurrent calls and calls per second (account, then its reseller) with FreeSWITCH's
   `limit` on the `hash` backend: `limit hash c2_calls <account> <max> !NORMAL_CIRCUIT_CONGESTION`
   and `limit hash c2_cps <account> <cps>/1 !SWITCH_CONGESTION`; over the limit the switch
   hangs up with that cause.
8. Least-cost routing over the trunks of the carrier's rate group for the call (the account's
   own group; for a reseller's customer its reseller's group, since trunks are the carrier's):
   rating.routes orders them (longest prefix, cheapest, precedence); a trunk costing more per
   minute than the carrier is paid (the account's price, or the reseller's buy price) is
   skipped; the best MAX_TRUNKS (5) are tried. One `bridge` per gateway of each trunk (its
   gateway, then its failover gateways), each with the number after the termination rate's
   strip/prepend. A trunk with a channel limit
   bridges inside `limit_execute hash c2_trunk <trunk> <max> bridge ...`: a full trunk is
   passed over (the application is not run) and the counter is released when a bridge fails.
   `continue_on_fail` lists the causes that mean "this gateway failed" (FAILOVER_CAUSES), so a
   busy or unanswered callee is not rung again over the next trunk. When every gateway failed,
   the call ends with the last failure's cause (`originate_failed_cause`, which the bridge
   sets), NORMAL_CIRCUIT_CONGESTION when none could even be tried.

The caller id going out is the device's caller number (else the caller id the switch gave)
after the account's out caller-id translation. Channel variables for the call record:
`c2_direction=outbound`, `c2_call_type` (STANDARD, FREE for emergency calls), `c2_rate_group`,
`c2_rate_code`, `c2_rate_destination`, `c2_rate_per_minute`, `c2_rate_connection_cost`,
`c2_trunks` (names in LCR order), `c2_trunk` (set before each trunk's bridges, so it names
the trunk that answered, or the last one tried), `c2_dialled`, `c2_number`, `c2_max_seconds`;
a refused call carries `c2_refusal` (e.g. `no balance`) and its cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import phonenumbers
from sqlalchemy import BigInteger, and_, bindparam, select, type_coerce
from sqlalchemy.orm import aliased

from c2bot.config.settings import Settings
from c2bot.storage.models import (
    Account,
    AccountStatus,
    Billing,
    CallType,
    Direction,
    RateGroup,
    SipDevice,
    exact,
)
from c2bot.switch import rating, translation
from c2bot.switch.lookups import Query, Reader
from c2bot.switch.rating import Rate, Route

# `+` and digits, or 6 digits or more: shorter codes (features, services) are the switch's own.
PSTN_NUMBER = re.compile(r"\+[0-9]{3,20}|[0-9]{6,20}")
EMERGENCY_NUMBERS = frozenset({"112", "911"})
MAX_SECONDS = 4 * 3600  # no call is planned longer than this, whatever the balance
# Trunks tried per call, best first: each failing gateway may take a SIP timeout (up to 32 s)
# before the next is tried, and a caller does not wait through twenty.
MAX_TRUNKS = 5
LIMIT_BACKEND = "hash"  # mod_hash: per switch, in memory, with call rates (max/interval)
CALLS_REALM = "c2_calls"
CPS_REALM = "c2_cps"
TRUNK_REALM = "c2_trunk"

# Why a call is refused: the hangup cause the caller gets, and `c2_refusal` in its record.
SUSPENDED = "OUTGOING_CALL_BARRED"  # Q.850 52: the account may not call out
NO_RATE = "NO_ROUTE_DESTINATION"  # Q.850 3: we sell no calls to that number
NO_ROUTE = "NO_ROUTE_DESTINATION"  # Q.850 3: no trunk may carry it at that price
NO_BALANCE = "CALL_REJECTED"  # Q.850 21: it cannot be paid for
TOO_MANY_CALLS = "NORMAL_CIRCUIT_CONGESTION"  # Q.850 34: every channel of the account is busy
TOO_FAST = "SWITCH_CONGESTION"  # Q.850 42: calls per second over the account's CPS
ALL_TRUNKS_FULL = "NORMAL_CIRCUIT_CONGESTION"  # no trunk could take the call
# Failures of a gateway (not of the callee): the next gateway or trunk is tried.
FAILOVER_CAUSES = (
    "NORMAL_TEMPORARY_FAILURE",
    "NORMAL_CIRCUIT_CONGESTION",
    "SWITCH_CONGESTION",
    "REQUESTED_CHAN_UNAVAIL",
    "NETWORK_OUT_OF_ORDER",
    "DESTINATION_OUT_OF_ORDER",
    "NO_ROUTE_TRANSIT_NET",
    "NO_ROUTE_DESTINATION",
    "EXCHANGE_ROUTING_ERROR",
    "FACILITY_REJECTED",
    "OUTGOING_CALL_BARRED",
    "BEARERCAPABILITY_NOTAVAIL",
    "SERVICE_UNAVAILABLE",
    "INCOMPATIBLE_DESTINATION",
    "INTERWORKING",
    "PROTOCOL_ERROR",
    "RECOVERY_ON_TIMER_EXPIRE",
    "PROGRESS_TIMEOUT",
    "GATEWAY_DOWN",
    "INVALID_GATEWAY",
)


@dataclass
class Outbound:
    """The plan of one call out: steps in words, switch actions and channel variables."""

    extension: str
    steps: list[str] = field(default_factory=list)
    actions: list[tuple[str, str]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    refusal: str = ""  # "" when the call goes out
    cause: str = ""  # the hangup cause of a refusal
    number: str = ""  # the dialled number after the account's translation
    rate: Rate | None = None
    routes: list[Route] = field(default_factory=list)
    max_seconds: int | None = None
    recording: str = ""  # the file an answered call is recorded to ("" not recorded)

    def say(self, sentence: str) -> None:
        self.steps.append(sentence)

    def do(self, application: str, data: str = "") -> None:
        self.actions.append((application, data))


@dataclass(frozen=True)
class _Payer:
    """An account as far as paying for a call goes (the caller's account or its reseller)."""

    id: int
    number: str
    status: str
    billing: str
    balance: Decimal
    credit_limit: Decimal
    max_channels: int
    cps: int
    rate_group_id: int | None
    rate_group: str

    @property
    def available(self) -> Decimal:
        if self.billing == Billing.POSTPAID.value:
            return exact(self.balance + self.credit_limit)
        return self.balance

    def means(self) -> str:
        if self.billing == Billing.POSTPAID.value:
            return (
                f"balance {_money(self.balance)} + credit limit {_money(self.credit_limit)} "
                f"(postpaid) = {_money(self.available)}"
            )
        return f"prepaid balance {_money(self.balance)}"


_group = aliased(RateGroup)
_seller = aliased(Account)
_seller_group = aliased(RateGroup)


def _payer_columns(account: Any, group: Any, prefix: str) -> list[Any]:
    return [
        account.id.label(f"{prefix}id"),
        account.number.label(f"{prefix}number"),
        account.status.label(f"{prefix}status"),
        account.billing.label(f"{prefix}billing"),
        # Millionths on every reader (a session would give a Decimal, the drivers an integer).
        type_coerce(account.balance, BigInteger).label(f"{prefix}balance"),
        type_coerce(account.credit_limit, BigInteger).label(f"{prefix}credit_limit"),
        account.max_channels.label(f"{prefix}max_channels"),
        account.cps.label(f"{prefix}cps"),
        account.rate_group_id.label(f"{prefix}rate_group_id"),
        group.name.label(f"{prefix}rate_group"),
    ]


# A device's account by number, with the device (`device`: its username). c2bot.switch.dialplan
# reads it (with the device dialled) for every call from a device, so a call out needs no
# second read of it.
CALLER_SELECT = (
    select(
        *_payer_columns(Account, _group, ""),
        Account.timezone,
        Account.number_translation,
        Account.out_callerid_translation,
        *_payer_columns(_seller, _seller_group, "seller_"),
        SipDevice.username.label("device"),
        SipDevice.caller_number,
        SipDevice.record_calls,
    )
    .outerjoin(_group, _group.id == Account.rate_group_id)
    .outerjoin(_seller, _seller.id == Account.reseller_id)
    .outerjoin(_seller_group, _seller_group.id == _seller.rate_group_id)
    .outerjoin(
        SipDevice,
        and_(SipDevice.account_id == Account.id, SipDevice.username == bindparam("device")),
    )
    .where(Account.number == bindparam("number"))
)
CALLER = Query(CALLER_SELECT)


def _payer(row: Any, prefix: str = "") -> _Payer | None:
    values = {name: getattr(row, prefix + name) for name in _Payer.__dataclass_fields__}
    if values["id"] is None:
        return None
    values["balance"] = _millionths(values["balance"])
    values["credit_limit"] = _millionths(values["credit_limit"])
    values["rate_group"] = values["rate_group"] or ""
    return _Payer(**values)


def _millionths(value: int | None) -> Decimal:
    return exact(Decimal(int(value or 0)).scaleb(-6))


def _money(value: Decimal) -> str:
    return f"{exact(value):f}"


def looks_like_pstn(number: str) -> bool:
    """Whether a number is one to send out: `+` and digits, or at least 6 digits."""
    return PSTN_NUMBER.fullmatch(number) is not None


def is_emergency(number: str, region: str) -> bool:
    """112, 911 and the emergency numbers of the platform's country (`region`)."""
    if number in EMERGENCY_NUMBERS:
        return True
    return bool(phonenumbers.is_emergency_number(number, region))


def dial_number(route: Route, digits: str) -> str:
    """The number sent to a trunk: the international digits (rating.international_digits),
    the termination rate's `strip` taken off the front (when it is there), its `prepend` put
    before."""
    strip = route.rate.strip
    if strip and digits.startswith(strip):
        digits = digits[len(strip) :]
    return route.rate.prepend + digits


def longest_call(rate: Rate, available: Decimal) -> int:
    """The longest answered call (seconds, at most MAX_SECONDS) `available` pays for at `rate`;
    0 when it cannot pay the connection cost and the first block."""
    if rating.charge(rate, rate.grace_time + 1) > available:
        return 0
    if rating.charge(rate, MAX_SECONDS) <= available:
        return MAX_SECONDS
    low, high = rate.grace_time + 1, MAX_SECONDS  # charge(low) fits, charge(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if rating.charge(rate, middle) <= available:
            low = middle
        else:
            high = middle
    return low


def describe_rate(rate: Rate) -> str:
    parts = [f"{rate.code} {rate.destination}".strip(), f"{_money(rate.cost_per_minute)}/min"]
    if rate.connection_cost:
        parts.append(f"connection {_money(rate.connection_cost)}")
    if rate.grace_time:
        parts.append(f"grace {rate.grace_time} s")
    parts.append(f"billed {rate.initial_increment} s, then per {rate.increment} s")
    return ", ".join(parts)


def duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    return f"{secs} s"


async def plan(
    read: Reader,
    settings: Settings,
    row: Any,
    *,
    dialled: str,
    caller: str = "",
    recording: str = "",
) -> Outbound | None:
    """The plan of a call to `dialled` from the device and account in `row` (a CALLER row);
    None when `dialled` is no phone number (the switch is then told "not found").
    `recording`: the file an answered call is recorded to when the device records its calls."""
    if not dialled.removeprefix("+").isdigit():
        return None
    account = _payer(row)
    assert account is not None
    seller = _payer(row, "seller_")
    out = Outbound(extension="out")
    out.variables.update(
        {
            "c2_direction": Direction.OUTBOUND.value,
            "c2_call_type": CallType.STANDARD.value,
            "c2_dialled": dialled,
        }
    )
    out.say(f"A call out for account {account.number}.")
    out.number = _translated(
        out, row.number_translation, dialled, "Number translation", "the number dialled"
    )
    emergency = is_emergency(dialled, settings.fax_country)
    if not emergency and not looks_like_pstn(out.number):
        return None
    out.variables["c2_number"] = out.number
    _caller_id(out, row, caller)
    if row.record_calls and recording:
        out.recording = recording
    if emergency:
        await _emergency(read, settings, out, account, seller, dialled)
        return out
    await _standard(read, out, account, seller)
    return out


def _translated(out: Outbound, rules_text: str, number: str, what: str, subject: str) -> str:
    if not rules_text.strip():
        return number
    try:
        rules = translation.parse_rules(rules_text)
    except translation.TranslationError as error:
        out.say(f"{what} {rules_text!r} does not parse ({error}): {subject} is used as it is.")
        return number
    result = translation.translate(rules, number)
    if result != number:
        out.say(f"{what} {translation.render(rules)}: {number} becomes {result}.")
    else:
        out.say(f"{what} {translation.render(rules)}: no rule applies to {number}.")
    return result


def _caller_id(out: Outbound, row: Any, caller: str) -> None:
    base = row.caller_number or (caller if looks_like_pstn(caller) else "")
    if not base:
        out.say("The device has no caller number: the switch sends the caller id it has.")
        return
    shown = _translated(out, row.out_callerid_translation, base, "Caller-id translation", "it")
    out.say(f"The caller id sent out is {shown}.")
    out.variables["effective_caller_id_number"] = shown


def _refuse(out: Outbound, cause: str, refusal: str, why: str) -> None:
    out.refusal, out.cause = refusal, cause
    out.extension = "out-refused"
    out.variables["c2_refusal"] = refusal
    out.say(f"{why}: refused ({cause}).")
    out.do("hangup", cause)


async def _standard(read: Reader, out: Outbound, account: _Payer, seller: _Payer | None) -> None:
    for payer, whose in ((account, "Account"), (seller, "Its reseller")):
        if payer is not None and payer.status == AccountStatus.SUSPENDED.value:
            refusal = "account suspended" if payer is account else "reseller suspended"
            _refuse(out, SUSPENDED, refusal, f"{whose} {payer.number} is suspended")
            return
    group = account.rate_group or "none"
    out.variables["c2_rate_group"] = account.rate_group
    rate = await rating.origination_rate(
        read, account_id=account.id, rate_group_id=account.rate_group_id, number=out.number
    )
    if rate is None:
        _refuse(
            out,
            NO_RATE,
            "no rate",
            f"Account {account.number} has no rate for {out.number} (rate group {group})",
        )
        return
    out.rate = rate
    out.say(f"Rate (rate group {group}): {describe_rate(rate)}.")
    out.variables.update(
        {
            "c2_rate_code": rate.code,
            "c2_rate_destination": rate.destination,
            "c2_rate_per_minute": _money(rate.cost_per_minute),
            "c2_rate_connection_cost": _money(rate.connection_cost),
        }
    )
    longest = _affordable(out, account, rate, "account")
    if longest == 0:
        return
    carrier_price, carrier_group = rate, account.rate_group_id
    if seller is not None:
        bought = await rating.origination_rate(
            read, account_id=seller.id, rate_group_id=seller.rate_group_id, number=out.number
        )
        if bought is None:
            _refuse(
                out,
                NO_RATE,
                "no rate (reseller)",
                f"Its reseller {seller.number} buys no "
                f"calls to {out.number} (rate group {seller.rate_group or 'none'})",
            )
            return
        out.say(
            f"It costs reseller {seller.number} {describe_rate(bought)} "
            f"(rate group {seller.rate_group or 'none'})."
        )
        longest = min(longest, _affordable(out, seller, bought, "reseller"))
        if longest == 0:
            return
        carrier_price, carrier_group = bought, seller.rate_group_id
    out.max_seconds = longest
    routes = await rating.routes(read, rate_group_id=carrier_group, number=out.number)
    usable = _affordable_routes(out, routes, carrier_price)
    if not usable:
        why = "No trunk carries it" if not routes else "No trunk carries it at that price"
        _refuse(out, NO_ROUTE, "no route", f"{why} ({out.number})")
        return
    for payer in (account, seller):
        if payer is not None:
            _limits(out, payer)
    out.say(
        f"The call is cut after {duration(longest)} of talk"
        + (" (the most one call may last)." if longest == MAX_SECONDS else " (what it can pay).")
    )
    out.variables["c2_max_seconds"] = str(longest)
    out.variables["execute_on_answer"] = f"sched_hangup +{longest} allotted_timeout"
    _bridges(out, usable, strip_prepend=True)


def _affordable(out: Outbound, payer: _Payer, rate: Rate, who: str) -> int:
    """The longest call `payer` can pay at `rate`; 0 (and the refusal) when not even the
    connection and the first block."""
    first = rating.charge(rate, rate.grace_time + 1)
    longest = longest_call(rate, payer.available)
    whose = f"Account {payer.number}" if who == "account" else f"Reseller {payer.number}"
    if longest == 0:
        refusal = "no balance" if who == "account" else "no balance (reseller)"
        _refuse(
            out,
            NO_BALANCE,
            refusal,
            f"{whose} has {payer.means()}, less than the connection and first block "
            f"({_money(first)})",
        )
        return 0
    out.say(f"{whose} has {payer.means()}: enough for {duration(longest)}.")
    return longest


def _affordable_routes(out: Outbound, routes: list[Route], price: Rate) -> list[Route]:
    usable: list[Route] = []
    for route in routes:
        if len(usable) == MAX_TRUNKS:
            left = len(routes) - routes.index(route)
            out.say(f"{left} more trunk(s) could carry it: at most {MAX_TRUNKS} are tried.")
            break
        if route.rate.cost_per_minute > price.cost_per_minute:
            out.say(
                f"Trunk {route.trunk} costs {_money(route.rate.cost_per_minute)}/min for "
                f"{route.rate.code}, more than the {_money(price.cost_per_minute)}/min it is "
                "sold at: skipped."
            )
            continue
        usable.append(route)
    return usable


def _limits(out: Outbound, payer: _Payer) -> None:
    if payer.max_channels > 0:
        out.say(
            f"At most {payer.max_channels} calls at once for account {payer.number}; "
            f"one more is refused ({TOO_MANY_CALLS})."
        )
        out.do(
            "limit",
            f"{LIMIT_BACKEND} {CALLS_REALM} {_resource(payer.number)} {payer.max_channels} "
            f"!{TOO_MANY_CALLS}",
        )
    if payer.cps > 0:
        out.say(
            f"At most {payer.cps} new calls a second for account {payer.number}; "
            f"faster is refused ({TOO_FAST})."
        )
        out.do(
            "limit",
            f"{LIMIT_BACKEND} {CPS_REALM} {_resource(payer.number)} {payer.cps}/1 !{TOO_FAST}",
        )


def _bridges(out: Outbound, routes: list[Route], *, strip_prepend: bool) -> None:
    out.routes = routes
    out.variables["c2_trunks"] = ",".join(route.trunk for route in routes)
    out.variables["continue_on_fail"] = ",".join(FAILOVER_CAUSES)
    out.variables["originate_failed_cause"] = ALL_TRUNKS_FULL
    if out.recording:
        out.say("The call is recorded once answered (device setting).")
        out.variables["media_bug_answer_req"] = "true"
        out.do("record_session", out.recording)
    digits = rating.international_digits(out.number) or out.number
    for n, route in enumerate(routes, 1):
        number = dial_number(route, digits) if strip_prepend else out.number
        gateways = (route.gateway, *route.failover_gateways)
        limit = f"at most {route.max_channels} calls at once" if route.max_channels else ""
        cost = f"{_money(route.rate.cost_per_minute)}/min for {route.rate.code}"
        then = f", then {', '.join(gateways[1:])}" if len(gateways) > 1 else ""
        out.say(
            f"{_ordinal(n)}: trunk {route.trunk} ({cost}{'; ' + limit if limit else ''}): "
            f"gateway {gateways[0]}{then}; the number goes as {number}."
        )
        out.do("set", f"c2_trunk={route.trunk}")  # the last one set is the one that answered
        for gateway in gateways:
            dial = f"sofia/gateway/{gateway}/{number}"
            if route.max_channels > 0:
                out.do(
                    "limit_execute",
                    f"{LIMIT_BACKEND} {TRUNK_REALM} {_resource(route.trunk)} {route.max_channels} "
                    f"bridge {dial}",
                )
            else:
                out.do("bridge", dial)
    out.say(
        "A gateway that fails (not a busy or unanswered callee) passes the call to the next; "
        "a full trunk is passed over. If none connects, the call ends with the last failure's "
        f"cause ({ALL_TRUNKS_FULL} if no trunk could take it)."
    )
    out.do("hangup", "${originate_failed_cause}")


def _resource(name: str) -> str:
    """A name as one word of `limit` data (the application splits on spaces)."""
    return quote(name, safe="")


def _ordinal(n: int) -> str:
    return {1: "First", 2: "Second", 3: "Third"}.get(n, f"Choice {n}")


async def _emergency(
    read: Reader,
    settings: Settings,
    out: Outbound,
    account: _Payer,
    seller: _Payer | None,
    dialled: str,
) -> None:
    out.say(
        f"{dialled} is an emergency number: it goes out whatever the account's status, balance "
        "and limits, free of charge and without a time limit."
    )
    out.extension = "out-emergency"
    out.number = dialled
    out.variables["c2_number"] = dialled
    out.variables["c2_call_type"] = CallType.FREE.value
    out.variables["c2_rate_group"] = account.rate_group
    group = seller.rate_group_id if seller is not None else account.rate_group_id
    routes = await rating.routes(read, rate_group_id=group, number=dialled)
    if routes:
        _bridges(out, routes, strip_prepend=False)
        return
    out.say(f"No trunk has a rate for {dialled}: it goes out by the PSTN gateway.")
    out.variables["continue_on_fail"] = ",".join(FAILOVER_CAUSES)
    out.variables["originate_failed_cause"] = ALL_TRUNKS_FULL
    out.do("bridge", f"{settings.pstn_gateway}{dialled}")
    out.do("hangup", "${originate_failed_cause}")
