"""The parts every front door shares, built once at start-up and passed down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from c2bot.config.settings import Settings
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.events import CaseEvent, CaseEvents
from c2bot.storage.db import SessionFactory, session_factory
from c2bot.storage.models import Channel, utcnow
from c2bot.switch.esl import SwitchPool


class Notifier:
    """Fans case events out to every front door that cares (mail outbox, Slack threads)."""

    def __init__(self) -> None:
        self.listeners: list[CaseEvents] = []

    def add(self, listener: CaseEvents) -> None:
        self.listeners.append(listener)

    async def within(self, session: AsyncSession, event: CaseEvent) -> None:
        for listener in self.listeners:
            await listener.within(session, event)

    async def after(self, event: CaseEvent) -> None:
        for listener in self.listeners:
            await listener.after(event)


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    notifier: Notifier = field(default_factory=Notifier)
    clock: Callable[[], datetime] = utcnow
    sessions: SessionFactory = field(init=False)
    wakers: dict[str, Callable[[], None]] = field(default_factory=dict)
    # The Event Socket pool, when this process runs the esl or fax part (set at start-up).
    switch: SwitchPool | None = None

    def __post_init__(self) -> None:
        self.sessions = session_factory(self.engine)

    def context(self, actor: Actor, channel: Channel) -> Context:
        return Context(
            actor=actor,
            channel=channel,
            sessions=self.sessions,
            settings=self.settings,
            events=self.notifier,
            clock=self.clock,
            nudge=self.nudge,
            switch=self.switch,
        )

    def nudge(self, worker: str) -> None:
        """Tell a background worker in this process (e.g. "fax") that new work is committed."""
        wake = self.wakers.get(worker)
        if wake is not None:
            wake()
