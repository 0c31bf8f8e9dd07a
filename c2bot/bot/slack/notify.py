"""Case threads: the Slack listener of case events.

Each case gets a card in the support channel whose thread is where staff work it, and, when the
requester is on Slack, a copy in their DM whose thread is their side of the conversation. Events
are shown after their transaction committed, one case at a time in order; a post that fails is
logged and left, and `post_missing_threads` puts missing cards up later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.bot.services import Services
from c2bot.bot.slack.blocks import chunks, escape
from c2bot.bot.slack.cards import card_text, case_card
from c2bot.bot.slack.files import share_files
from c2bot.bot.slack.kit import InFlight
from c2bot.handlers.cases import CaseView, FileUpload, case_view
from c2bot.handlers.events import CaseEvent, CaseEventKind
from c2bot.storage.models import Case, CaseFile, CaseMessage, CaseStatus, MessageKind, Role

log = logging.getLogger(__name__)

POST_TEXT_MAX = 3900
REPOST_AFTER = timedelta(minutes=1)
REPOST_BATCH = 20
# Messages that belong in the support thread, and the event that shows each kind there.
REPLAYED = {
    MessageKind.CUSTOMER: CaseEventKind.CUSTOMER_REPLIED,
    MessageKind.STAFF: CaseEventKind.STAFF_REPLIED,
    MessageKind.NOTE: CaseEventKind.NOTE_ADDED,
}
CONCURRENT_POSTS = 4
UNVERIFIED = (
    ":warning: UNVERIFIED sender: this did not come from the address the case was sent to, "
    "so it changed nothing on the case."
)


@dataclass(frozen=True)
class Thread:
    """Where a case lives in Slack, with the case as it is now."""

    view: CaseView
    channel: str | None
    ts: str | None
    dm_channel: str | None
    dm_ts: str | None
    requester_slack: str | None
    assignee_slack: str | None


@dataclass(frozen=True)
class Message:
    row: CaseMessage
    files: tuple[CaseFile, ...]

    @property
    def uploads(self) -> tuple[FileUpload, ...]:
        return tuple(FileUpload(f.filename, f.content_type, f.data) for f in self.files)


class SlackThreads:
    """Implements `CaseEvents` for Slack; `SlackFrontDoor` adds it to `services.notifier`."""

    def __init__(self, services: Services, client: AsyncWebClient, work: InFlight) -> None:
        self.services = services
        self.client = client
        self.work = work
        self.channel = services.settings.support_channel
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}
        # A burst of events (reminders) must not trip Slack's rate limits all at once.
        self._slots = asyncio.Semaphore(CONCURRENT_POSTS)
        self._show: dict[CaseEventKind, Callable[[CaseEvent], Awaitable[None]]] = {
            CaseEventKind.OPENED: self._opened,
            CaseEventKind.CHANGED: self._changed,
            CaseEventKind.CLOSED: self._changed,
            CaseEventKind.REOPENED: self._changed,
            CaseEventKind.STAFF_REPLIED: self._staff_replied,
            CaseEventKind.CUSTOMER_REPLIED: self._customer_replied,
            CaseEventKind.NOTE_ADDED: self._note_added,
            CaseEventKind.REMINDER: self._reminder,
            CaseEventKind.BOUNCED: self._bounced,
        }
        if self.channel is None:
            log.warning("C2_SUPPORT_CHANNEL is not set: case cards and threads are not posted")

    async def within(self, session: AsyncSession, event: CaseEvent) -> None:
        return None

    async def after(self, event: CaseEvent) -> None:
        self.work.start(self._deliver(event), f"slack case #{event.case_id} {event.kind}")

    async def _deliver(self, event: CaseEvent) -> None:
        async with self._turn(event.case_id), self._slots:
            try:
                await self._show[event.kind](event)
            except Exception:
                log.exception("could not show %s of case #%s in Slack", event.kind, event.case_id)

    @asynccontextmanager
    async def _turn(self, case_id: int) -> AsyncIterator[None]:
        """One case's events are shown one at a time, in the order they happened."""
        lock, users = self._locks.get(case_id, (asyncio.Lock(), 0))
        self._locks[case_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[case_id]
            if users == 1:
                del self._locks[case_id]
            else:
                self._locks[case_id] = (lock, users - 1)

    # -- cards -------------------------------------------------------------------------------

    async def post_missing_threads(self, older_than: timedelta = REPOST_AFTER) -> int:
        """Post the cards of open cases that have none (Slack was down); returns how many."""
        if self.channel is None:
            return 0
        cutoff = self.services.clock() - older_than
        async with self.services.sessions() as session:
            missing = list(
                await session.scalars(
                    select(Case.id)
                    .where(
                        Case.slack_ts.is_(None),
                        Case.status != CaseStatus.CLOSED,
                        Case.created_at <= cutoff,
                    )
                    .order_by(Case.id)
                    .limit(REPOST_BATCH)
                )
            )
        posted = 0
        for case_id in missing:
            async with self._turn(case_id):
                try:
                    await self.post_card(case_id)
                except Exception:
                    log.exception("could not post the card of case #%s; trying later", case_id)
                    break
            posted += 1
        return posted

    async def post_card(self, case_id: int) -> Thread:
        """Put the card up in the support channel and the requester's DM, where it is missing."""
        thread = await self._thread(case_id)
        if thread.ts is None and self.channel is not None:
            await self._post_support_card(thread, self.channel)
        if thread.requester_slack and thread.dm_ts is None:
            await self._post_customer_card(thread, thread.requester_slack)
        return await self._thread(case_id)

    async def _post_support_card(self, thread: Thread, channel: str) -> None:
        view = thread.view
        posted = await self.client.chat_postMessage(
            channel=channel, text=card_text(view), blocks=case_card(view, controls=True)
        )
        channel, ts = str(posted["channel"]), str(posted["ts"])
        if not await self._claim(view.number, slack_channel=channel, slack_ts=ts):
            # Another process posted this card meanwhile: keep theirs.
            await self.client.chat_delete(channel=channel, ts=ts)
            return
        opening = await self._files(view.number, message_id=None)
        if opening:
            await share_files(self.client, channel, ts, [_upload(f) for f in opening])
            await self._mark_posted(opening)

    async def _post_customer_card(self, thread: Thread, user: str) -> None:
        view = thread.view
        opened = await self.client.conversations_open(users=[user])
        dm = str(opened["channel"]["id"])
        posted = await self.client.chat_postMessage(
            channel=dm, text=card_text(view), blocks=case_card(view, controls=False)
        )
        ts = str(posted["ts"])
        if not await self._claim(view.number, customer_dm_channel=dm, customer_dm_ts=ts):
            await self.client.chat_delete(channel=dm, ts=ts)

    async def _update_cards(self, thread: Thread) -> None:
        view = thread.view
        if thread.channel and thread.ts:
            await self.client.chat_update(
                channel=thread.channel,
                ts=thread.ts,
                text=card_text(view),
                blocks=case_card(view, controls=True),
            )
        if thread.dm_channel and thread.dm_ts:
            await self.client.chat_update(
                channel=thread.dm_channel,
                ts=thread.dm_ts,
                text=card_text(view),
                blocks=case_card(view, controls=False),
            )

    # -- events ------------------------------------------------------------------------------

    async def _opened(self, event: CaseEvent) -> None:
        await self.post_card(event.case_id)

    async def _changed(self, event: CaseEvent) -> None:
        thread = await self.post_card(event.case_id)
        await self._update_cards(thread)
        await self._in_support(thread, f"_{escape(event.summary)}_")
        if event.kind in (CaseEventKind.CLOSED, CaseEventKind.REOPENED):
            await self._in_dm(thread, f"_{escape(event.summary)}_")

    async def _staff_replied(self, event: CaseEvent) -> None:
        thread = await self.post_card(event.case_id)
        message = await self._message(event)
        author, body = escape(message.row.author_label), escape(message.row.body)
        if message.row.slack_ts is None:
            # Answered outside the thread (shell, email command): staff should see it there too.
            via = message.row.channel.value
            await self._in_support(thread, f"*{author}* answered (via {via}): {body}", message)
        else:
            await self._mark_posted(message.files)
        await self._in_dm(thread, f"*{author}* (support): {body}", message)
        await self._update_cards(thread)

    async def _customer_replied(self, event: CaseEvent) -> None:
        thread = await self.post_card(event.case_id)
        message = await self._message(event)
        row = message.row
        line = (
            f"*Customer* ({escape(row.author_label)}, via {row.channel.value}): {escape(row.body)}"
        )
        if not row.verified:
            line = f"{UNVERIFIED}\n{line}"
        await self._in_support(thread, line, message)
        if event.summary:
            await self._update_cards(thread)
            await self._in_support(thread, f"_{escape(event.summary)}_")

    async def _note_added(self, event: CaseEvent) -> None:
        thread = await self.post_card(event.case_id)
        message = await self._message(event)
        author, body = escape(message.row.author_label), escape(message.row.body)
        await self._in_support(thread, f":lock: Internal note by {author}: {body}", message)

    async def _reminder(self, event: CaseEvent) -> None:
        thread = await self.post_card(event.case_id)
        who = f"<@{thread.assignee_slack}>" if thread.assignee_slack else "<!here>"
        await self._in_support(thread, f":alarm_clock: {who} {escape(event.summary)}")

    async def _bounced(self, event: CaseEvent) -> None:
        thread = await self.post_card(event.case_id)
        await self._in_support(thread, f":warning: {escape(event.summary)}")

    # -- posting -----------------------------------------------------------------------------

    async def _in_support(self, thread: Thread, text: str, message: Message | None = None) -> None:
        if not (thread.channel and thread.ts):
            return
        await self._post(thread.channel, thread.ts, text)
        if message is not None and message.files:
            await share_files(self.client, thread.channel, thread.ts, message.uploads)
            await self._mark_posted(message.files)
        if message is not None:
            await self._mark_shown(message.row.id)

    async def _in_dm(self, thread: Thread, text: str, message: Message | None = None) -> None:
        if not (thread.dm_channel and thread.dm_ts):
            return
        await self._post(thread.dm_channel, thread.dm_ts, text)
        if message is not None and message.files:
            await share_files(self.client, thread.dm_channel, thread.dm_ts, message.uploads)

    async def _post(self, channel: str, thread_ts: str, text: str) -> None:
        for part in chunks(text, POST_TEXT_MAX):
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=part)

    # -- storage -----------------------------------------------------------------------------

    async def _thread(self, case_id: int) -> Thread:
        async with self.services.sessions() as session:
            case = await session.get(Case, case_id, populate_existing=True)
            if case is None:
                raise LookupError(f"case #{case_id} is gone")
            return Thread(
                view=case_view(case),
                channel=case.slack_channel,
                ts=case.slack_ts,
                dm_channel=case.customer_dm_channel,
                dm_ts=case.customer_dm_ts,
                requester_slack=_customer_on_slack(case),
                assignee_slack=case.assignee.slack_user_id if case.assignee else None,
            )

    async def _message(self, event: CaseEvent) -> Message:
        async with self.services.sessions() as session:
            row = await session.get(CaseMessage, event.message_id)
            if row is None:
                raise LookupError(f"message {event.message_id} of case #{event.case_id} is gone")
            files = await self._files(event.case_id, row.id, session)
            return Message(row, files)

    async def _files(
        self, case_id: int, message_id: int | None, session: AsyncSession | None = None
    ) -> tuple[CaseFile, ...]:
        """A message's files (message_id None: those the case was opened with) not yet posted."""
        query = select(CaseFile).where(
            CaseFile.case_id == case_id,
            CaseFile.message_id.is_(None)
            if message_id is None
            else CaseFile.message_id == message_id,
            CaseFile.posted_to_slack.is_(False),
        )
        if session is not None:
            return tuple(await session.scalars(query.order_by(CaseFile.id)))
        async with self.services.sessions() as own:
            return tuple(await own.scalars(query.order_by(CaseFile.id)))

    async def _claim(self, case_id: int, **where_posted: Any) -> bool:
        """Store where a card was posted, unless one was stored meanwhile."""
        column = Case.slack_ts if "slack_ts" in where_posted else Case.customer_dm_ts
        async with self.services.sessions.begin() as session:
            result = await session.execute(
                update(Case).where(Case.id == case_id, column.is_(None)).values(**where_posted)
            )
            return cast(CursorResult[Any], result).rowcount == 1

    async def _mark_shown(self, message_id: int) -> None:
        async with self.services.sessions.begin() as session:
            await session.execute(
                update(CaseMessage).where(CaseMessage.id == message_id).values(shown_in_slack=True)
            )

    async def post_missing_messages(self, older_than: timedelta = REPOST_AFTER) -> int:
        """Show thread messages a Slack outage kept out of their case thread; returns how many.

        Messages written in the thread itself (they have a Slack ts) are there already.
        """
        cutoff = self.services.clock() - older_than
        async with self.services.sessions() as session:
            rows = (
                await session.execute(
                    select(CaseMessage.id, CaseMessage.case_id, CaseMessage.kind)
                    .join(Case, Case.id == CaseMessage.case_id)
                    .where(
                        CaseMessage.shown_in_slack.is_(False),
                        CaseMessage.slack_ts.is_(None),
                        CaseMessage.kind.in_(list(REPLAYED)),
                        CaseMessage.created_at <= cutoff,
                        Case.slack_ts.is_not(None),
                    )
                    .order_by(CaseMessage.id)
                    .limit(REPOST_BATCH)
                )
            ).all()
        shown = 0
        for message_id, case_id, kind in rows:
            event = CaseEvent(REPLAYED[kind], case_id, message_id)
            async with self._turn(case_id):
                try:
                    await self._show[event.kind](event)
                except Exception:
                    log.exception(
                        "could not show message %s of case #%s; trying later", message_id, case_id
                    )
                    break
            shown += 1
        return shown

    async def _mark_posted(self, files: tuple[CaseFile, ...]) -> None:
        """posted_to_slack: the file is in the support thread."""
        if not files:
            return
        async with self.services.sessions.begin() as session:
            await session.execute(
                update(CaseFile)
                .where(CaseFile.id.in_([f.id for f in files]))
                .values(posted_to_slack=True)
            )


def _customer_on_slack(case: Case) -> str | None:
    """The requester's Slack id, unless staff opened the case (they work in the support thread)."""
    requester = case.requester
    if requester is None or requester.role in (Role.STAFF, Role.ADMIN):
        return None
    return requester.slack_user_id


def _upload(file: CaseFile) -> FileUpload:
    return FileUpload(file.filename, file.content_type, file.data)
