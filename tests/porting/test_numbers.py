"""Numbers and ranges as people write them: each rule of porting validation, without a database."""

from __future__ import annotations

import pytest

from c2bot.handlers.portnumbers import (
    NumberRange,
    aligned,
    alignment_warning,
    read_item,
    split_items,
)


def problems(item: str) -> list[str]:
    found = read_item(item, "NL")
    assert isinstance(found, list), f"{item!r} was accepted as {found}"
    return [str(p) for p in found]


def accepted(item: str) -> NumberRange:
    found = read_item(item, "NL")
    assert isinstance(found, NumberRange), f"{item!r} was refused: {found}"
    return found


@pytest.mark.parametrize(
    ("item", "first", "last"),
    [
        ("0201234567", "+31201234567", "+31201234567"),
        ("020-1234567", "+31201234567", "+31201234567"),
        ("+31 20 123 4567", "+31201234567", "+31201234567"),
        ("0031201234567", "+31201234567", "+31201234567"),
        ("0301234500-0301234599", "+31301234500", "+31301234599"),
        ("030-1234500 - 030-1234599", "+31301234500", "+31301234599"),
        ("0301234500+100", "+31301234500", "+31301234599"),
        ("0851234500+10", "+31851234500", "+31851234509"),
    ],
)
def test_numbers_and_ranges_are_read_in_every_usual_notation(
    item: str, first: str, last: str
) -> None:
    """Single numbers with dashes or spaces, ranges start-end, and start+count all read."""
    found = accepted(item)
    assert (found.first, found.last) == (first, last)
    assert found.count == int(last[1:]) - int(first[1:]) + 1


def test_invalid_numbers_are_refused_in_words() -> None:
    """Not a number, a number too short, and garbage each say what is wrong."""
    assert problems("abc") == ["abc is not a phone number"]
    assert problems("020") == ["020 is not a valid NL number"]
    assert problems("02012345") == ["02012345 is not a valid NL number"]


def test_foreign_and_mobile_numbers_are_refused() -> None:
    """Only numbers of the configured country port here, and not mobile ones."""
    assert problems("+32 2 555 12 34") == [
        "+32 2 555 12 34 is a number in Belgium, not NL: only NL numbers are ported here"
    ]
    assert problems("0612345678") == [
        "0612345678 is a mobile number: a mobile operator ports it, not us"
    ]
    belgian = read_item("+3225551234", "BE")
    assert isinstance(belgian, NumberRange)  # the country is a setting


def test_a_range_with_ends_of_unequal_length_is_refused() -> None:
    """Start and end must both be given in full; the short end is named too."""
    assert problems("0301234500-030123459") == [
        "0301234500-030123459: start and end differ in length (10 and 9 digits): give both in full",
        "0301234500-030123459: 030123459 is not a valid NL number",
    ]


def test_a_range_whose_end_comes_before_its_start_is_refused() -> None:
    assert problems("0301234599-0301234500") == [
        "0301234599-0301234500: the end comes before the start"
    ]


def test_start_and_count_must_stay_within_the_numbering() -> None:
    """A count of zero, or one whose last number leaves the area code, is refused."""
    assert problems("0301234500+0") == ["0301234500+0: the count must be at least 1"]
    assert problems("0209999990+20") == [
        "0209999990+20: the end +31210000009 is not a valid NL number"
    ]


def test_a_range_larger_than_one_request_takes_is_refused() -> None:
    assert "one request takes at most 10000" in problems("0201000000+20000")[0]


def test_ranges_not_aligned_to_a_block_get_a_warning() -> None:
    """Whole blocks of ten are aligned; a range starting mid-block or of 25 numbers is not."""
    assert aligned(accepted("0301234500-0301234599"))
    assert aligned(accepted("0301234510-0301234529"))
    assert aligned(accepted("0201234567"))
    assert not aligned(accepted("0301234505-0301234524"))
    assert not aligned(accepted("0301234500+25"))
    assert aligned(accepted("0301234550-0301234649"))  # 100 numbers from ...50: ten whole tens
    warning = alignment_warning(accepted("0301234505-0301234604"))
    assert "not aligned to a block of 100" in warning and "0301234505-0301234604" in warning


def test_overlap_is_found_between_ranges_of_the_same_length_only() -> None:
    big = accepted("0301234500-0301234599")
    assert big.overlaps(accepted("0301234599"))
    assert big.overlaps(accepted("0301234590+20"))
    assert not big.overlaps(accepted("0301234600"))
    assert not big.overlaps(accepted("08001234"))


def test_items_are_split_on_commas_semicolons_and_lines() -> None:
    assert split_items("020 123 4567,\n0301234500-0301234599; 0851234567\n\n") == [
        "020 123 4567",
        "0301234500-0301234599",
        "0851234567",
    ]
