"""What a call costs, at every level of the account tree: rate lookups and the pricing rule.

Pricing (one rate, `billsec` answered seconds):

- Not answered (`billsec` 0), or answered no longer than the grace time: nothing at all.
- Else the connection cost, plus `cost_per_minute / 60` for every billable second, where the
  billable seconds are the answered seconds minus the grace time, taken as the whole initial
  block (`initial_increment`) however short, and the rest rounded up to whole `increment`s:

      s        = billsec - grace_time
      billable = initial + ceil(max(s - initial, 0) / increment) * increment
      charge   = exact(connection_cost + cost_per_minute * billable / 60)

  Example: 0.01 connection, 0.025/min, grace 5 s, initial 30 s, increment 6 s; a 47 s call:
  s = 42, billable = 30 + ceil(12 / 6) * 6 = 42, charge = 0.01 + 0.025 * 42 / 60 = 0.0275.
  A 20 s call: s = 15, billable = 30, charge 0.0225. A 4 s call: inside the grace time, 0.

Lookups: the longest prefix of the number that has a rate wins. An account's own rates
(`OriginationRate.account_id`) come before its group's, whatever their length; empty increments
take the rate group's defaults (termination rates: 1 s). A group's markup (percent) is folded
into the prices of the group's rates (not into an account's own rates: those are its price).
Each lookup is one select over `code IN (every prefix of the number)` on the unique
(owner, code) indexes, longest first, LIMIT 1: a few index probes however many rates there are.

The account tree (DESIGN.md "Who is who"): a reseller's customer is debited at its own group
(one its reseller owns); the call costs the reseller its buy price (the reseller's group from
the carrier), which is also what the carrier debits; the carrier's cost is the trunk's
termination rate. An account without a reseller: debit = carrier_debit, and its cost is the
trunk's (cost = carrier_cost). A level without a rate is charged 0 and says so in `note`.

Numbers are normalised to international digits before the lookup: `+31...`, `0031...` and
`31...` all become `31...`; a national `0...` number is read in `region` (default NL).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import phonenumbers
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Dialect,
    Select,
    bindparam,
    case,
    exists,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import aliased

from c2bot.storage.models import (
    Account,
    AccountStatus,
    OriginationRate,
    RateGroup,
    RateGroupTrunk,
    TerminationRate,
    Trunk,
    exact,
)
from c2bot.switch.lookups import Query, Reader

# Longest code a rate may have (the column's width): numbers are matched on at most this many.
MAX_CODE = 32
ZERO = Decimal(0)
# The call record's rating_note column is this wide.
NOTE_MAX = 200


@dataclass(frozen=True)
class Rate:
    """A price per prefix, increments filled in and any group markup already applied."""

    code: str
    destination: str
    connection_cost: Decimal
    grace_time: int
    cost_per_minute: Decimal
    initial_increment: int
    increment: int
    strip: str = ""
    prepend: str = ""


def billable_seconds(rate: Rate, billsec: int) -> int:
    """The seconds charged for `billsec` answered seconds (see the module's rule)."""
    answered = billsec - max(rate.grace_time, 0)
    if billsec <= 0 or answered <= 0:
        return 0
    initial = max(rate.initial_increment, 0)
    step = max(rate.increment, 1)
    rest = max(answered - initial, 0)
    return initial + -(-rest // step) * step


def charge(rate: Rate, billsec: int) -> Decimal:
    """What a call of `billsec` answered seconds costs at `rate` (0 when not charged)."""
    seconds = billable_seconds(rate, billsec)
    if seconds == 0:
        return exact(0)
    return exact(rate.connection_cost + rate.cost_per_minute * seconds / 60)


def with_markup(price: Decimal, markup: Decimal) -> Decimal:
    """A price raised by `markup` percent."""
    return exact(price * (100 + markup) / 100) if markup else exact(price)


def international_digits(number: str, region: str = "NL") -> str:
    """The number as international digits without `+` ("" when it is not a number)."""
    text = number.strip()
    for scheme in ("sip:", "sips:", "tel:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    text = text.split("@", 1)[0].split(";", 1)[0]
    text = "".join(ch for ch in text if ch not in " ().-/")
    digits = text.removeprefix("+")
    if not digits.isdigit():
        return ""
    if text.startswith("+"):
        return digits
    if digits.startswith("00"):
        return digits[2:]
    if digits.startswith("0"):
        try:
            parsed = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            return digits
        return f"{parsed.country_code}{parsed.national_number}"
    return digits


def country_of(digits: str) -> str:
    """The ISO region of international digits ("" when unknown or not a country)."""
    if not digits:
        return ""
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    )
    return region if region and len(region) == 2 and region.isalpha() and region != "ZZ" else ""


def _prefix_params(count: int) -> list[BindParameter[str]]:
    return [bindparam(f"code{n}") for n in range(count)]


def _prefix_values(digits: str) -> dict[str, str]:
    """Every prefix of the digits (at most MAX_CODE): `code0` is the first digit."""
    return {f"code{n}": digits[: n + 1] for n in range(min(len(digits), MAX_CODE))}


def _width(digits: str) -> int:
    """How many prefixes a number has (one statement per width, compiled once each)."""
    return min(len(digits), MAX_CODE)


_RATE_COLUMNS = (
    OriginationRate.code,
    OriginationRate.destination,
    OriginationRate.connection_cost,
    OriginationRate.grace_time,
    OriginationRate.cost_per_minute,
    OriginationRate.initial_increment,
    OriginationRate.increment,
)


def _longest(owner: Any, value: str, own: int, width: int) -> Select[*tuple[Any, ...]]:
    return (
        select(*_RATE_COLUMNS, literal(own).label("own"))
        .where(owner == bindparam(value), OriginationRate.code.in_(_prefix_params(width)))
        .order_by(func.length(OriginationRate.code).desc())
        .limit(1)
    )


@functools.cache
def _origination_query(width: int) -> Query:
    mine = _longest(OriginationRate.account_id, "account", 1, width).subquery("mine")
    group = _longest(OriginationRate.rate_group_id, "group", 0, width).subquery("grp")
    both = union_all(select(mine), select(group)).subquery("found")
    return Query(
        select(
            both,
            RateGroup.markup.label("markup"),
            RateGroup.initial_increment.label("group_initial"),
            RateGroup.increment.label("group_increment"),
        )
        .select_from(both)
        .outerjoin(RateGroup, RateGroup.id == bindparam("group_id"))
        .order_by(both.c.own.desc())
        .limit(1)
    )


_TRUNK_COLUMNS = (
    Trunk.id.label("trunk_id"),
    Trunk.name.label("trunk"),
    Trunk.gateway,
    Trunk.failover_gateways,
    Trunk.max_channels,
    Trunk.precedence,
    TerminationRate.code,
    TerminationRate.destination,
    TerminationRate.connection_cost,
    TerminationRate.grace_time,
    TerminationRate.cost_per_minute,
    TerminationRate.initial_increment,
    TerminationRate.increment,
    TerminationRate.strip,
    TerminationRate.prepend,
)


@functools.cache
def _routes_query(width: int) -> Query:
    return Query(
        select(*_TRUNK_COLUMNS)
        .select_from(RateGroupTrunk)
        .join(Trunk, Trunk.id == RateGroupTrunk.trunk_id)
        .join(TerminationRate, TerminationRate.trunk_id == Trunk.id)
        .where(
            RateGroupTrunk.rate_group_id == bindparam("group"),
            Trunk.status == AccountStatus.ACTIVE.value,
            TerminationRate.code.in_(_prefix_params(width)),
        )
    )


@functools.cache
def _trunk_rate_query(width: int) -> Query:
    return Query(
        select(*_TRUNK_COLUMNS)
        .select_from(Trunk)
        .join(TerminationRate, TerminationRate.trunk_id == Trunk.id)
        .where(Trunk.id == bindparam("trunk"), TerminationRate.code.in_(_prefix_params(width)))
        .order_by(func.length(TerminationRate.code).desc())
        .limit(1)
    )


_TRUNK_NAME = Query(select(Trunk.name).where(Trunk.id == bindparam("trunk")))
_seller = aliased(Account)
# An account with its seller's number and rate group: alone, and as the rating select's start.
_ACCOUNT_SELECT = (
    select(
        Account.number,
        Account.rate_group_id,
        Account.reseller_id,
        _seller.number.label("reseller_number"),
        _seller.rate_group_id.label("reseller_group_id"),
    )
    .outerjoin(_seller, _seller.id == Account.reseller_id)
    .where(Account.id == bindparam("account"))
)
_ACCOUNT = Query(_ACCOUNT_SELECT)


async def origination_rate(
    read: Reader, *, account_id: int | None, rate_group_id: int | None, number: str
) -> Rate | None:
    """The rate `account_id` pays for `number`: its own rates first, then its group's; longest
    prefix; the group's default increments and markup applied. `number` as given or normalised
    (see `international_digits`)."""
    digits = international_digits(number)
    if not digits or (account_id is None and rate_group_id is None):
        return None
    values = {
        "account": account_id if account_id is not None else -1,
        "group": rate_group_id if rate_group_id is not None else -1,
        "group_id": rate_group_id if rate_group_id is not None else -1,
        **_prefix_values(digits),
    }
    found = await read(_origination_query(_width(digits)), values)
    return _origination_of(found[0]) if found else None


def _money(value: Decimal | int | None) -> Decimal:
    """A `Fixed` column as read: a Decimal through a session, millionths from the drivers."""
    if value is None:
        return exact(0)
    if isinstance(value, Decimal):
        return value
    return exact(Decimal(int(value)).scaleb(-6))


def _increment(value: int | None, default: int | None) -> int:
    if value is not None:
        return value
    return default if default is not None else 1


def _termination(row: Any) -> Rate:
    return Rate(
        code=row.code,
        destination=row.destination,
        connection_cost=_money(row.connection_cost),
        grace_time=row.grace_time,
        cost_per_minute=_money(row.cost_per_minute),
        initial_increment=_increment(row.initial_increment, 1),
        increment=_increment(row.increment, 1),
        strip=row.strip,
        prepend=row.prepend,
    )


@dataclass(frozen=True)
class Route:
    """A trunk a call may leave by, with the termination rate it costs there."""

    trunk_id: int
    trunk: str
    gateway: str
    failover_gateways: tuple[str, ...]
    max_channels: int
    precedence: int
    rate: Rate

    @classmethod
    def of(cls, row: Any) -> Route:
        failovers = tuple(g.strip() for g in (row.failover_gateways or "").split(",") if g.strip())
        return cls(
            trunk_id=row.trunk_id,
            trunk=row.trunk,
            gateway=row.gateway,
            failover_gateways=failovers,
            max_channels=row.max_channels,
            precedence=row.precedence,
            rate=_termination(row),
        )


async def routes(read: Reader, *, rate_group_id: int | None, number: str) -> list[Route]:
    """The active trunks of the group that can take `number`, best first: longest matching
    prefix, then cheapest per minute (then connection cost), then precedence, then name."""
    digits = international_digits(number)
    if not digits or rate_group_id is None:
        return []
    rows = await read(
        _routes_query(_width(digits)), {"group": rate_group_id, **_prefix_values(digits)}
    )
    best: dict[int, Any] = {}
    for row in rows:
        seen = best.get(row.trunk_id)
        if seen is None or len(row.code) > len(seen.code):
            best[row.trunk_id] = row
    found = [Route.of(row) for row in best.values()]
    return sorted(found, key=_route_order)


def _route_order(route: Route) -> tuple[int, Decimal, Decimal, int, str]:
    rate = route.rate
    return (
        -len(rate.code),
        rate.cost_per_minute,
        rate.connection_cost,
        route.precedence,
        route.trunk,
    )


async def trunk_rate(read: Reader, *, trunk_id: int, number: str) -> Rate | None:
    """The termination rate of one trunk for `number` (longest prefix), whatever its status."""
    digits = international_digits(number)
    if not digits:
        return None
    query = _trunk_rate_query(_width(digits))
    found = await read(query, {"trunk": trunk_id, **_prefix_values(digits)})
    return _termination(found[0]) if found else None


async def routing_group(read: Reader, *, account_id: int) -> int | None:
    """The rate group whose trunks carry the account's calls: its reseller's group for a
    reseller's customer (resellers' own groups have no trunks), else its own."""
    found = await read(_ACCOUNT, {"account": account_id})
    if not found:
        return None
    row = found[0]
    group: int | None = row.reseller_group_id if row.reseller_id is not None else row.rate_group_id
    return group


# rate_call's reads in one statement (one round trip on PostgreSQL): the account and its
# reseller, the customer's rate (own or group's), the reseller's buy rate, the trunk's rate.
# The owners come from scalar subqueries on the account; an owner without own rates skips
# their probes (the EXISTS is evaluated once). Two equivalent forms of each rate's lookup:
# - PostgreSQL: `code IN (every prefix)`, longest first, LIMIT 1 (as `_origination_query`);
# - SQLite: the prefixes probed longest first on the unique (owner, code) index, stopping at
#   the first hit (COALESCE evaluates no further; no sort): half the work there, but a
#   statement PostgreSQL takes milliseconds to plan.
_customer = select(Account.rate_group_id).where(Account.id == bindparam("account"))
_reseller = select(Account.reseller_id).where(Account.id == bindparam("account"))
_reseller_group = (
    select(_seller.rate_group_id)
    .join(Account, Account.reseller_id == _seller.id)
    .where(Account.id == bindparam("account"))
)
_LEVEL_COLUMNS = (*(c.key for c in _RATE_COLUMNS), "own", "markup", "group_initial")
_LEVEL_COLUMNS += ("group_increment",)


def _longest_id(table: Any, owner: Any, who: Any, width: int) -> ColumnElement[Any]:
    """The id of the owner's rate with the longest code that prefixes the number (or NULL)."""
    probes = [
        select(table.id).where(owner == who, table.code == code).scalar_subquery()
        for code in reversed(_prefix_params(width))
    ]
    if not probes:
        return null()
    return func.coalesce(*probes) if len(probes) > 1 else probes[0]


def _probing_level(name: str, who: Any, group: Any, width: int) -> Any:
    """One level's origination rate, as `_origination_query` finds it: a subquery `name`
    (SQLite's form)."""
    who = who.scalar_subquery() if isinstance(who, Select) else who
    group = group.scalar_subquery()
    mine = case(
        (
            exists().where(OriginationRate.account_id == who),
            _longest_id(OriginationRate, OriginationRate.account_id, who, width),
        ),
        else_=null(),
    )
    theirs = _longest_id(OriginationRate, OriginationRate.rate_group_id, group, width)
    rates = aliased(OriginationRate, name=f"{name}_rate")
    groups = aliased(RateGroup, name=f"{name}_group")
    return (
        select(
            *(getattr(rates, c.key) for c in _RATE_COLUMNS),
            case((rates.account_id.is_not(None), 1), else_=0).label("own"),
            groups.markup.label("markup"),
            groups.initial_increment.label("group_initial"),
            groups.increment.label("group_increment"),
        )
        .select_from(rates)
        .outerjoin(groups, groups.id == group)
        .where(rates.id == func.coalesce(mine, theirs))
        .subquery(name)
    )


def _owned(who: ColumnElement[Any], width: int) -> Select[*tuple[Any, ...]]:
    gate = exists().where(OriginationRate.account_id == who)
    return (
        select(*_RATE_COLUMNS, literal(1).label("own"))
        .where(gate, OriginationRate.account_id == who)
        .where(OriginationRate.code.in_(_prefix_params(width)))
        .order_by(func.length(OriginationRate.code).desc())
        .limit(1)
    )


def _grouped(group: ColumnElement[Any], width: int) -> Select[*tuple[Any, ...]]:
    return (
        select(*_RATE_COLUMNS, literal(0).label("own"))
        .where(OriginationRate.rate_group_id == group)
        .where(OriginationRate.code.in_(_prefix_params(width)))
        .order_by(func.length(OriginationRate.code).desc())
        .limit(1)
    )


def _listing_level(name: str, who: Any, group: Any, width: int) -> Any:
    """`_probing_level` in PostgreSQL's form."""
    who = who.scalar_subquery() if isinstance(who, Select) else who
    group = group.scalar_subquery()
    mine = _owned(who, width).subquery(f"{name}_mine")
    theirs = _grouped(group, width).subquery(f"{name}_grp")
    both = union_all(select(mine), select(theirs)).subquery(f"{name}_found")
    groups = aliased(RateGroup, name=f"{name}_group")
    return (
        select(
            both,
            groups.markup.label("markup"),
            groups.initial_increment.label("group_initial"),
            groups.increment.label("group_increment"),
        )
        .select_from(both)
        .outerjoin(groups, groups.id == group)
        .order_by(both.c.own.desc())
        .limit(1)
        .subquery(name)
    )


class _PerDialect(Query):
    """A Query sent as another, equivalent statement (same columns) on SQLite."""

    def __init__(self, statement: Select[*tuple[Any, ...]], on_sqlite: Query) -> None:
        super().__init__(statement)
        if list(on_sqlite.row._fields) != list(self.row._fields):
            raise ValueError("the two forms select different columns")
        self._on_sqlite = on_sqlite

    def bind(self, dialect: Dialect, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        if dialect.name == "sqlite":
            return self._on_sqlite.bind(dialect, values)
        return super().bind(dialect, values)


@functools.cache
def _call_query(width: int) -> Query:
    return _PerDialect(_call_statement(width, False), Query(_call_statement(width, True)))


def _call_statement(width: int, probing: bool) -> Select[*tuple[Any, ...]]:
    account = _ACCOUNT_SELECT.subquery("account")
    level = _probing_level if probing else _listing_level
    customer = level("c", bindparam("account"), _customer, width)
    reseller = level("r", _reseller, _reseller_group, width)
    found = select(*(c.label(c.key) for c in _TRUNK_COLUMNS[6:]))
    if probing:
        trunk_id = TerminationRate.trunk_id
        found = found.where(
            TerminationRate.id == _longest_id(TerminationRate, trunk_id, bindparam("trunk"), width)
        )
    else:
        found = (
            found.where(
                TerminationRate.trunk_id == bindparam("trunk"),
                TerminationRate.code.in_(_prefix_params(width)),
            )
            .order_by(func.length(TerminationRate.code).desc())
            .limit(1)
        )
    trunk = found.subquery("t")
    return (
        select(
            account,
            *(customer.c[n].label(f"c_{n}") for n in _LEVEL_COLUMNS),
            *(reseller.c[n].label(f"r_{n}") for n in _LEVEL_COLUMNS),
            *(trunk.c[c.key].label(f"t_{c.key}") for c in _TRUNK_COLUMNS[6:]),
        )
        .select_from(account)
        .outerjoin(customer, true())
        .outerjoin(reseller, true())
        .outerjoin(trunk, true())
    )


class _Prefixed:
    """A row's columns of one level, without their prefix."""

    __slots__ = ("_prefix", "_row")

    def __init__(self, row: Any, prefix: str) -> None:
        self._row = row
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


def _origination_of(row: Any) -> Rate | None:
    """A rate from one level's columns (a row of the origination select, or one level of the
    rating select's); None when that level has no rate."""
    if row.code is None:
        return None
    markup = _money(row.markup) if not row.own else ZERO
    return Rate(
        code=row.code,
        destination=row.destination,
        connection_cost=with_markup(_money(row.connection_cost), markup),
        grace_time=row.grace_time,
        cost_per_minute=with_markup(_money(row.cost_per_minute), markup),
        initial_increment=_increment(row.initial_increment, row.group_initial),
        increment=_increment(row.increment, row.group_increment),
    )


@dataclass(frozen=True)
class CallCharges:
    """One call rated at every level (see the module docstring for who pays what)."""

    code: str
    destination: str
    country: str
    rate_group_id: int | None
    trunk_id: int | None
    debit: Decimal
    cost: Decimal
    carrier_debit: Decimal
    carrier_cost: Decimal
    note: str
    reseller_id: int | None


async def rate_call(
    read: Reader, *, account_id: int, number: str, billsec: int, trunk_id: int | None
) -> CallCharges:
    """Rate one call of `account_id` to `number` that went out by `trunk_id` (None: unknown)."""
    digits = international_digits(number)
    values = {
        "account": account_id,
        "trunk": trunk_id if trunk_id is not None else -1,
        **_prefix_values(digits),
    }
    found = await read(_call_query(_width(digits)), values)
    zero = exact(0)
    nothing = CallCharges(
        code="",
        destination="",
        country=country_of(digits),
        rate_group_id=None,
        trunk_id=trunk_id,
        debit=zero,
        cost=zero,
        carrier_debit=zero,
        carrier_cost=zero,
        note="",
        reseller_id=None,
    )
    if not found:
        return replace(nothing, note=f"no account with id {account_id}")
    account = found[0]
    notes: list[str] = []
    own = _origination_of(_Prefixed(account, "c_")) if digits else None
    debit = _priced(own, billsec, notes, f"no origination rate for {digits or number}", account)
    carrier_cost = await _trunk_cost(read, trunk_id, digits, billsec, notes, account)
    if account.reseller_id is not None:
        bought = _origination_of(_Prefixed(account, "r_")) if digits else None
        what = f"no buy rate for {digits or number} for reseller {account.reseller_number}"
        cost = carrier_debit = _priced(bought, billsec, notes, what, None)
    else:
        carrier_debit, cost = debit, carrier_cost
    return replace(
        nothing,
        code=own.code if own else "",
        destination=own.destination if own else "",
        rate_group_id=account.rate_group_id,
        debit=debit,
        cost=cost,
        carrier_debit=carrier_debit,
        carrier_cost=carrier_cost,
        note="; ".join(notes)[:NOTE_MAX],
        reseller_id=account.reseller_id,
    )


def _priced(
    rate: Rate | None, billsec: int, notes: list[str], missing: str, account: Any
) -> Decimal:
    if rate is None:
        if account is not None and account.rate_group_id is None:
            missing += f" (account {account.number} has no rate group)"
        notes.append(missing)
        return exact(0)
    return charge(rate, billsec)


async def _trunk_cost(
    read: Reader, trunk_id: int | None, digits: str, billsec: int, notes: list[str], row: Any
) -> Decimal:
    if trunk_id is None:
        if billsec > 0:
            notes.append("trunk unknown: no carrier cost")
        return exact(0)
    rate = _termination(_Prefixed(row, "t_")) if digits and row.t_code is not None else None
    if rate is None:
        names = await read(_TRUNK_NAME, {"trunk": trunk_id})
        name = names[0].name if names else f"#{trunk_id}"
        notes.append(f"no termination rate for {digits} on trunk {name}")
        return exact(0)
    return charge(rate, billsec)
