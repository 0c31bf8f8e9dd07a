"""Ring groups: up to ten devices or phone numbers rung together or in turn, then a no-answer
destination.

Members are devices of the group's account (stored by username, so an extension change does not
reroute calls) or phone numbers (E.164). The no-answer destination may be any destination type;
one that would lead back to the group by itself is refused with the path. Sounds (announcement,
ring-back) are recordings of the same account, or a ring-back tone the switch knows.

Queues (queues.py) find their objects and members the same way, through `locate`, `new_object`
and `member_targets` below.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.accounts import scoped, target_account
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import (
    Destination,
    check_name,
    device_of,
    phone_number,
    references,
    refuse_loop,
)
from c2bot.handlers.devices import device_or_number
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.permissions import visible_accounts
from c2bot.handlers.recordings import (
    account_numbers,
    checked_destination,
    destination_words,
    sound,
)
from c2bot.handlers.replies import Reply, Table
from c2bot.handlers.routing_changes import changed_words, remember_object, snapshot
from c2bot.storage.models import Account, CallQueue, RingGroup, RingGroupMember

STRATEGIES = {
    "simultaneous": "every member rings at once",
    "sequence": "members ring one after another, in order",
}
RECORDING_MODES = {
    "device": "as each device is set (follow device)",
    "on": "every call (force on)",
    "off": "never (force off)",
}
# Tones the switch knows by name (FreeSWITCH's vars.xml); anything else is a recording.
RINGBACK_TONES = ("us-ring", "uk-ring", "fr-ring", "de-ring", "nl-ring", "bong-ring")
MAX_MEMBERS = 10
DELAY_MAX = 300
TIMEOUT_MIN, TIMEOUT_MAX = 5, 300
CID_NAME_MAX, CID_NUMBER_MAX = 32, 16
_CID_NUMBER = re.compile(r"^[0-9+*#]*$")

Named = TypeVar("Named", RingGroup, CallQueue)
WORDS: dict[type[Any], str] = {RingGroup: "ring group", CallQueue: "queue"}
COMMAND: dict[type[Any], str] = {RingGroup: "ringgroup", CallQueue: "queue"}


@dataclass(frozen=True)
class Member:
    """One member as asked: a device (username or extension) or a phone number."""

    target: str
    delay: int = 0
    timeout: int = 30


@dataclass(frozen=True)
class RingGroupFields:
    """What add and edit may set; None leaves a field as it is (or at its default when new).

    `members` replaces the whole list. `noanswer` is `TYPE VALUE` (`voicemail 1001-100`), or
    `none` to clear it.
    """

    strategy: str | None = None
    members: tuple[Member, ...] | None = None
    announcement: str | None = None
    ringback: str | None = None
    cid_name_prefix: str | None = None
    cid_number_prefix: str | None = None
    recording: str | None = None
    skip_busy: bool | None = None
    noanswer: str | None = None
    enabled: bool | None = None

    @property
    def empty(self) -> bool:
        return all(value is None for value in vars(self).values())


@dataclass(frozen=True)
class RingGroupSettings:
    """A ring group as its edit form shows it."""

    name: str
    account: str
    strategy: str
    members: tuple[Member, ...]
    announcement: str
    ringback: str
    cid_name_prefix: str
    cid_number_prefix: str
    recording: str
    skip_busy: bool
    noanswer: Destination
    enabled: bool

    @classmethod
    def of(cls, group: RingGroup, account: str) -> RingGroupSettings:
        return cls(
            name=group.name,
            account=account,
            strategy=group.strategy,
            members=tuple(Member(m.target, m.delay, m.timeout) for m in group.members),
            announcement=group.announcement,
            ringback=group.ringback,
            cid_name_prefix=group.cid_name_prefix,
            cid_number_prefix=group.cid_number_prefix,
            recording=group.recording,
            skip_busy=group.skip_busy,
            noanswer=Destination(group.noanswer_type, group.noanswer_value),
            enabled=group.enabled,
        )


@dataclass(frozen=True)
class MemberChange:
    group: str
    target: str
    account: str | None = None
    delay: int | None = None
    timeout: int | None = None


# --- finding objects, shared with queues -------------------------------------------------------


async def locate(
    session: AsyncSession, ctx: Context, model: type[Named], name: str, account: str | None
) -> Named:
    """An object by name: in `account:N` (checked), else among the accounts the actor may see
    (the actor's own first when several have that name)."""
    what, command = WORDS[model], COMMAND[model]
    if account:
        stmt = await scoped(session, ctx, select(model), model.account_id, account)
        found: Named | None = await session.scalar(stmt.where(model.name == name))
        if found is None:
            raise NotFound(
                f"Account {account} has no {what} {name!r}; "
                f"see `/c2 {command} list account:{account}`."
            )
        return found
    stmt = select(model).where(model.name == name).order_by(model.account_id)
    visible = await visible_accounts(session, ctx.actor)
    if visible is not None:
        stmt = stmt.where(model.account_id.in_(visible))
    candidates = list(await session.scalars(stmt))
    mine = [c for c in candidates if c.account_id == ctx.actor.account_id]
    if len(mine) == 1 or len(candidates) == 1:
        return (mine or candidates)[0]
    if not candidates:
        raise NotFound(f"There is no {what} {name!r} you may see; see `/c2 {command} list`.")
    numbers = await account_numbers(session, {c.account_id for c in candidates})
    raise Invalid(
        f"Several accounts have a {what} {name!r} ({', '.join(sorted(numbers.values()))}); "
        "add account:NUMBER.",
        {"account": "Name the account."},
    )


async def new_object(
    session: AsyncSession, ctx: Context, model: type[Named], name: str, account: str | None
) -> tuple[Account, Named | None]:
    """The account a new object goes to (checked), and the object of that name it has already."""
    what = WORDS[model]
    check_name(name, what)
    owner = await target_account(session, ctx, account, f"the {what}")
    existing: Named | None = await session.scalar(
        select(model).where(model.account_id == owner.id, model.name == name)
    )
    return owner, existing


def taken(model: type[Any], owner: Account, name: str) -> Invalid:
    return Invalid(
        f"Account {owner.number} already has a {WORDS[model]} {name!r}; change it with "
        f"`/c2 {COMMAND[model]} edit {name}` or pick another name.",
        {"name": "already exists"},
    )


def key_of(owner: Account, name: str) -> str:
    """The change-log key of an object named within its account."""
    return f"{owner.number}:{name}"


async def member_targets(
    session: AsyncSession, ctx: Context, owner: Account, words: Sequence[str], field: str
) -> list[str]:
    """Devices (usernames) or numbers (E.164), each at most once; errors name `field_N`."""
    targets: list[str] = []
    for index, word in enumerate(words, start=1):
        where = f"{field}_{index}"
        target = await device_or_number(session, ctx, owner, word, where)
        if target in targets:
            raise Invalid(f"{target} is named twice.", {where: "named twice"})
        targets.append(target)
    return targets


async def find_member(
    session: AsyncSession, ctx: Context, owner: Account, current: Sequence[str], word: str
) -> str | None:
    """Which of `current` targets `word` means: as written, a device by extension, a number."""
    word = word.strip()
    if word in current:
        return word
    device = await device_of(session, owner, word)
    if device is not None and device.username in current:
        return device.username
    try:
        number = phone_number(word, ctx.settings.fax_country, "target")
    except Invalid:
        return None
    return number if number in current else None


async def owner_of(session: AsyncSession, obj: RingGroup | CallQueue) -> Account:
    owner = await session.get(Account, obj.account_id)
    assert owner is not None  # a foreign key
    return owner


# --- add, edit, remove -------------------------------------------------------------------------


async def add_ring_group(
    ctx: Context,
    name: str,
    account: str | None,
    fields: RingGroupFields,
    *,
    check_only: bool = False,
) -> Reply:
    async with ctx.sessions() as session:
        owner, existing = await new_object(session, ctx, RingGroup, name, account)
        group = RingGroup(
            account_id=owner.id,
            name=name,
            strategy="simultaneous",
            announcement="",
            ringback="",
            cid_name_prefix="",
            cid_number_prefix="",
            recording="device",
            skip_busy=False,
            noanswer_type="",
            noanswer_value="",
            enabled=True,
            members=[],
        )
        await _apply(session, ctx, group, owner, fields)
        title = f"Ring group {name} added to account {owner.number}."
        if existing is not None:
            if _same(existing, group):  # this request, replayed
                return _shown(existing, owner, [], title)
            raise taken(RingGroup, owner, name)
        if check_only:
            return Reply(title=f"Ring group {name} can be added.")
        session.add(group)
        await session.flush()
        await remember_object(session, ctx, "ringgroup", group, owner, title.rstrip("."), None)
        await session.commit()
        return _shown(group, owner, [], title)


async def edit_ring_group(
    ctx: Context,
    name: str,
    account: str | None,
    fields: RingGroupFields,
    *,
    check_only: bool = False,
) -> Reply:
    async with ctx.sessions() as session:
        group = await locate(session, ctx, RingGroup, name, account)
        owner = await owner_of(session, group)
        before = snapshot(group)
        await _apply(session, ctx, group, owner, fields)
        await session.flush()
        after = snapshot(group)
        changed = [key for key, value in after.items() if before.get(key) != value]
        if check_only or not changed:
            word, number = "Would change" if changed else "Nothing to change", owner.number
            await session.rollback()  # expires what was loaded: read it before
            return Reply(title=f"{word}: ring group {name} ({number}).")
        words = ", ".join(changed_words(changed, _WORDS))
        summary = f"Ring group {name} ({owner.number}): {words} changed"
        await remember_object(session, ctx, "ringgroup", group, owner, summary, before)
        await session.commit()
        return _shown(group, owner, [], f"{summary}.")


async def remove_ring_group(ctx: Context, name: str, account: str | None) -> Reply:
    async with ctx.sessions() as session:
        group = await locate(session, ctx, RingGroup, name, account)
        owner = await owner_of(session, group)
        used_by = await references(session, group.account_id, Destination("ringgroup", name))
        if used_by:
            raise Invalid(
                f"Ring group {name} still gets calls from: {', '.join(used_by)}. "
                "Point those elsewhere first.",
                {"name": "in use"},
            )
        before = snapshot(group)
        await session.delete(group)
        await session.flush()
        summary = f"Ring group {name} removed from account {owner.number}"
        await remember_object(
            session, ctx, "ringgroup", group, owner, summary, before, removed=True
        )
        await session.commit()
    return Reply(title=f"{summary}. `/route undo` brings it back.")


async def add_member(ctx: Context, change: MemberChange) -> Reply:
    """Add a member at the end, or change the delay and timeout of one already there."""
    async with ctx.sessions() as session:
        group = await locate(session, ctx, RingGroup, change.group, change.account)
        owner = await owner_of(session, group)
        before = snapshot(group)
        current = [Member(m.target, m.delay, m.timeout) for m in group.members]
        target = await find_member(session, ctx, owner, [m.target for m in current], change.target)
        if target is None:
            target = (await member_targets(session, ctx, owner, [change.target], "member"))[0]
            current.append(Member(target, change.delay or 0, _or(change.timeout, 30)))
            what = "added"
        else:
            current = [
                Member(m.target, _or(change.delay, m.delay), _or(change.timeout, m.timeout))
                if m.target == target
                else m
                for m in current
            ]
            what = "changed"
        await _apply(session, ctx, group, owner, RingGroupFields(members=tuple(current)))
        await session.flush()
        if snapshot(group) == before:
            return _shown(group, owner, [], f"{target} is already in ring group {group.name}.")
        summary = f"Ring group {group.name} ({owner.number}): member {target} {what}"
        await remember_object(session, ctx, "ringgroup", group, owner, summary, before)
        await session.commit()
        return _shown(group, owner, [], f"{summary}.")


async def remove_member(ctx: Context, change: MemberChange) -> Reply:
    async with ctx.sessions() as session:
        group = await locate(session, ctx, RingGroup, change.group, change.account)
        owner = await owner_of(session, group)
        before = snapshot(group)
        targets = [m.target for m in group.members]
        target = await find_member(session, ctx, owner, targets, change.target)
        if target is None:
            raise NotFound(
                f"{change.target} is not a member of ring group {group.name} "
                f"(members: {', '.join(targets) or 'none'})."
            )
        left = tuple(
            Member(m.target, m.delay, m.timeout) for m in group.members if m.target != target
        )
        await _apply(session, ctx, group, owner, RingGroupFields(members=left))
        await session.flush()
        summary = f"Ring group {group.name} ({owner.number}): member {target} removed"
        await remember_object(session, ctx, "ringgroup", group, owner, summary, before)
        await session.commit()
        return _shown(group, owner, [], f"{summary}.")


# --- reading -----------------------------------------------------------------------------------


async def list_ring_groups(ctx: Context, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        stmt = await scoped(session, ctx, select(RingGroup), RingGroup.account_id, account)
        found = list(await session.scalars(stmt.order_by(RingGroup.name)))
        numbers = await account_numbers(session, {obj.account_id for obj in found})
    rows = sorted(((obj, numbers[obj.account_id]) for obj in found), key=lambda r: r[1])
    if not rows:
        return Reply(title="No ring groups.", text="Add one with `/c2 ringgroup add NAME`.")
    table = tuple(
        (
            group.name,
            number,
            group.strategy,
            ", ".join(m.target for m in group.members) or "-",
            Destination(group.noanswer_type, group.noanswer_value).label() or "-",
            "enabled" if group.enabled else "disabled",
        )
        for group, number in rows
    )
    columns = ("Ring group", "Account", "Strategy", "Members", "No answer", "Status")
    return Reply(title=f"{len(table)} ring group(s)", table=Table(columns, table))


async def ring_group_settings(ctx: Context, name: str, account: str | None) -> RingGroupSettings:
    async with ctx.sessions() as session:
        group = await locate(session, ctx, RingGroup, name, account)
        return RingGroupSettings.of(group, (await owner_of(session, group)).number)


async def show_ring_group(ctx: Context, name: str, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        group = await locate(session, ctx, RingGroup, name, account)
        owner = await owner_of(session, group)
        used_by = await references(session, group.account_id, Destination("ringgroup", name))
        return _shown(group, owner, used_by, f"Ring group {name} (account {owner.number})")


# --- helpers -----------------------------------------------------------------------------------


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


async def _apply(
    session: AsyncSession, ctx: Context, group: RingGroup, owner: Account, fields: RingGroupFields
) -> None:
    if fields.strategy is not None:
        group.strategy = _choice(fields.strategy, STRATEGIES, "strategy")
    if fields.members is not None:
        await _set_members(session, ctx, group, owner, fields.members)
    if fields.announcement is not None:
        group.announcement = await sound(session, owner, fields.announcement, "announcement")
    if fields.ringback is not None:
        group.ringback = await sound(session, owner, fields.ringback, "ringback", RINGBACK_TONES)
    if fields.cid_name_prefix is not None:
        group.cid_name_prefix = _cid_name(fields.cid_name_prefix)
    if fields.cid_number_prefix is not None:
        group.cid_number_prefix = _cid_number(fields.cid_number_prefix)
    if fields.recording is not None:
        group.recording = _choice(fields.recording, RECORDING_MODES, "record")
    if fields.skip_busy is not None:
        group.skip_busy = fields.skip_busy
    if fields.noanswer is not None:
        region = ctx.settings.fax_country
        wanted = destination_words(fields.noanswer, "noanswer", region)
        dest = await checked_destination(session, ctx, owner, wanted, "noanswer")
        if dest.is_set:
            await refuse_loop(
                session, owner.id, Destination("ringgroup", group.name), dest, "noanswer"
            )
        group.noanswer_type, group.noanswer_value = dest.type, dest.value
    if fields.enabled is not None:
        group.enabled = fields.enabled


async def _set_members(
    session: AsyncSession,
    ctx: Context,
    group: RingGroup,
    owner: Account,
    members: Sequence[Member],
) -> None:
    """Replace the members, keeping the rows of targets that stay."""
    if len(members) > MAX_MEMBERS:
        raise Invalid(
            f"A ring group has at most {MAX_MEMBERS} members ({len(members)} given).",
            {f"member_{MAX_MEMBERS + 1}": "too many"},
        )
    targets = await member_targets(session, ctx, owner, [m.target for m in members], "member")
    kept = {row.target: row for row in group.members}
    rows = []
    for position, (member, target) in enumerate(zip(members, targets, strict=True), start=1):
        where = f"member_{position}"
        if not 0 <= member.delay <= DELAY_MAX:
            raise Invalid(
                f"Delay of {target} must be 0 to {DELAY_MAX} seconds.", {where: "delay 0 to 300"}
            )
        if not TIMEOUT_MIN <= member.timeout <= TIMEOUT_MAX:
            raise Invalid(
                f"Timeout of {target} must be {TIMEOUT_MIN} to {TIMEOUT_MAX} seconds.",
                {where: "timeout 5 to 300"},
            )
        row = kept.pop(target, None) or RingGroupMember(target=target)
        row.position, row.delay, row.timeout = position, member.delay, member.timeout
        rows.append(row)
    group.members = rows


def _choice(value: str, choices: dict[str, str], field: str) -> str:
    word = value.strip().lower()
    if word not in choices:
        raise Invalid(
            f"{field} must be one of: {', '.join(choices)} (got {value!r}).",
            {field: f"one of {', '.join(choices)}"},
        )
    return word


def _cid_name(prefix: str) -> str:
    """Kept as typed: a trailing space ("Sales ") separates it from the caller's name."""
    if len(prefix) > CID_NAME_MAX or any(c in prefix for c in '"<>\r\n'):
        raise Invalid(
            f'A caller-id name prefix is at most {CID_NAME_MAX} characters, without " < or >.',
            {"cidname": "too long or odd characters"},
        )
    return prefix


def _cid_number(text: str) -> str:
    prefix = text.strip()
    if len(prefix) > CID_NUMBER_MAX or not _CID_NUMBER.match(prefix):
        raise Invalid(
            f"A caller-id number prefix is up to {CID_NUMBER_MAX} digits (and + * #).",
            {"cidnumber": "digits only"},
        )
    return prefix


def _same(existing: RingGroup, new: RingGroup) -> bool:
    columns = (
        "strategy",
        "announcement",
        "ringback",
        "cid_name_prefix",
        "cid_number_prefix",
        "recording",
        "skip_busy",
        "noanswer_type",
        "noanswer_value",
        "enabled",
    )

    def members(group: RingGroup) -> list[tuple[str, int, int]]:
        return [(m.target, m.delay, m.timeout) for m in group.members]

    return all(getattr(existing, c) == getattr(new, c) for c in columns) and members(
        existing
    ) == members(new)


_WORDS = {
    "@members": "members",
    "cid_name_prefix": "caller-id name prefix",
    "cid_number_prefix": "caller-id number prefix",
    "skip_busy": "skip busy",
    "noanswer_type": "no-answer destination",
    "noanswer_value": "no-answer destination",
    "enabled": "status",
    "ringback": "ring-back",
}


def _shown(group: RingGroup, owner: Account, used_by: Sequence[str], title: str) -> Reply:
    noanswer = Destination(group.noanswer_type, group.noanswer_value)
    fields: tuple[tuple[str, str], ...] = (
        ("Account", owner.number),
        ("Status", "enabled" if group.enabled else "disabled"),
        ("Strategy", f"{group.strategy}: {STRATEGIES.get(group.strategy, '')}"),
        ("No answer", noanswer.label() if noanswer.is_set else "not set: the call ends"),
        ("Announcement", group.announcement or "none"),
        ("Ring-back", group.ringback or "default ring"),
        (
            "Caller-id prefixes",
            f"name {group.cid_name_prefix!r}, number {group.cid_number_prefix!r}",
        ),
        ("Call recording", RECORDING_MODES.get(group.recording, group.recording)),
        ("Skip busy members", "yes" if group.skip_busy else "no"),
    )
    if used_by:
        fields += (("Used by", ", ".join(used_by)),)
    rows = tuple(
        (str(m.position), m.target, f"{m.delay} s", f"{m.timeout} s") for m in group.members
    )
    table = Table(("#", "Member", "Delay", "Timeout"), rows) if rows else None
    text = "" if rows else "No members yet: add one with `/c2 ringgroup member NAME add DEVICE`."
    return Reply(title=title, fields=fields, table=table, text=text)
