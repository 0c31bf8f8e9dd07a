"""Questions about the inbound mail we kept (`inbound_mail`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.storage.models import InboundMail

STRANGER_REPLY_EVERY = timedelta(hours=24)


async def told_since(session: AsyncSession, outcome: str, address: str, since: datetime) -> bool:
    """Whether mail from `address` was already recorded with `outcome` since `since`.

    Strangers are answered once a day at most, so a forged sender cannot make us a mail cannon.
    """
    found = await session.scalar(
        select(InboundMail.id)
        .where(
            InboundMail.detail == address,
            InboundMail.outcome == outcome,
            InboundMail.received_at >= since,
        )
        .limit(1)
    )
    return found is not None
