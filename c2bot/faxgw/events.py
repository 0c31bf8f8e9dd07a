"""What the fax bridge tells the front doors: a fax sent, failed, or received.

`within` runs inside the transaction that records the outcome (so the mail to the sender is in
the outbox before the outcome is committed: nothing is lost if the relay is down); `after` runs
once it is committed (Slack messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class FaxOutcome:
    kind: Literal["sent", "failed", "received"]
    job_id: int | None = None
    received_id: int | None = None
    pdf: bytes | None = None


class FaxEvents(Protocol):
    async def within(self, session: AsyncSession, outcome: FaxOutcome) -> None: ...

    async def after(self, outcome: FaxOutcome) -> None: ...


class NoFaxEvents:
    async def within(self, session: AsyncSession, outcome: FaxOutcome) -> None:
        return None

    async def after(self, outcome: FaxOutcome) -> None:
        return None


class FaxFanout:
    """Several listeners (mail, Slack) behind one `FaxEvents`."""

    def __init__(self) -> None:
        self.listeners: list[FaxEvents] = []

    def add(self, listener: FaxEvents) -> None:
        self.listeners.append(listener)

    async def within(self, session: AsyncSession, outcome: FaxOutcome) -> None:
        for listener in self.listeners:
            await listener.within(session, outcome)

    async def after(self, outcome: FaxOutcome) -> None:
        for listener in self.listeners:
            await listener.after(outcome)
