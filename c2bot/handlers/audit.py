"""The audit log: one row for every change, whichever door it came through."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.context import Context
from c2bot.storage.models import AuditEntry


def record(
    session: AsyncSession,
    ctx: Context,
    action: str,
    object_type: str,
    object_id: object,
    account_id: int | None,
    **details: Any,
) -> None:
    session.add(
        AuditEntry(
            at=ctx.clock(),
            actor_id=ctx.actor.person_id,
            actor_label=ctx.actor.label,
            channel=ctx.channel,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            account_id=account_id,
            details=details,
        )
    )
