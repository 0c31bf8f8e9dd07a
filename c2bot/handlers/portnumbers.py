"""The numbers of a port request: read as people write them, checked with phonenumbers.

An item is one number (`0201234567`), a range (`0301234500-0301234599`) or a start and a count
(`0301234500+100`), separated by commas, semicolons or new lines. Each item becomes a
`NumberRange` of two E.164 strings of equal length, so ranges compare as strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

MAX_NUMBERS = 10_000  # one request; a larger move is several requests
MIN_RANGE_DIGITS = 6  # `020-1234567` is one number written with a dash, not a range
_SEPARATORS = re.compile(r"[,;\n]+")
_COUNT = re.compile(r"^(?P<start>.*\d)\s*\+\s*(?P<count>\d{1,6})$")


@dataclass(frozen=True)
class NumberRange:
    """One number (first == last) or a range of numbers, both ends in E.164."""

    text: str
    first: str
    last: str

    @property
    def count(self) -> int:
        return int(self.last[1:]) - int(self.first[1:]) + 1

    @property
    def is_range(self) -> bool:
        return self.first != self.last

    def overlaps(self, other: NumberRange) -> bool:
        same_length = len(self.first) == len(other.first)
        return same_length and self.first <= other.last and other.first <= self.last

    def numbers(self) -> Iterator[str]:
        start, width = int(self.first[1:]), len(self.first) - 1
        for value in range(start, start + self.count):
            yield "+" + str(value).zfill(width)

    def label(self) -> str:
        return self.first if not self.is_range else f"{self.first} to {self.last} ({self.count})"


@dataclass(frozen=True)
class ItemProblem:
    """What is wrong with one item, as the person wrote it."""

    text: str
    problem: str

    def __str__(self) -> str:
        return (
            self.problem if self.problem.startswith(self.text) else f"{self.text}: {self.problem}"
        )


def split_items(text: str) -> list[str]:
    return [item.strip() for item in _SEPARATORS.split(text) if item.strip()]


def read_item(item: str, country: str) -> NumberRange | list[ItemProblem]:
    """One item -> its range, or every problem with it."""
    counted = _COUNT.match(item)
    if counted:
        return _read_counted(item, counted["start"], int(counted["count"]), country)
    ends = _range_ends(item)
    if ends is None:
        number = _read_number(item, item, country)
        return number if isinstance(number, list) else NumberRange(item, number, number)
    return _read_range(item, ends[0], ends[1], country)


def _range_ends(item: str) -> tuple[str, str] | None:
    """Where a dash splits an item into two whole numbers (both ends long enough)."""
    candidates = []
    for at in [m.start() for m in re.finditer("-", item)]:
        left, right = item[:at].strip(), item[at + 1 :].strip()
        if _digits(left) >= MIN_RANGE_DIGITS and _digits(right) >= MIN_RANGE_DIGITS:
            candidates.append((left, right))
    if not candidates:
        return None
    equal = [c for c in candidates if _digits(c[0]) == _digits(c[1])]
    return (equal or candidates)[0]


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _read_counted(
    item: str, start: str, count: int, country: str
) -> NumberRange | list[ItemProblem]:
    first = _read_number(item, start, country)
    if isinstance(first, list):
        return first
    if count < 1:
        return [ItemProblem(item, "the count must be at least 1")]
    last = "+" + str(int(first[1:]) + count - 1)
    if len(last) != len(first):
        return [ItemProblem(item, f"{count} numbers from {first} run past the last number")]
    return _checked_range(item, first, last, country)


def _read_range(item: str, start: str, end: str, country: str) -> NumberRange | list[ItemProblem]:
    first, last = _read_number(item, start, country), _read_number(item, end, country)
    if isinstance(first, str) and isinstance(last, str):
        if len(first) != len(last):
            return [ItemProblem(item, "start and end differ in length: give both in full")]
        return _checked_range(item, first, last, country)
    problems = [p for side in (first, last) if isinstance(side, list) for p in side]
    if _digits(start) != _digits(end):
        lengths = f"{_digits(start)} and {_digits(end)} digits"
        problems.insert(
            0, ItemProblem(item, f"start and end differ in length ({lengths}): give both in full")
        )
    return problems


def _checked_range(
    item: str, first: str, last: str, country: str
) -> NumberRange | list[ItemProblem]:
    if last < first:
        return [ItemProblem(item, "the end comes before the start")]
    found = NumberRange(item, first, last)
    if found.count > MAX_NUMBERS:
        return [
            ItemProblem(item, f"{found.count} numbers; one request takes at most {MAX_NUMBERS}")
        ]
    problem = _country_problem(last, country)
    return [ItemProblem(item, f"the end {last} {problem}")] if problem else found


def _read_number(item: str, text: str, country: str) -> str | list[ItemProblem]:
    """One number -> E.164, if it is a valid, portable number of `country`."""
    written = text.strip()
    raw = "+" + written[2:] if written.startswith("00") else written
    try:
        parsed = phonenumbers.parse(raw, country)
    except NumberParseException:
        return [ItemProblem(item, f"{written} is not a phone number")]
    if not phonenumbers.is_valid_number(parsed):
        return [ItemProblem(item, f"{written} is not a valid {country} number")]
    e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    problem = _country_problem(e164, country)
    return [ItemProblem(item, f"{written} {problem}")] if problem else e164


def _country_problem(e164: str, country: str) -> str | None:
    """Why a valid number cannot be ported here, or None."""
    parsed = phonenumbers.parse(e164)
    if not phonenumbers.is_valid_number(parsed):
        return f"is not a valid {country} number"
    region = phonenumbers.region_code_for_number(parsed) or "??"
    if region != country:
        # The geocoder's data takes a second to load: only a foreign number needs it.
        from phonenumbers import geocoder

        where = geocoder.country_name_for_number(parsed, "en") or region
        return f"is a number in {where}, not {country}: only {country} numbers are ported here"
    if phonenumbers.number_type(parsed) == PhoneNumberType.MOBILE:
        return "is a mobile number: a mobile operator ports it, not us"
    return None


def aligned(found: NumberRange) -> bool:
    """Whether a range is made of whole blocks of ten (…0 to …9), as operators hand them out."""
    if not found.is_range:
        return True
    return int(found.first[1:]) % 10 == 0 and found.count % 10 == 0


def alignment_warning(found: NumberRange) -> str:
    block = next((b for b in (1000, 100, 10) if found.count % b == 0), 10)
    return (
        f"{found.text} is not aligned to a block of {block} (a block runs from …0 to …9): "
        "check that it is the whole range your current operator gave you."
    )


def international(e164: str) -> str:
    """`+31 20 123 4567`: how a person reads a number."""
    return phonenumbers.format_number(phonenumbers.parse(e164), PhoneNumberFormat.INTERNATIONAL)
