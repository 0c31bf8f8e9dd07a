"""Case events: how the domain tells the front doors that something happened to a case.

`within` runs inside the handler's transaction (so mail to send is written to the outbox in the
same commit as its cause); `after` runs once that transaction committed (Slack posts and
waking the mail sender). The front doors implement this protocol; the domain never imports them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


class CaseEventKind(enum.StrEnum):
    OPENED = "opened"
    CUSTOMER_REPLIED = "customer_replied"
    STAFF_REPLIED = "staff_replied"
    NOTE_ADDED = "note_added"
    CHANGED = "changed"
    CLOSED = "closed"
    REOPENED = "reopened"
    REMINDER = "reminder"
    BOUNCED = "bounced"


@dataclass(frozen=True)
class CaseEvent:
    kind: CaseEventKind
    case_id: int
    message_id: int | None = None
    summary: str = ""


class CaseEvents(Protocol):
    async def within(self, session: AsyncSession, event: CaseEvent) -> None: ...

    async def after(self, event: CaseEvent) -> None: ...


class NoEvents:
    """Tells nobody: for tools and tests that only need the database."""

    async def within(self, session: AsyncSession, event: CaseEvent) -> None:
        return None

    async def after(self, event: CaseEvent) -> None:
        return None
