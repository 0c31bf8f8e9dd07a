"""Time conditions: which row of a time condition routes a call at a given moment.

Pure evaluation, no database: the dialplan (and `/route test`, which runs the same code) hands
in the condition's force setting and rows, the moment in UTC and the account's time zone.

Every field of a row is checked against the local date and time of the call, as FreeSWITCH's
own time-of-day and weekday conditions are: a range crossing midnight (22:00-06:00) covers the
evening and the early morning of each day the other fields allow. Ranges of weekdays, month
days and months may wrap (fri-mon, 25-5, nov-feb); years may not. An empty field matches
anything. A holiday row also needs the date to be a public holiday of its country (the
`holidays` package; calendars are cached per country and year, they never change at run time).

`check_row_fields` is the one parser for what a person types into a row; the catalogue stores
what it returns, so the evaluator only ever reads well-formed fields.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FULL_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
KINDS = ("time", "holiday")
FORCES = ("auto", "open", "closed")
# Widths of the row's columns (storage/models.py TimeConditionRow): a value that does not fit
# is refused here rather than cut short by the database.
WIDTHS = {"weekdays": 16, "monthdays": 8, "months": 8, "years": 10, "holiday_country": 8}
_CLOCK = re.compile(r"^(\d{1,2})(?::?(\d{2}))?$")
_COUNTRY = re.compile(r"^([A-Za-z]{2,3})(?:-([A-Za-z0-9]{1,3}))?$")


class RowLike(Protocol):
    """What the evaluator reads of a row (an ORM row or the dialplan's own record)."""

    @property
    def kind(self) -> str: ...
    @property
    def start_time(self) -> str: ...
    @property
    def end_time(self) -> str: ...
    @property
    def weekdays(self) -> str: ...
    @property
    def monthdays(self) -> str: ...
    @property
    def months(self) -> str: ...
    @property
    def years(self) -> str: ...
    @property
    def holiday_country(self) -> str: ...
    @property
    def priority(self) -> int: ...


class ConditionLike(Protocol):
    @property
    def force(self) -> str: ...
    @property
    def rows(self) -> Sequence[RowLike]: ...


@dataclass(frozen=True)
class RowFields:
    """A row's fields as stored: normalised, each one checked."""

    kind: str = "time"
    start_time: str = ""
    end_time: str = ""
    weekdays: str = ""
    monthdays: str = ""
    months: str = ""
    years: str = ""
    holiday_country: str = ""


@dataclass(frozen=True)
class Choice:
    """The row that routes the call (None: the failover), its place, and why, in words."""

    row: RowLike | None
    number: int  # 1-based position among the rows as given; 0 for the failover
    reason: str
    local: datetime


# --- parsing what people type -----------------------------------------------------------------


def parse_clock(text: str, *, end: bool = False) -> int:
    """'9', '09:00', '0900', '17:30' -> minutes after midnight; '24:00' only as an end."""
    match = _CLOCK.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time of day; write it as HH:MM, e.g. 09:00.")
    hours, minutes = int(match[1]), int(match[2] or 0)
    if hours == 24 and minutes == 0 and end:
        return 24 * 60
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r} is not a time of day: hours go 00-23, minutes 00-59.")
    return hours * 60 + minutes


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _word_index(word: str, names: Sequence[str], full: Sequence[str], low: int, high: int) -> int:
    """A day/month word or number -> its number (low..high)."""
    word = word.strip().lower()
    if word.isdigit() and names is not WEEKDAYS:
        value = int(word)
        if low <= value <= high:
            return value
        raise ValueError(f"{word} is outside {low}-{high}.")
    for table in (names, full):
        if word in table:
            return table.index(word) + low
    raise ValueError(f"{word!r} is not one of {', '.join(names)}.")


def _parse_spans(
    text: str,
    what: str,
    names: Sequence[str],
    full: Sequence[str],
    low: int,
    high: int,
    *,
    wraps: bool = True,
) -> list[tuple[int, int]]:
    """'mon-fri,sun' -> [(1, 5), (7, 7)]; each part a value or an inclusive range."""
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"The {what} {text!r} has an empty part between commas.")
        first, sep, last = part.partition("-")
        try:
            start = _word_index(first, names, full, low, high)
            stop = _word_index(last, names, full, low, high) if sep else start
        except ValueError as error:
            raise ValueError(f"The {what} {text!r}: {error}") from None
        if stop < start and not wraps:
            raise ValueError(f"The {what} {part!r} runs backwards; put the earlier one first.")
        spans.append((start, stop))
    return spans


def _spans_text(spans: list[tuple[int, int]], names: Sequence[str] | None, low: int) -> str:
    def word(value: int) -> str:
        return names[value - low] if names is not None else str(value)

    return ",".join(word(a) if a == b else f"{word(a)}-{word(b)}" for a, b in spans)


@functools.lru_cache(maxsize=1024)
def _weekday_spans(text: str) -> list[tuple[int, int]]:
    return _parse_spans(text, "weekdays", WEEKDAYS, FULL_WEEKDAYS, 1, 7)


@functools.lru_cache(maxsize=1024)
def _monthday_spans(text: str) -> list[tuple[int, int]]:
    return _parse_spans(text, "days of the month", (), (), 1, 31)


@functools.lru_cache(maxsize=1024)
def _month_spans(text: str) -> list[tuple[int, int]]:
    return _parse_spans(text, "months", MONTHS, FULL_MONTHS, 1, 12)


@functools.lru_cache(maxsize=1024)
def _year_spans(text: str) -> list[tuple[int, int]]:
    return _parse_spans(text, "years", (), (), 1900, 2999, wraps=False)


def _split_country(text: str) -> tuple[str, str | None]:
    match = _COUNTRY.match(text.strip())
    if not match:
        raise ValueError(
            f"{text!r} is not a country for holidays; give a country code such as NL, "
            "or a country and region such as DE-BY."
        )
    return match[1].upper(), match[2].upper() if match[2] else None


@functools.lru_cache(maxsize=512)
def holiday_calendar(country: str, year: int) -> dict[date, str]:
    """The public holidays of `country` (NL, DE-BY) in `year`, date -> name."""
    code, region = _split_country(country)
    try:
        found = holidays.country_holidays(code, subdiv=region, years=year)
    except NotImplementedError:
        where = f"{code} region {region}" if region else code
        raise ValueError(
            f"There is no holiday calendar for {where}; use a country code such as NL, BE, DE "
            "(or DE-BY for a region)."
        ) from None
    return dict(found.items())


def check_row_fields(
    *,
    kind: str = "time",
    start_time: str = "",
    end_time: str = "",
    weekdays: str = "",
    monthdays: str = "",
    months: str = "",
    years: str = "",
    holiday_country: str = "",
) -> RowFields:
    """A row as a person typed it -> the row as stored; ValueError with a sentence if not."""
    kind = (kind or "time").strip().lower()
    if kind not in KINDS:
        raise ValueError(f"A row's kind is time or holiday, not {kind!r}.")
    start_time, end_time = start_time.strip(), end_time.strip()
    if bool(start_time) != bool(end_time):
        raise ValueError("Give both a start and an end time (e.g. 09:00 and 17:00), or neither.")
    clock = ("", "")
    if start_time:
        start, end = parse_clock(start_time), parse_clock(end_time, end=True)
        if start == end % (24 * 60):
            raise ValueError(
                f"{start_time}-{end_time} starts where it ends; leave both times empty for "
                "the whole day."
            )
        clock = (_clock_text(start), _clock_text(end))
    fields = RowFields(
        kind=kind,
        start_time=clock[0],
        end_time=clock[1],
        weekdays=_normal(weekdays, lambda t: _spans_text(_weekday_spans(t), WEEKDAYS, 1)),
        monthdays=_normal(monthdays, lambda t: _spans_text(_monthday_spans(t), None, 1)),
        months=_normal(months, lambda t: _spans_text(_month_spans(t), MONTHS, 1)),
        years=_normal(years, lambda t: _spans_text(_year_spans(t), None, 1900)),
        holiday_country=_country(kind, holiday_country),
    )
    for name, width in WIDTHS.items():
        if len(getattr(fields, name)) > width:
            raise ValueError(f"The {name} {getattr(fields, name)!r} is longer than {width} signs.")
    return fields


def _normal(text: str, normalise: Callable[[str], str]) -> str:
    text = text.strip().lower().replace(" ", "")
    if not text or text in ("*", "any"):
        return ""
    return normalise(text)


def _country(kind: str, text: str) -> str:
    text = text.strip()
    if kind == "time":
        if text:
            raise ValueError("A holiday country goes with kind holiday only.")
        return ""
    if not text:
        raise ValueError("A holiday row needs a country, e.g. NL (or DE-BY for a region).")
    code, region = _split_country(text)
    country = f"{code}-{region}" if region else code
    holiday_calendar(country, datetime.now().year)  # refuses an unknown country or region
    return country


# --- evaluation -------------------------------------------------------------------------------


def _in_spans(value: int, spans: list[tuple[int, int]]) -> bool:
    for start, stop in spans:
        if start <= stop:
            if start <= value <= stop:
                return True
        elif value >= start or value <= stop:  # wraps: fri-mon, 25-5, nov-feb
            return True
    return False


def _in_clock(row: RowLike, local: datetime) -> bool:
    if not row.start_time:
        return True
    start, end = parse_clock(row.start_time), parse_clock(row.end_time, end=True)
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    start_s, end_s = start * 60, end * 60
    if start_s < end_s:
        return start_s <= seconds < end_s
    return seconds >= start_s or seconds < end_s  # crosses midnight: 22:00-06:00


def holiday_name(row: RowLike, day: date) -> str | None:
    return holiday_calendar(row.holiday_country, day.year).get(day)


def row_matches(row: RowLike, local: datetime) -> bool:
    """Whether every field of the row allows this local date and time."""
    if row.kind == "holiday" and holiday_name(row, local.date()) is None:
        return False
    checks = (
        (row.weekdays, _weekday_spans, local.isoweekday()),
        (row.monthdays, _monthday_spans, local.day),
        (row.months, _month_spans, local.month),
        (row.years, _year_spans, local.year),
    )
    for text, spans, value in checks:
        if text and not _in_spans(value, spans(text)):
            return False
    return _in_clock(row, local)


def describe_row(row: RowLike) -> str:
    """'mon-fri 09:00-17:00', 'holidays NL', 'always'."""
    parts = []
    if row.kind == "holiday":
        parts.append(f"holidays {row.holiday_country}")
    parts += [text for text in (row.weekdays, row.monthdays, row.months, row.years) if text]
    if row.start_time:
        parts.append(f"{row.start_time}-{row.end_time}")
    return " ".join(parts) or "always"


def _moment(local: datetime, tz: str) -> str:
    return f"{local:%a %Y-%m-%d %H:%M} {tz}"


def choose(tc: ConditionLike, now_utc: datetime, tz: str) -> Choice:
    """The row that routes a call at `now_utc` in time zone `tz`, and why, in a sentence.

    The lowest priority number among matching rows wins (ties: the earlier row). Forced open
    takes the lowest-numbered row whatever the time; forced closed goes to the failover.
    """
    local = now_utc.astimezone(ZoneInfo(tz))
    when = _moment(local, tz)
    ranked = sorted(enumerate(tc.rows, 1), key=lambda item: (item[1].priority, item[0]))
    if tc.force == "closed":
        return Choice(None, 0, f"forced closed, so the failover ({when})", local)
    if tc.force == "open":
        if not ranked:
            return Choice(None, 0, f"forced open, but it has no rows: the failover ({when})", local)
        number, row = ranked[0]
        return Choice(
            row,
            number,
            f"forced open: row {number} ({describe_row(row)}, priority {row.priority}) "
            f"whatever the time ({when})",
            local,
        )
    for number, row in ranked:
        if row_matches(row, local):
            extra = ""
            if row.kind == "holiday":
                extra = f", {holiday_name(row, local.date())}"
            return Choice(
                row,
                number,
                f"{when} matches row {number} ({describe_row(row)}, priority {row.priority}"
                f"{extra})",
                local,
            )
    return Choice(None, 0, f"{when} matches no row: the failover", local)
