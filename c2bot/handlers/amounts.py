"""Amounts and counts as people type them (forms, commands, CSV files), checked in words.

Each parser raises ValueError with a short reason fit to follow a field's name
("Balance: cannot be negative"); callers put it next to the field or the CSV line.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from c2bot.storage.models import exact

# Fixed columns hold millionths in a signed 64-bit integer: 9.2e12 whole units at most.
AMOUNT_MAX = Decimal(10) ** 12
COUNT_MAX = 1_000_000


def parse_amount(text: str, *, maximum: Decimal = AMOUNT_MAX, negative: bool = False) -> Decimal:
    """A decimal amount with at most six places (money, a rate, a percentage).

    Thousands separators (`1,250.50`) are allowed; more than six places is refused rather than
    silently rounded, because a rate file with seven places means something we would change.
    """
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"bad number {text.strip()!r}") from None
    if not value.is_finite():
        raise ValueError(f"bad number {text.strip()!r}")
    if value < 0 and not negative:
        raise ValueError(f"cannot be negative ({text.strip()})")
    if abs(value) >= maximum:
        raise ValueError(f"too large ({text.strip()})")
    if value != exact(value):
        raise ValueError(f"more than 6 decimal places ({text.strip()})")
    return exact(value)


def parse_count(text: str, *, maximum: int = COUNT_MAX, what: str = "0: no limit") -> int:
    """A whole number, 0 or more."""
    text = text.strip()
    if text.startswith("-") and text[1:].isdigit():
        raise ValueError(f"cannot be negative ({text})")
    if not text.isdigit():
        raise ValueError(f"a whole number ({what}), not {text!r}")
    if int(text) > maximum:
        raise ValueError(f"at most {maximum:,} (got {text})")
    return int(text)
