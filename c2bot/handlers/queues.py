"""Call queues (mod_callcenter): callers wait with music while agents are rung by a strategy.

Agents are devices of the queue's account (by username) or phone numbers (E.164), added and
removed by message. A caller who waits longer than the timeout goes to the failover
destination (any type); one that would lead back to the queue by itself is refused with the
path. Music on hold and the agent and customer back-tones are recordings of the same account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.accounts import scoped
from c2bot.handlers.context import Context
from c2bot.handlers.destinations import Destination, references, refuse_loop
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.recordings import (
    account_numbers,
    checked_destination,
    destination_words,
    sound,
)
from c2bot.handlers.replies import Reply, Table
from c2bot.handlers.ringgroups import (
    RINGBACK_TONES,
    find_member,
    locate,
    member_targets,
    new_object,
    owner_of,
    taken,
)
from c2bot.handlers.routing_changes import changed_words, remember_object, snapshot
from c2bot.storage.models import Account, CallQueue, QueueAgent
from c2bot.switch.callcenter import push_queue
from c2bot.switch.configuration import queue_agents
from c2bot.switch.targets import agent_name, queue_name

# mod_callcenter's strategies, in the words its documentation uses.
STRATEGIES = {
    "ring-all": "every free agent rings at once",
    "longest-idle-agent": "the agent who has waited longest since a call",
    "round-robin": "agents in turn, carrying on after the last one rung",
    "top-down": "agents in order, from the first, every call",
    "agent-with-least-talk-time": "the agent who talked least",
    "agent-with-fewest-calls": "the agent who took fewest calls",
    "sequentially-by-agent-order": "agents in their order, one at a time",
    "random": "any free agent",
}
MAX_AGENTS = 50
TIMEOUT_MIN, TIMEOUT_MAX = 10, 7200
DEFAULT_WORDS = frozenset({"default"})


@dataclass(frozen=True)
class QueueFields:
    """What add and edit may set; None leaves a field as it is (or at its default when new).

    `agents` replaces the whole list. `failover` is `TYPE VALUE`, or `none` to clear it.
    """

    strategy: str | None = None
    agents: tuple[str, ...] | None = None
    moh: str | None = None
    agent_tone: str | None = None
    customer_tone: str | None = None
    timeout: int | None = None
    failover: str | None = None
    enabled: bool | None = None

    @property
    def empty(self) -> bool:
        return all(value is None for value in vars(self).values())


@dataclass(frozen=True)
class QueueSettings:
    """A queue as its edit form shows it."""

    name: str
    account: str
    strategy: str
    agents: tuple[str, ...]
    moh: str
    agent_tone: str
    customer_tone: str
    timeout: int
    failover: Destination
    enabled: bool

    @classmethod
    def of(cls, queue: CallQueue, account: str) -> QueueSettings:
        return cls(
            name=queue.name,
            account=account,
            strategy=queue.strategy,
            agents=tuple(a.target for a in queue.agents),
            moh=queue.moh,
            agent_tone=queue.agent_tone,
            customer_tone=queue.customer_tone,
            timeout=queue.timeout,
            failover=Destination(queue.failover_type, queue.failover_value),
            enabled=queue.enabled,
        )


@dataclass(frozen=True)
class AgentChange:
    queue: str
    target: str
    account: str | None = None


# --- add, edit, remove -------------------------------------------------------------------------


async def add_queue(
    ctx: Context, name: str, account: str | None, fields: QueueFields, *, check_only: bool = False
) -> Reply:
    async with ctx.sessions() as session:
        owner, existing = await new_object(session, ctx, CallQueue, name, account)
        queue = CallQueue(
            account_id=owner.id,
            name=name,
            strategy="longest-idle-agent",
            moh="",
            agent_tone="",
            customer_tone="",
            timeout=300,
            failover_type="",
            failover_value="",
            enabled=True,
            agents=[],
        )
        await _apply(session, ctx, queue, owner, fields)
        title = f"Queue {name} added to account {owner.number}."
        if existing is not None:
            if _same(existing, queue):  # this request, replayed
                return _shown(existing, owner, [], title)
            raise taken(CallQueue, owner, name)
        if check_only:
            return Reply(title=f"Queue {name} can be added.")
        session.add(queue)
        await session.flush()
        await remember_object(session, ctx, "queue", queue, owner, title.rstrip("."), None)
        await session.commit()
        shown = _shown(queue, owner, [], title)
    return await tell_switch(ctx, owner, name, None, shown)


async def edit_queue(
    ctx: Context, name: str, account: str | None, fields: QueueFields, *, check_only: bool = False
) -> Reply:
    async with ctx.sessions() as session:
        queue = await locate(session, ctx, CallQueue, name, account)
        owner = await owner_of(session, queue)
        before = snapshot(queue)
        await _apply(session, ctx, queue, owner, fields)
        await session.flush()
        changed = [key for key, value in snapshot(queue).items() if before.get(key) != value]
        if check_only or not changed:
            word, number = "Would change" if changed else "Nothing to change", owner.number
            await session.rollback()  # expires what was loaded: read it before
            return Reply(title=f"{word}: queue {name} ({number}).")
        summary = (
            f"Queue {name} ({owner.number}): {', '.join(changed_words(changed, _WORDS))} changed"
        )
        await remember_object(session, ctx, "queue", queue, owner, summary, before)
        await session.commit()
        shown = _shown(queue, owner, [], f"{summary}.")
    return await tell_switch(ctx, owner, queue.name, before, shown)


async def remove_queue(ctx: Context, name: str, account: str | None) -> Reply:
    async with ctx.sessions() as session:
        queue = await locate(session, ctx, CallQueue, name, account)
        owner = await owner_of(session, queue)
        used_by = await references(session, queue.account_id, Destination("queue", name))
        if used_by:
            raise Invalid(
                f"Queue {name} still gets calls from: {', '.join(used_by)}. "
                "Point those elsewhere first.",
                {"name": "in use"},
            )
        before = snapshot(queue)
        await session.delete(queue)
        await session.flush()
        summary = f"Queue {name} removed from account {owner.number}"
        await remember_object(session, ctx, "queue", queue, owner, summary, before, removed=True)
        await session.commit()
    shown = Reply(title=f"{summary}. `/route undo` brings it back.")
    return await tell_switch(ctx, owner, name, before, shown)


async def add_agent(ctx: Context, change: AgentChange) -> Reply:
    async with ctx.sessions() as session:
        queue = await locate(session, ctx, CallQueue, change.queue, change.account)
        owner = await owner_of(session, queue)
        current = [a.target for a in queue.agents]
        if await find_member(session, ctx, owner, current, change.target) is not None:
            return _shown(queue, owner, [], f"{change.target} is already an agent of {queue.name}.")
        before = snapshot(queue)
        target = (await member_targets(session, ctx, owner, [change.target], "agent"))[0]
        await _set_agents(session, ctx, queue, owner, [*current, target])
        await session.flush()
        summary = f"Queue {queue.name} ({owner.number}): agent {target} added"
        await remember_object(session, ctx, "queue", queue, owner, summary, before)
        await session.commit()
        shown = _shown(queue, owner, [], f"{summary}.")
    return await tell_switch(ctx, owner, queue.name, before, shown)


async def remove_agent(ctx: Context, change: AgentChange) -> Reply:
    async with ctx.sessions() as session:
        queue = await locate(session, ctx, CallQueue, change.queue, change.account)
        owner = await owner_of(session, queue)
        current = [a.target for a in queue.agents]
        target = await find_member(session, ctx, owner, current, change.target)
        if target is None:
            raise NotFound(
                f"{change.target} is not an agent of queue {queue.name} "
                f"(agents: {', '.join(current) or 'none'})."
            )
        before = snapshot(queue)
        await _set_agents(session, ctx, queue, owner, [t for t in current if t != target])
        await session.flush()
        summary = f"Queue {queue.name} ({owner.number}): agent {target} removed"
        await remember_object(session, ctx, "queue", queue, owner, summary, before)
        await session.commit()
        shown = _shown(queue, owner, [], f"{summary}.")
    return await tell_switch(ctx, owner, queue.name, before, shown)


async def tell_switch(
    ctx: Context, owner: Account, name: str, before: dict[str, Any] | None, reply: Reply
) -> Reply:
    """mod_callcenter keeps the queues it loaded: tell the connected switches of the change."""
    if ctx.switch is None:
        return reply
    previous = [agent_name(owner.number, a["target"]) for a in (before or {}).get("@agents", [])]
    async with ctx.sessions() as session:
        wanted = await queue_agents(session, ctx.settings, owner.id, owner.number, name)
    note = await push_queue(ctx.switch, queue_name(owner.number, name), wanted, previous)
    return replace(reply, text="\n".join(t for t in (reply.text, note) if t))


# --- reading -----------------------------------------------------------------------------------


async def list_queues(ctx: Context, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        stmt = await scoped(session, ctx, select(CallQueue), CallQueue.account_id, account)
        found = list(await session.scalars(stmt.order_by(CallQueue.name)))
        numbers = await account_numbers(session, {obj.account_id for obj in found})
    rows = sorted(((obj, numbers[obj.account_id]) for obj in found), key=lambda r: r[1])
    if not rows:
        return Reply(title="No queues.", text="Add one with `/c2 queue add NAME`.")
    table = tuple(
        (
            queue.name,
            number,
            queue.strategy,
            ", ".join(a.target for a in queue.agents) or "-",
            f"{queue.timeout} s",
            Destination(queue.failover_type, queue.failover_value).label() or "-",
            "enabled" if queue.enabled else "disabled",
        )
        for queue, number in rows
    )
    columns = ("Queue", "Account", "Strategy", "Agents", "Timeout", "Failover", "Status")
    return Reply(title=f"{len(table)} queue(s)", table=Table(columns, table))


async def queue_settings(ctx: Context, name: str, account: str | None) -> QueueSettings:
    async with ctx.sessions() as session:
        queue = await locate(session, ctx, CallQueue, name, account)
        return QueueSettings.of(queue, (await owner_of(session, queue)).number)


async def show_queue(ctx: Context, name: str, account: str | None = None) -> Reply:
    async with ctx.sessions() as session:
        queue = await locate(session, ctx, CallQueue, name, account)
        owner = await owner_of(session, queue)
        used_by = await references(session, queue.account_id, Destination("queue", name))
        return _shown(queue, owner, used_by, f"Queue {name} (account {owner.number})")


# --- helpers -----------------------------------------------------------------------------------


async def _apply(
    session: AsyncSession, ctx: Context, queue: CallQueue, owner: Account, fields: QueueFields
) -> None:
    if fields.strategy is not None:
        word = fields.strategy.strip().lower()
        if word not in STRATEGIES:
            raise Invalid(
                f"strategy must be one of: {', '.join(STRATEGIES)} (got {fields.strategy!r}).",
                {"strategy": "unknown strategy"},
            )
        queue.strategy = word
    if fields.agents is not None:
        targets = await member_targets(session, ctx, owner, fields.agents, "agent")
        await _set_agents(session, ctx, queue, owner, targets)
    if fields.moh is not None:
        moh = "" if fields.moh.strip().lower() in DEFAULT_WORDS else fields.moh
        queue.moh = await sound(session, owner, moh, "moh")
    if fields.agent_tone is not None:
        queue.agent_tone = await sound(
            session, owner, fields.agent_tone, "agenttone", RINGBACK_TONES
        )
    if fields.customer_tone is not None:
        queue.customer_tone = await sound(
            session, owner, fields.customer_tone, "customertone", RINGBACK_TONES
        )
    if fields.timeout is not None:
        if not TIMEOUT_MIN <= fields.timeout <= TIMEOUT_MAX:
            raise Invalid(
                f"A queue's timeout (longest wait) is {TIMEOUT_MIN} to {TIMEOUT_MAX} seconds.",
                {"timeout": f"{TIMEOUT_MIN} to {TIMEOUT_MAX}"},
            )
        queue.timeout = fields.timeout
    if fields.failover is not None:
        wanted = destination_words(fields.failover, "failover", ctx.settings.fax_country)
        dest = await checked_destination(session, ctx, owner, wanted, "failover")
        if dest.is_set:
            origin = Destination("queue", queue.name)
            await refuse_loop(session, owner.id, origin, dest, "failover")
        queue.failover_type, queue.failover_value = dest.type, dest.value
    if fields.enabled is not None:
        queue.enabled = fields.enabled


async def _set_agents(
    session: AsyncSession,
    ctx: Context,
    queue: CallQueue,
    owner: Account,
    targets: Sequence[str],
) -> None:
    """Replace the agents (already resolved targets), keeping the rows of those who stay: a
    target is unique per queue, so a new row for a staying agent would collide with its old."""
    if len(targets) > MAX_AGENTS:
        raise Invalid(
            f"A queue has at most {MAX_AGENTS} agents ({len(targets)} given).",
            {"agents": "too many"},
        )
    kept = {row.target: row for row in queue.agents}
    rows = []
    for position, target in enumerate(targets, start=1):
        row = kept.pop(target, None) or QueueAgent(target=target)
        row.position = position
        rows.append(row)
    queue.agents = rows


def _same(existing: CallQueue, new: CallQueue) -> bool:
    columns = (
        "strategy",
        "moh",
        "agent_tone",
        "customer_tone",
        "timeout",
        "failover_type",
        "failover_value",
        "enabled",
    )
    same_columns = all(getattr(existing, c) == getattr(new, c) for c in columns)
    return same_columns and [a.target for a in existing.agents] == [a.target for a in new.agents]


_WORDS = {
    "@agents": "agents",
    "moh": "music on hold",
    "agent_tone": "agent tone",
    "customer_tone": "customer tone",
    "failover_type": "failover",
    "failover_value": "failover",
    "enabled": "status",
}


def _shown(queue: CallQueue, owner: Account, used_by: Sequence[str], title: str) -> Reply:
    failover = Destination(queue.failover_type, queue.failover_value)
    fields: tuple[tuple[str, str], ...] = (
        ("Account", owner.number),
        ("Status", "enabled" if queue.enabled else "disabled"),
        ("Strategy", f"{queue.strategy}: {STRATEGIES.get(queue.strategy, '')}"),
        ("Longest wait", f"{queue.timeout} s"),
        ("Failover", failover.label() if failover.is_set else "not set: the call ends"),
        ("Music on hold", queue.moh or "default"),
        ("Agent tone", queue.agent_tone or "none"),
        ("Customer tone", queue.customer_tone or "none"),
    )
    if used_by:
        fields += (("Used by", ", ".join(used_by)),)
    rows = tuple((str(a.position), a.target) for a in queue.agents)
    table = Table(("#", "Agent"), rows) if rows else None
    text = "" if rows else "No agents yet: add one with `/c2 queue agent NAME add DEVICE`."
    return Reply(title=title, fields=fields, table=table, text=text)
