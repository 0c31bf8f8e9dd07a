"""What every handler receives: who asks, through which door, storage, settings and a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from c2bot.config.settings import Settings
from c2bot.handlers.events import CaseEvents, NoEvents
from c2bot.storage.db import SessionFactory
from c2bot.storage.models import Channel, Person, Role, utcnow
from c2bot.switch.esl import SwitchPool


@dataclass(frozen=True)
class Actor:
    """The person (or mail contact) a request acts for."""

    label: str
    role: Role
    account_id: int | None
    person_id: int | None = None
    slack_user_id: str | None = None
    email: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.STAFF, Role.ADMIN)

    @classmethod
    def of(cls, person: Person) -> Actor:
        label = person.name or person.email or person.slack_user_id or f"person {person.id}"
        return cls(
            label=label,
            role=person.role,
            account_id=person.account_id,
            person_id=person.id,
            slack_user_id=person.slack_user_id,
            email=person.email,
        )


SHELL_OPERATOR = Actor(label="shell operator", role=Role.ADMIN, account_id=None)


@dataclass
class Context:
    actor: Actor
    channel: Channel
    sessions: SessionFactory
    settings: Settings
    events: CaseEvents = field(default_factory=NoEvents)
    clock: Callable[[], datetime] = utcnow
    # Wakes a background worker after a commit (the fax worker polls anyway; this saves the
    # wait). Other processes' workers find the work at their next poll.
    nudge: Callable[[str], None] = lambda worker: None
    # What makes this request the same request when it is replayed or sent again (a Slack inbox
    # row, a confirmed mail command): handlers that create things use it to create them once.
    request_ref: str | None = None
    # The switch (FreeSWITCH Event Socket), when this process has one: live calls, registrations.
    switch: SwitchPool | None = None
