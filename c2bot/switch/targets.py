"""Names c2bot and FreeSWITCH must agree on: an account's dialplan context and SIP domain, the
names of its menus, queues and conference profiles, and the destination numbers our own
`transfer`s send a call to.

A transfer target is `*c2*<type>*<value>`, the value percent-encoded (letters, digits and
`-._~` stay as they are). That keeps it one word for `transfer <target> XML <context>` (the
application splits on spaces), out of reach of FreeSWITCH's `${...}` expansion, and readable in
logs and call records: `*c2*ivr*sales`, `*c2*local*1001-100%2C1001-101`. No phone number starts
with `*c2*`, so the dialplan can tell our targets from dialled numbers.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from c2bot.config.settings import Settings

TARGET_PREFIX = "*c2*"
PUBLIC_CONTEXT = "public"  # where calls from the carrier's gateway (DIDs) arrive
QUEUE_DOMAIN = "default"  # mod_callcenter names queues and agents `name@domain`
_TYPE = re.compile(r"[a-z][a-z0-9-]{0,31}")


def transfer_target(account_number: str, dest_type: str, dest_value: str) -> str:
    """The destination number that routes to (dest_type, dest_value) in the account's context.

    The account is not part of the number: the transfer names the context
    (`account_context(account_number)`), and the dialplan resolves the value in that account
    only. `account_number` is required so callers cannot forget which context they transfer to.
    """
    if not account_number:
        raise ValueError("a transfer target needs the account it routes in")
    if not _TYPE.fullmatch(dest_type):
        raise ValueError(f"{dest_type!r} is not a destination type word")
    return f"{TARGET_PREFIX}{dest_type}*{quote(dest_value, safe='')}"


def parse_transfer_target(number: str) -> tuple[str, str] | None:
    """(dest_type, dest_value) from a number `transfer_target` made; None for anything else."""
    if not number.startswith(TARGET_PREFIX):
        return None
    dest_type, star, encoded = number[len(TARGET_PREFIX) :].partition("*")
    if not star or not _TYPE.fullmatch(dest_type):
        return None
    try:
        return dest_type, unquote(encoded, errors="strict")
    except UnicodeDecodeError:  # not something we encoded
        return None


def account_context(account_number: str) -> str:
    """The dialplan context of an account's devices and of our transfers within the account."""
    return f"c2-{account_number}"


def sip_domain(settings: Settings, account_number: str) -> str:
    """The SIP domain (registrar host) of an account's devices: C2_SIP_DOMAIN, `{account}`
    replaced by the account number."""
    return settings.sip_domain.replace("{account}", account_number)


def object_name(account_number: str, name: str) -> str:
    """A routing object's name in FreeSWITCH, unique across accounts: `c2-1001-sales`.

    The name is percent-encoded like a target value, so `@`, `+` and spaces (which
    `conference room@profile+pin` and friends split on) cannot appear in it.
    """
    return f"c2-{account_number}-{quote(name, safe='')}"


def menu_name(account_number: str, ivr_name: str) -> str:
    """The ivr.conf menu an IVR is served as (`ivr <menu_name>` in the dialplan)."""
    return object_name(account_number, ivr_name)


def conference_profile_name(account_number: str, profile_name: str) -> str:
    """The conference.conf profile a conference uses (`conference room@<this>+pin`).

    Every account has a `default` profile: ours, unless it made one with that name."""
    return object_name(account_number, profile_name)


def queue_name(account_number: str, queue: str) -> str:
    """The callcenter.conf queue a call queue is served as (`callcenter <queue_name>`)."""
    return f"{object_name(account_number, queue)}@{QUEUE_DOMAIN}"


def agent_name(account_number: str, target: str) -> str:
    """One mod_callcenter agent per device or phone number of an account, in all its queues."""
    return f"{object_name(account_number, target)}@{QUEUE_DOMAIN}"
