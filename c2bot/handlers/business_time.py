"""First-response deadlines: wall-clock targets and business-day targets in an account's zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from c2bot.config.settings import Target

WEEKEND = (5, 6)


def due_at(start: datetime, target: Target, zone: str, hours: tuple[time, time]) -> datetime:
    """When a target started at `start` passes.

    Minute targets run on the wall clock (an outage does not wait for Monday); a business day is
    one working day's length of working time, counted only inside business hours on weekdays.
    """
    if not target.business_days:
        return start + timedelta(minutes=target.minutes)
    opens, closes = hours
    day_length = _span(opens, closes)
    return add_business_time(start, day_length * target.business_days, ZoneInfo(zone), hours)


def add_business_time(
    start: datetime, amount: timedelta, zone: ZoneInfo, hours: tuple[time, time]
) -> datetime:
    opens, closes = hours
    moment = start.astimezone(zone)
    remaining = amount
    while True:
        day_open = moment.replace(hour=opens.hour, minute=opens.minute, second=0, microsecond=0)
        day_close = moment.replace(hour=closes.hour, minute=closes.minute, second=0, microsecond=0)
        if moment.weekday() in WEEKEND or moment >= day_close:
            moment = _next_day_start(moment, opens)
            continue
        moment = max(moment, day_open)
        available = day_close - moment
        if remaining <= available:
            return (moment + remaining).astimezone(UTC)
        remaining -= available
        moment = _next_day_start(moment, opens)


def _next_day_start(moment: datetime, opens: time) -> datetime:
    following = (moment + timedelta(days=1)).date()
    naive = datetime.combine(following, opens)
    return naive.replace(tzinfo=moment.tzinfo)


def _span(opens: time, closes: time) -> timedelta:
    day = datetime(2000, 1, 1)
    return datetime.combine(day, closes) - datetime.combine(day, opens)
