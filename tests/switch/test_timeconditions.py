"""Time conditions: rows matched in the account's time zone across day, week, year and DST
boundaries, holidays, priorities and forcing; the row parser's normal forms and refusals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from c2bot.storage.models import TimeCondition, TimeConditionRow
from c2bot.switch.timeconditions import (
    check_row_fields,
    choose,
    describe_row,
    holiday_calendar,
    row_matches,
)

AMS = "Europe/Amsterdam"


@dataclass(frozen=True)
class Row:
    kind: str = "time"
    start_time: str = ""
    end_time: str = ""
    weekdays: str = ""
    monthdays: str = ""
    months: str = ""
    years: str = ""
    holiday_country: str = ""
    priority: int = 10


@dataclass
class Condition:
    rows: list[Row] = field(default_factory=list)
    force: str = "auto"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, tz: str = AMS) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def matches(row: Row, when: str) -> bool:
    return row_matches(row, local(when))


OFFICE = Row(start_time="09:00", end_time="17:00", weekdays="mon-fri")


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-11-23 09:00:00", True),  # Monday, the first second
        ("2026-11-23 08:59:59", False),
        ("2026-11-23 16:59:59", True),
        ("2026-11-23 17:00:00", False),  # the end is exclusive
        ("2026-11-27 12:00:00", True),  # Friday
        ("2026-11-28 12:00:00", False),  # Saturday
        ("2026-11-29 12:00:00", False),  # Sunday
    ],
)
def test_office_hours_day_and_week_edges(when: str, expected: bool) -> None:
    """mon-fri 09:00-17:00: start included, end excluded, weekend out."""
    assert matches(OFFICE, when) is expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-11-23 21:59:59", False),
        ("2026-11-23 22:00:00", True),
        ("2026-11-23 23:59:59", True),
        ("2026-11-24 00:00:00", True),
        ("2026-11-24 05:59:59", True),
        ("2026-11-24 06:00:00", False),
    ],
)
def test_range_crossing_midnight(when: str, expected: bool) -> None:
    """22:00-06:00 covers the evening and the early morning."""
    assert matches(Row(start_time="22:00", end_time="06:00"), when) is expected


def test_midnight_range_checks_the_other_fields_on_the_day_itself() -> None:
    """fri 22:00-06:00: Friday evening and Friday early morning; Saturday 02:00 is Saturday."""
    night = Row(start_time="22:00", end_time="06:00", weekdays="fri")
    assert matches(night, "2026-11-27 23:00:00")
    assert matches(night, "2026-11-27 02:00:00")
    assert not matches(night, "2026-11-28 02:00:00")


def test_end_at_midnight() -> None:
    evening = Row(start_time="18:00", end_time="24:00")
    assert matches(evening, "2026-11-23 23:59:59")
    assert not matches(evening, "2026-11-24 00:00:00")


@pytest.mark.parametrize(
    ("weekdays", "day", "expected"),
    [
        ("fri-mon", "2026-11-27", True),  # Fri
        ("fri-mon", "2026-11-29", True),  # Sun
        ("fri-mon", "2026-11-30", True),  # Mon
        ("fri-mon", "2026-11-24", False),  # Tue
        ("sat-sun", "2026-11-28", True),
        ("sat-sun", "2026-11-27", False),
        ("mon,wed", "2026-11-25", True),
        ("mon,wed", "2026-11-24", False),
    ],
)
def test_weekday_ranges_wrap_over_the_week(weekdays: str, day: str, expected: bool) -> None:
    assert matches(Row(weekdays=weekdays), f"{day} 12:00:00") is expected


def test_month_day_and_month_ranges_wrap() -> None:
    late = Row(monthdays="25-5")
    assert matches(late, "2026-01-31 12:00:00")
    assert matches(late, "2026-02-05 12:00:00")
    assert not matches(late, "2026-02-06 12:00:00")
    winter = Row(months="nov-feb")
    assert matches(winter, "2026-12-31 12:00:00")
    assert matches(winter, "2027-01-01 12:00:00")
    assert not matches(winter, "2027-03-01 00:00:00")


def test_year_boundary_is_the_accounts_not_utcs() -> None:
    """At 23:30 UTC on 31 December it is already next year in Amsterdam."""
    this_year = Condition([Row(years="2026")])
    assert choose(this_year, utc("2026-12-31 22:59:00"), AMS).row is not None
    chosen = choose(this_year, utc("2026-12-31 23:30:00"), AMS)
    assert chosen.row is None
    assert "Fri 2027-01-01 00:30" in chosen.reason
    assert choose(this_year, utc("2026-12-31 23:30:00"), "UTC").row is not None


def test_spring_forward_day() -> None:
    """On 29 March 2026 Amsterdam moves from UTC+1 to UTC+2: 07:30 UTC is 09:30, not 08:30."""
    open_daily = Condition([Row(start_time="09:00", end_time="17:00")])
    assert choose(open_daily, utc("2026-03-28 07:30:00"), AMS).row is None
    assert choose(open_daily, utc("2026-03-29 07:30:00"), AMS).row is not None
    assert choose(open_daily, utc("2026-03-29 14:59:00"), AMS).row is not None
    assert choose(open_daily, utc("2026-03-29 15:00:00"), AMS).row is None


def test_fall_back_day_repeats_the_hour() -> None:
    """On 25 October 2026 02:00-03:00 happens twice in Amsterdam; both times match."""
    small_hours = Condition([Row(start_time="02:00", end_time="03:00")])
    assert choose(small_hours, utc("2026-10-25 00:30:00"), AMS).row is not None  # 02:30 CEST
    assert choose(small_hours, utc("2026-10-25 01:30:00"), AMS).row is not None  # 02:30 CET
    assert choose(small_hours, utc("2026-10-25 02:00:00"), AMS).row is None  # 03:00 CET


def test_holiday_row_wins_by_priority_and_names_the_day() -> None:
    closed = Row(kind="holiday", holiday_country="NL", priority=1)
    condition = Condition([OFFICE, closed])
    kings_day = choose(condition, utc("2026-04-27 08:00:00"), AMS)  # Monday, 10:00 local
    assert kings_day.row is closed and kings_day.number == 2
    assert "King's Day" in kings_day.reason and "priority 1" in kings_day.reason
    next_day = choose(condition, utc("2026-04-28 08:00:00"), AMS)
    assert next_day.row is OFFICE and next_day.number == 1


def test_holidays_of_a_region() -> None:
    """Epiphany is a public holiday in Bavaria, not in the Netherlands."""
    assert matches(Row(kind="holiday", holiday_country="DE-BY"), "2026-01-06 10:00:00")
    assert not matches(Row(kind="holiday", holiday_country="NL"), "2026-01-06 10:00:00")
    half_day = Row(kind="holiday", holiday_country="NL", start_time="12:00", end_time="24:00")
    assert not matches(half_day, "2026-12-25 11:00:00")
    assert matches(half_day, "2026-12-25 13:00:00")


def test_holiday_calendars_are_cached_per_country_and_year() -> None:
    holiday_calendar.cache_clear()
    row = Row(kind="holiday", holiday_country="BE")
    for day in range(1, 20):
        matches(row, f"2026-07-{day:02d} 12:00:00")
    info = holiday_calendar.cache_info()
    assert info.misses == 1 and info.hits >= 18


def test_lowest_priority_number_wins_whatever_the_order() -> None:
    broad = Row(weekdays="mon-sun", priority=20)
    narrow = Row(weekdays="mon", priority=5)
    other = Row(weekdays="mon", priority=5, months="jan")  # same priority, later row
    chosen = choose(Condition([broad, other, narrow]), utc("2026-01-05 12:00:00"), AMS)
    assert chosen.row is other and chosen.number == 2  # ties go to the earlier row
    assert choose(Condition([broad, narrow]), utc("2026-01-06 12:00:00"), AMS).row is broad


def test_no_row_matches_means_failover_in_words() -> None:
    chosen = choose(Condition([OFFICE]), utc("2026-11-28 12:00:00"), AMS)
    assert chosen.row is None and chosen.number == 0
    assert chosen.reason == "Sat 2026-11-28 13:00 Europe/Amsterdam matches no row: the failover"


def test_forcing() -> None:
    night = utc("2026-11-28 02:00:00")
    late = Row(weekdays="sun", priority=30)
    forced_open = choose(Condition([late, OFFICE], force="open"), night, AMS)
    assert forced_open.row is OFFICE and "forced open" in forced_open.reason
    day = utc("2026-11-23 10:00:00")
    forced_closed = choose(Condition([OFFICE], force="closed"), day, AMS)
    assert forced_closed.row is None and "forced closed" in forced_closed.reason
    assert choose(Condition([], force="open"), day, AMS).row is None


def test_orm_rows_are_evaluated_as_they_are() -> None:
    """The catalogue's own objects go straight in (the evaluator reads only fields)."""
    fields = check_row_fields(start_time="9", end_time="17", weekdays="Monday-Friday")
    row = TimeConditionRow(priority=1, dest_type="ivr", dest_value="main", **vars(fields))
    condition = TimeCondition(force="auto", rows=[row])
    assert choose(condition, utc("2026-11-23 08:00:00"), AMS).row is row


def test_check_row_fields_normalises() -> None:
    fields = check_row_fields(
        start_time="9",
        end_time="1730",
        weekdays="Monday - Friday, sun",
        monthdays="25-5",
        months="November-Feb",
        years="2026-2027",
    )
    assert (fields.start_time, fields.end_time) == ("09:00", "17:30")
    assert (fields.weekdays, fields.monthdays, fields.months, fields.years) == (
        "mon-fri,sun",
        "25-5",
        "nov-feb",
        "2026-2027",
    )
    assert check_row_fields(kind="Holiday", holiday_country="de-by").holiday_country == "DE-BY"
    assert check_row_fields(weekdays="any").weekdays == ""
    assert describe_row(fields) == "mon-fri,sun 25-5 nov-feb 2026-2027 09:00-17:30"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"start_time": "09:00"}, "both a start and an end"),
        ({"start_time": "25:00", "end_time": "26:00"}, "hours go 00-23"),
        ({"start_time": "9h", "end_time": "17"}, "HH:MM"),
        ({"start_time": "09:00", "end_time": "09:00"}, "starts where it ends"),
        ({"weekdays": "mon-funday"}, "'funday' is not one of mon"),
        ({"weekdays": "1-5"}, "not one of mon"),
        ({"monthdays": "0-5"}, "0 is outside 1-31"),
        ({"months": "13"}, "outside 1-12"),
        ({"years": "2027-2026"}, "runs backwards"),
        ({"weekdays": "mon,,fri"}, "empty part"),
        ({"kind": "weekly"}, "time or holiday"),
        ({"kind": "holiday"}, "needs a country"),
        ({"kind": "holiday", "holiday_country": "XX"}, "no holiday calendar for XX"),
        ({"kind": "holiday", "holiday_country": "DE-ZZ"}, "DE region ZZ"),
        ({"holiday_country": "NL"}, "kind holiday only"),
        ({"monthdays": "1,3,5,7,9,11"}, "longer than 8"),
    ],
)
def test_check_row_fields_refuses_in_words(fields: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check_row_fields(**fields)
