"""Transfer targets and the names FreeSWITCH and c2bot share."""

from __future__ import annotations

import random
import re

import pytest

from c2bot.config.settings import load_settings
from c2bot.switch.targets import (
    account_context,
    agent_name,
    conference_profile_name,
    menu_name,
    parse_transfer_target,
    queue_name,
    sip_domain,
    transfer_target,
)

TRICKY_VALUES = [
    "sales",
    "",
    "1001-100,1001-101|1001-102",
    "+31201234567",
    "sales team",
    "a*b**c*",
    "50%",
    "%41",
    "${system rm -rf /}",
    "{origination_caller_id_number=1}sofia/gateway/pstn/0900",
    'x<&">y',
    "Zürich 東京 🎉",
    "line\nbreak\ttab",
    "/^(\\d+)$/ $1",
    "fax@acme.nl",
]
TYPES = ["local", "ip", "direct-ip", "pstn", "sip-did", "ringgroup", "conference", "queue", "ivr"]
TYPES += ["timecondition", "foip", "other"]


@pytest.mark.parametrize("value", TRICKY_VALUES)
@pytest.mark.parametrize("dest_type", TYPES)
def test_every_type_and_value_round_trips(dest_type: str, value: str) -> None:
    """What transfer_target makes, parse_transfer_target gives back exactly."""
    target = transfer_target("1001", dest_type, value)
    assert parse_transfer_target(target) == (dest_type, value)


def test_random_values_round_trip() -> None:
    """A few thousand random strings (any code point) survive the round trip."""
    rng = random.Random(20261125)
    alphabet = [chr(c) for c in range(1, 0x250)] + ["*", "%", " ", "$", "{", "}", "東", "🎉"]
    for _ in range(3000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert parse_transfer_target(transfer_target("1001", "ivr", value)) == ("ivr", value)


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_target_is_one_safe_word(value: str) -> None:
    """A target survives `transfer <target> XML <ctx>` (split on spaces) and FreeSWITCH's
    `${...}` expansion: only unreserved characters, `*` and `%XX` escapes."""
    target = transfer_target("1001", "other", value)
    assert re.fullmatch(r"\*c2\*other\*([A-Za-z0-9._~-]|%[0-9A-F]{2})*", target)


def test_plain_names_stay_readable() -> None:
    """Simple names read as they are in logs and call records."""
    assert transfer_target("1001", "ivr", "sales") == "*c2*ivr*sales"
    assert transfer_target("1001", "local", "1001-100") == "*c2*local*1001-100"
    assert transfer_target("1001", "pstn", "+31201234567") == "*c2*pstn*%2B31201234567"


@pytest.mark.parametrize(
    "number",
    [
        "+31201234567",
        "1000",
        "",
        "*c2*",
        "*c2*ivr",
        "*c2**sales",
        "*c2*IVR*sales",
        "*c2*9ivr*sales",
        "*c2*ivr sales*x",
        "*C2*ivr*sales",
        "c2*ivr*sales",
        "*c2*ivr*%ff%fe",
    ],
)
def test_other_numbers_are_not_targets(number: str) -> None:
    """Dialled numbers and malformed targets are not taken for ours."""
    assert parse_transfer_target(number) is None


@pytest.mark.parametrize("dest_type", ["", "IVR", "ring group", "ivr*x", "9x", "x" * 33])
def test_bad_type_words_are_refused(dest_type: str) -> None:
    """A type that would not parse back is refused when the target is made."""
    with pytest.raises(ValueError, match="not a destination type word"):
        transfer_target("1001", dest_type, "x")


def test_a_target_needs_an_account() -> None:
    """Without the account there is no context to transfer into."""
    with pytest.raises(ValueError, match="account"):
        transfer_target("", "ivr", "sales")


def test_shared_names() -> None:
    """Contexts, domains and object names as the dialplan and configuration use them."""
    settings = load_settings(C2_SIP_DOMAIN="{account}.sip.example.net")
    assert account_context("1001") == "c2-1001"
    assert sip_domain(settings, "1001") == "1001.sip.example.net"
    assert sip_domain(load_settings(C2_SIP_DOMAIN="127.0.0.1"), "1001") == "127.0.0.1"
    assert menu_name("1001", "main") == "c2-1001-main"
    assert menu_name("1001", "sales & support") == "c2-1001-sales%20%26%20support"
    assert conference_profile_name("1001", "big room+1@x") == "c2-1001-big%20room%2B1%40x"
    assert queue_name("1001", "sales") == "c2-1001-sales@default"
    assert agent_name("1001", "+31201234567") == "c2-1001-%2B31201234567@default"
