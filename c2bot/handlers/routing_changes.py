"""Every routing change remembered whole, so `/route undo` can put an object back as it was.

A change stores the object (columns and child rows, e.g. a ring group's members) before and
after. Undo restores the "before" (or removes what was created, or recreates what was removed)
in one transaction, and is itself a change, audited like any other. Undo refuses when someone
changed the same object since: it would silently throw their change away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.audit import record
from c2bot.handlers.context import Context
from c2bot.handlers.errors import NotFound, Refusal
from c2bot.handlers.permissions import check_account
from c2bot.handlers.replies import Reply
from c2bot.storage.models import (
    Account,
    Base,
    CallQueue,
    Conference,
    ConferenceProfile,
    Did,
    Ivr,
    Recording,
    RingGroup,
    RoutingChange,
    SipDevice,
    TimeCondition,
    exact,
)

MODELS: dict[str, type[Base]] = {
    "device": SipDevice,
    "did": Did,
    "ringgroup": RingGroup,
    "queue": CallQueue,
    "conference": Conference,
    "confprofile": ConferenceProfile,
    "ivr": Ivr,
    "timecondition": TimeCondition,
    "recording": Recording,
}
SKIP = frozenset({"created_at", "updated_at"})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return {"__dt__": value.isoformat()}
    if isinstance(value, Decimal):
        return {"__dec__": str(exact(value))}
    return value


def _back(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__dt__"}:
        return datetime.fromisoformat(value["__dt__"])
    if isinstance(value, dict) and set(value) == {"__dec__"}:
        return Decimal(value["__dec__"])
    return value


def snapshot(obj: Base) -> dict[str, Any]:
    """Columns (JSON-safe) and one-to-many children of a routing object."""
    mapper = inspect(type(obj))
    data: dict[str, Any] = {
        attr.key: _plain(getattr(obj, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in SKIP
    }
    for rel in mapper.relationships:
        if rel.direction.name == "ONETOMANY" and "delete-orphan" in rel.cascade:
            child_mapper = rel.mapper
            data[f"@{rel.key}"] = [
                {
                    a.key: _plain(getattr(child, a.key))
                    for a in child_mapper.column_attrs
                    if a.key not in SKIP and a.key != "id"  # rows come back with new ids
                }
                for child in getattr(obj, rel.key)
            ]
    return data


def actor_key(ctx: Context) -> str:
    actor = ctx.actor
    if actor.person_id is not None:
        return f"person:{actor.person_id}"
    return f"email:{actor.email}" if actor.email else f"label:{actor.label}"


async def remember(
    session: AsyncSession,
    ctx: Context,
    *,
    object_type: str,
    key: str,
    account_id: int | None,
    summary: str,
    before: dict[str, Any] | None,
    after: Base | None,
) -> RoutingChange:
    """Record a change (call after flush, before commit) in the change log and the audit log.

    `before` is `snapshot(obj)` taken before the change (None when the object is new); `after`
    the object as it is now (None when it was removed).
    """
    if object_type not in MODELS:
        raise ValueError(f"unknown routing object type {object_type!r}")
    after_data = snapshot(after) if after is not None else None
    change = RoutingChange(
        at=ctx.clock(),
        actor_key=actor_key(ctx),
        account_id=account_id,
        object_type=object_type,
        object_key=key,
        summary=summary[:500],
        before=before,
        after=after_data,
    )
    session.add(change)
    action = "created" if before is None else "removed" if after is None else "changed"
    record(session, ctx, f"{object_type}.{action}", object_type, key, account_id, summary=summary)
    return change


async def undo_last(ctx: Context) -> Reply:
    """Revert the asker's most recent routing change that is not undone yet."""
    async with ctx.sessions() as session:
        change = await session.scalar(
            select(RoutingChange)
            .where(RoutingChange.actor_key == actor_key(ctx), RoutingChange.undone_at.is_(None))
            .order_by(RoutingChange.id.desc())
            .limit(1)
        )
        if change is None:
            raise NotFound("You have no routing change to undo.")
        if change.account_id is not None:
            await check_account(session, ctx.actor, change.account_id)
        later = await session.scalar(
            select(RoutingChange)
            .where(
                RoutingChange.object_type == change.object_type,
                RoutingChange.object_key == change.object_key,
                RoutingChange.id > change.id,
                RoutingChange.undone_at.is_(None),
            )
            .order_by(RoutingChange.id.desc())
            .limit(1)
        )
        if later is not None:
            raise Refusal(
                f"{change.object_type} {change.object_key} was changed again since your change "
                f"({later.summary}, {later.at:%Y-%m-%d %H:%M} UTC); undo would throw that away. "
                "Change it back by hand instead."
            )
        model = MODELS[change.object_type]
        current = await _load(session, model, change.after or change.before or {})
        if change.after is not None and (current is None or snapshot(current) != change.after):
            raise Refusal(
                f"{change.object_type} {change.object_key} is no longer as your change left it; "
                "undo would overwrite a change made since. Change it back by hand instead."
            )
        now_before = snapshot(current) if current is not None else None
        if change.before is None:
            assert current is not None
            await session.delete(current)
            restored: Base | None = None
        else:
            restored = await _restore(session, model, current, change.before)
        await session.flush()
        change.undone_at = ctx.clock()
        await session.flush()  # restored children get their keys before the snapshot
        undo = await remember(
            session,
            ctx,
            object_type=change.object_type,
            key=change.object_key,
            account_id=change.account_id,
            summary=f"undo: {change.summary}",
            before=now_before,
            after=restored,
        )
        # The next `/route undo` goes further back instead of undoing this undo.
        undo.undone_at = ctx.clock()
        await session.commit()
    reply = Reply(
        title=f"Undone: {change.summary}",
        text=f"{change.object_type} {change.object_key} is back as it was before "
        f"{change.at:%Y-%m-%d %H:%M} UTC. The next call follows it.",
    )
    if change.object_type == "queue" and change.account_id is not None:
        from c2bot.handlers import queues  # queues records its changes here: import late

        async with ctx.sessions() as session:
            owner = await session.get(Account, change.account_id)
        name = str((change.before or change.after or {}).get("name", ""))
        if owner is not None and name:
            reply = await queues.tell_switch(ctx, owner, name, change.after, reply)
    return reply


async def _load(session: AsyncSession, model: type[Base], data: dict[str, Any]) -> Base | None:
    ident = data.get("id")
    if ident is None:
        return None
    found: Base | None = await session.get(model, ident, populate_existing=True)
    return found


async def _restore(
    session: AsyncSession, model: type[Base], current: Base | None, data: dict[str, Any]
) -> Base:
    mapper = inspect(model)
    obj = current if current is not None else model()
    for attr in mapper.column_attrs:
        if attr.key in data:
            setattr(obj, attr.key, _back(data[attr.key]))
    for rel in mapper.relationships:
        key = f"@{rel.key}"
        if key not in data:
            continue
        children = getattr(obj, rel.key) if current is not None else []
        children.clear()
        if current is not None:
            await session.flush()  # the old rows go before their keys are used again
        for child_data in data[key]:
            child = rel.mapper.class_()
            for attr in rel.mapper.column_attrs:
                if attr.key in child_data and attr.key != "id":
                    setattr(child, attr.key, _back(child_data[attr.key]))
            children.append(child)
        if current is None:
            setattr(obj, rel.key, children)
    if current is None:
        session.add(obj)
    return obj


async def remember_object(
    session: AsyncSession,
    ctx: Context,
    object_type: str,
    obj: Base,
    owner: Account,
    summary: str,
    before: dict[str, Any] | None,
    *,
    removed: bool = False,
) -> RoutingChange:
    """`remember` for an object named within its account (ring group, queue, IVR, ...)."""
    await session.flush()
    name: str = getattr(obj, "name")  # noqa: B009 (every named routing object has one)
    return await remember(
        session,
        ctx,
        object_type=object_type,
        key=f"{owner.number}:{name}",
        account_id=owner.id,
        summary=summary,
        before=before,
        after=None if removed else obj,
    )


def changed_words(columns: Iterable[str], words: Mapping[str, str]) -> list[str]:
    """Changed columns in words, each once (two columns may make one setting)."""
    return list(dict.fromkeys(words.get(column, column) for column in columns))
