"""A new port request, checked in full before anything is stored: every problem at once, per
field and per number, in words; and the working days a porting date is counted in.

Working days are Monday to Friday without the public holidays of C2_PORT_COUNTRY (from the
`holidays` package); a desired date must be one, at least C2_PORT_LEAD_DAYS of them ahead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.accounts import normalise_email, target_account
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, Refusal
from c2bot.handlers.loa import CONTRACTS, LINE_TYPES
from c2bot.handlers.permissions import visible_accounts
from c2bot.handlers.portnumbers import (
    MAX_NUMBERS,
    NumberRange,
    aligned,
    alignment_warning,
    read_item,
    split_items,
)
from c2bot.storage.models import PORT_FINAL, Account, Did, PortRange, PortRequest, PortState

DEFAULT_ZONE = "Europe/Amsterdam"
RUNNING = tuple(s for s in PortState if s not in PORT_FINAL)
LINE_WORDS = tuple(LINE_TYPES)
CONTRACT_WORDS = tuple(CONTRACTS)
_POSTCODE_NL = r"^[1-9][0-9]{3} ?[A-Za-z]{2}$"
TEXT_MAX = {"company": 200, "contact": 200, "street": 200, "city": 100, "donor": 100}


# --- working days ------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> dict[date, str]:
    try:
        return dict(holidays.country_holidays(country, years=year).items())
    except NotImplementedError:
        return {}


def holiday_name(day: date, country: str) -> str | None:
    return _holidays(country, day.year).get(day)


def is_working_day(day: date, country: str) -> bool:
    return day.weekday() < 5 and holiday_name(day, country) is None


def add_working_days(day: date, count: int, country: str) -> date:
    """The working day `count` working days after `day` (`day` itself not counted)."""
    moment = day
    while count > 0 or not is_working_day(moment, country):
        moment += timedelta(days=1)
        if is_working_day(moment, country):
            count -= 1
    return moment


def working_days_until(today: date, day: date, country: str) -> int:
    """Working days from today up to `day` (0 on or after it)."""
    count, moment = 0, today
    while moment < day:
        moment += timedelta(days=1)
        count += is_working_day(moment, country)
    return count


def local_day(moment: datetime, zone: str | None) -> date:
    return moment.astimezone(ZoneInfo(zone or DEFAULT_ZONE)).date()


def local_today(ctx: Context, zone: str | None) -> date:
    return local_day(ctx.clock(), zone)


def show_day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


# --- the request as people give it -------------------------------------------------------------


@dataclass(frozen=True)
class NewPort:
    """`/port new` or the modal, as typed: checked by `check_new_port`."""

    company: str = ""
    contact: str = ""
    email: str | None = None
    street: str = ""
    house: str = ""
    addition: str = ""
    postcode: str = ""
    city: str = ""
    donor: str = ""
    donor_customer: str = ""
    contract: str | None = None
    line_type: str | None = None
    numbers: str = ""
    desired_date: str | None = None
    account: str | None = None
    source_ref: str | None = None


@dataclass(frozen=True)
class CheckedPort:
    account_id: int
    account_number: str
    ranges: tuple[NumberRange, ...]
    desired_date: date
    postcode: str
    contract: str
    line_type: str
    email: str | None
    warnings: tuple[str, ...]


class Problems:
    """Every problem of a submission, by field, so all of them are told at once."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, name: str, text: str) -> None:
        self.by_field.setdefault(name, []).append(text)

    def check(self) -> None:
        if not self.by_field:
            return
        lines = [text for texts in self.by_field.values() for text in texts]
        heading = (
            "The port request has a problem:"
            if len(lines) == 1
            else (f"The port request has {len(lines)} problems:")
        )
        message = "\n".join([heading, *(f"- {line}" for line in lines)])
        fields = {name: _joined(texts) for name, texts in self.by_field.items()}
        raise Invalid(message, fields)


def _joined(texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    return f"{len(texts)} problems: " + "; ".join(texts)


async def check_new_port(ctx: Context, request: NewPort) -> CheckedPort:
    """Every problem of a new request, at once (`Invalid` with one entry per field)."""
    problems = Problems()
    async with ctx.sessions() as session:
        account = await _account_or_problem(session, ctx, request.account, problems)
        _check_texts(request, problems)
        postcode = _check_postcode(request.postcode, ctx.settings.port_country, problems)
        email = _check_email(request.email, problems)
        contract = _check_choice(
            request.contract or "terminate", CONTRACT_WORDS, "contract", problems
        )
        ranges = _read_numbers(request.numbers, ctx.settings.port_country, problems)
        await _check_taken(session, ctx, ranges, account, problems)
        zone = account.timezone if account else None
        desired = _check_date(ctx, request.desired_date, zone, problems)
    line_type = _check_choice(
        request.line_type or _guess_line_type(ranges), LINE_WORDS, "line", problems
    )
    problems.check()
    assert account is not None and desired is not None
    warnings = tuple(alignment_warning(r) for r in ranges if not aligned(r))
    return CheckedPort(
        account_id=account.id,
        account_number=account.number,
        ranges=tuple(ranges),
        desired_date=desired,
        postcode=postcode,
        contract=contract,
        line_type=line_type,
        email=email,
        warnings=warnings,
    )


async def _account_or_problem(
    session: AsyncSession, ctx: Context, number: str | None, problems: Problems
) -> Account | None:
    try:
        return await target_account(session, ctx, number, "the port request")
    except Refusal as refusal:
        problems.add("account", refusal.message)
        return None


def _check_texts(request: NewPort, problems: Problems) -> None:
    required = {
        "company": (request.company, "the company name"),
        "contact": (request.contact, "the contact person"),
        "street": (request.street, "the street"),
        "city": (request.city, "the city"),
        "donor": (request.donor, "the current operator (donor)"),
    }
    for name, (value, what) in required.items():
        if not value.strip():
            problems.add(name, f"Give {what}.")
        elif len(value.strip()) > TEXT_MAX[name]:
            problems.add(name, f"{what.capitalize()} is longer than {TEXT_MAX[name]} characters.")
    if not request.house.strip().isdigit() or len(request.house.strip()) > 5:
        problems.add("house", f"The house number must be a number (got {request.house.strip()!r}).")
    if len(request.addition.strip()) > 10:
        problems.add("addition", "The house number addition is longer than 10 characters.")
    if len(request.donor_customer.strip()) > 64:
        problems.add("donor_customer", "The customer number is longer than 64 characters.")


def _check_postcode(text: str, country: str, problems: Problems) -> str:
    postcode = text.strip().upper()
    if country == "NL" and not re.match(_POSTCODE_NL, postcode):
        problems.add("postcode", f"The postcode must look like 1234AB (got {text.strip()!r}).")
    elif not postcode or len(postcode) > 10:
        problems.add("postcode", "Give the postcode (at most 10 characters).")
    return postcode.replace(" ", "") if country == "NL" else postcode


def _check_email(text: str | None, problems: Problems) -> str | None:
    if not text or not text.strip():
        return None
    try:
        return normalise_email(text)
    except Invalid as invalid:
        problems.add("email", invalid.message)
        return None


def _check_choice(value: str, choices: Sequence[str], name: str, problems: Problems) -> str:
    word = value.strip().lower()
    if word not in choices:
        problems.add(name, f"{name} must be one of {', '.join(choices)} (got {value!r}).")
    return word


def _guess_line_type(ranges: Sequence[NumberRange]) -> str:
    if any(r.is_range for r in ranges):
        return "range"
    return "single" if len(ranges) <= 1 else "multi"


def _read_numbers(text: str, country: str, problems: Problems) -> list[NumberRange]:
    items = split_items(text)
    if not items:
        problems.add("numbers", "Give at least one number or range.")
        return []
    ranges: list[NumberRange] = []
    for item in items:
        found = read_item(item, country)
        if isinstance(found, list):
            for problem in found:
                problems.add("numbers", str(problem))
            continue
        clash = next((r for r in ranges if r.overlaps(found)), None)
        if clash is not None:
            problems.add("numbers", f"{found.text} overlaps {clash.text} in this request")
        ranges.append(found)
    total = sum(r.count for r in ranges)
    if total > MAX_NUMBERS:
        problems.add("numbers", f"{total} numbers; one request takes at most {MAX_NUMBERS}")
    return ranges


async def _check_taken(
    session: AsyncSession,
    ctx: Context,
    ranges: Sequence[NumberRange],
    account: Account | None,
    problems: Problems,
) -> None:
    """No number may be ours already (a DID) or in another running request."""
    visible = await visible_accounts(session, ctx.actor)
    for found in ranges:
        for number, owner in await dids_in(session, found):
            if account is not None and owner == account.id:
                problems.add("numbers", f"{number} is already one of this account's numbers")
            else:
                problems.add(
                    "numbers", f"{number} is already ported: it is in use on this platform"
                )
        for request_id, owner, first, last in await _running_in(session, found):
            if visible is None or owner in visible:
                where = first if first == last else f"{first} to {last}"
                problems.add(
                    "numbers", f"{found.text} is already in port request #{request_id} ({where})"
                )
            else:
                problems.add("numbers", f"{found.text} is already in another running port request")


async def dids_in(session: AsyncSession, found: NumberRange, limit: int = 5) -> list[Any]:
    rows = await session.execute(
        select(Did.number, Did.account_id)
        .where(
            func.length(Did.number) == len(found.first),
            Did.number >= found.first,
            Did.number <= found.last,
        )
        .order_by(Did.number)
        .limit(limit)
    )
    return list(rows.all())


async def _running_in(
    session: AsyncSession, found: NumberRange, exclude: int | None = None
) -> list[Any]:
    stmt = (
        select(PortRequest.id, PortRequest.account_id, PortRange.first, PortRange.last)
        .join(PortRange, PortRange.request_id == PortRequest.id)
        .where(
            PortRequest.state.in_(RUNNING),
            func.length(PortRange.first) == len(found.first),
            PortRange.first <= found.last,
            PortRange.last >= found.first,
        )
        .order_by(PortRequest.id)
        .limit(5)
    )
    if exclude is not None:
        stmt = stmt.where(PortRequest.id != exclude)
    return list((await session.execute(stmt)).all())


def _check_date(
    ctx: Context, text: str | None, zone: str | None, problems: Problems
) -> date | None:
    if not text or not text.strip():
        problems.add("date", "Give the desired porting date (YYYY-MM-DD).")
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        problems.add("date", f"{text.strip()!r} is not a date: write it as YYYY-MM-DD.")
        return None
    country, lead = ctx.settings.port_country, ctx.settings.port_lead_days
    today = local_today(ctx, zone)
    problem = date_problem(day, today, lead, country)
    if problem:
        problems.add("date", problem)
    return day


def date_problem(day: date, today: date, lead: int, country: str) -> str | None:
    """Why `day` cannot be the desired porting date, or None."""
    if day < today:
        return f"{day.isoformat()} is in the past."
    if day.weekday() >= 5:
        return f"{day.isoformat()} is a {day:%A}: porting happens on working days."
    holiday = holiday_name(day, country)
    if holiday:
        return f"{day.isoformat()} is a public holiday ({holiday}): pick a working day."
    earliest = add_working_days(today, lead, country)
    if day < earliest:
        return (
            f"{day.isoformat()} is too soon: porting needs {lead} working days, so the earliest "
            f"date is {earliest.isoformat()} ({show_day(earliest)})."
        )
    return None
