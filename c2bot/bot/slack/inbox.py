"""The Slack inbox: what we ack before its work is done is written down first.

Slack hears "ok" the moment we ack, so a thread reply or a submitted case form is stored before
that ack and marked done when its work is; housekeeping replays what a crash or an outage left
undone (the work itself is idempotent: a message is stored once per Slack ts, a form opens one
case per modal).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from c2bot.bot.grammar import has_secret, redact
from c2bot.bot.services import Services
from c2bot.handlers.errors import Refusal
from c2bot.storage.models import SlackInbox

THREAD_MESSAGE = "thread_message"
CASE_FORM = "case_form"
COMMAND = "command"
MAX_ATTEMPTS = 5
REPLAY_BATCH = 20


class Inbox:
    """Keeps rows with group commit: requests that arrive together share one transaction.

    A burst of 50 commands then costs a few commits instead of 50 (SQLite writes one at a time),
    which keeps the acks of changing commands near those of reading ones.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self._waiting: list[tuple[SlackInbox, asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._secret_rows: set[int] = set()

    async def keep(self, kind: str, user_id: str, payload: dict[str, Any]) -> int:
        """Store one request; returns once it is committed (with the rows that came with it)."""
        row = SlackInbox(
            kind=kind, user_id=user_id, payload=payload, received_at=self.services.clock()
        )
        stored: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, stored))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        row_id = await stored
        if has_secret(str(payload.get("text") or "")):
            self._secret_rows.add(row_id)
        return row_id

    async def _write_batches(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self.services.sessions.begin() as session:
                    session.add_all(row for row, _ in batch)
                    await session.flush()
            except Exception as error:
                for _, stored in batch:
                    if not stored.done():
                        stored.set_exception(error)
                continue
            for row, stored in batch:
                if not stored.done():
                    stored.set_result(row.id)

    async def tracked(self, row_id: int | None, work: Awaitable[None]) -> None:
        """Run work; mark the row done when it finished or was refused, failed otherwise."""
        try:
            await work
        except Refusal:
            await self._finish(row_id, None)
            raise
        except Exception as error:
            await self._finish(row_id, f"{type(error).__name__}: {error}")
            raise
        await self._finish(row_id, None)

    async def _finish(self, row_id: int | None, error: str | None) -> None:
        if row_id is None:
            return
        values: dict[str, Any] = (
            {"done_at": self.services.clock()}
            if error is None
            else {"attempts": SlackInbox.attempts + 1, "last_error": error[:2000]}
        )
        async with self.services.sessions.begin() as session:
            if error is None and row_id in self._secret_rows:
                # Done: a secret typed into the command (a mailbox password) is not kept.
                self._secret_rows.discard(row_id)
                row = await session.get(SlackInbox, row_id)
                text = str(row.payload.get("text") or "") if row is not None else ""
                if row is not None and has_secret(text):
                    values["payload"] = {**row.payload, "text": redact(text)}
            await session.execute(update(SlackInbox).where(SlackInbox.id == row_id).values(values))

    async def due(self, older_than: timedelta) -> list[SlackInbox]:
        """Rows whose work is not done, older than `older_than`, not yet given up on."""
        cutoff = self.services.clock() - older_than
        async with self.services.sessions() as session:
            rows = await session.scalars(
                select(SlackInbox)
                .where(
                    SlackInbox.done_at.is_(None),
                    SlackInbox.attempts < MAX_ATTEMPTS,
                    SlackInbox.received_at <= cutoff,
                )
                .order_by(SlackInbox.id)
                .limit(REPLAY_BATCH)
            )
            return list(rows)
