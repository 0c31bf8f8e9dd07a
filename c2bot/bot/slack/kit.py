"""What every listener group shares: services, the Web API client, work in flight after an ack,
and how to answer the person who asked (refusals as their message, bugs with a reference id)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from c2bot.bot.services import Services
from c2bot.bot.slack.blocks import fallback_text, reply_blocks
from c2bot.bot.slack.inbox import Inbox
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Refusal
from c2bot.handlers.replies import Reply, ReplyFile
from c2bot.storage.models import Channel

log = logging.getLogger(__name__)

ACTOR_KEY = "c2_actor"
INBOX_KEY = "c2_inbox_row"
DRAIN_SECONDS = 10.0


class InFlight:
    """Work started after an ack: held (so it is not collected mid-way) and awaited on stop.

    Acks come first: work waits while requests are still on their way to their ack, so a burst
    of commands is acknowledged before any of their slower work competes for the loop.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._acking = 0
        self._acks_done = asyncio.Event()
        self._acks_done.set()

    @contextmanager
    def acking(self) -> Iterator[None]:
        """Mark one request as on its way to its ack."""
        self._acking += 1
        self._acks_done.clear()
        try:
            yield
        finally:
            self._acking -= 1
            if self._acking == 0:
                self._acks_done.set()

    def start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._after_acks(work), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    async def _after_acks(self, work: Coroutine[Any, Any, None]) -> None:
        await self._acks_done.wait()
        await work

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack work %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, timeout: float = DRAIN_SECONDS) -> None:  # noqa: ASYNC109
        """Wait for the work in flight, including work it starts; cancel what outlasts timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks:
            left = deadline - loop.time()
            _, pending = await asyncio.wait(set(self._tasks), timeout=max(left, 0))
            if pending and left <= 0:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                return


@dataclass(frozen=True)
class Asker:
    """Where to answer one person: the request's response_url, else an ephemeral message in the
    channel it came from, else a direct message."""

    client: AsyncWebClient
    user_id: str
    channel_id: str | None = None
    thread_ts: str | None = None
    respond: AsyncRespond | None = None

    @classmethod
    def of(cls, client: AsyncWebClient, context: AsyncBoltContext) -> Asker:
        respond = context.respond if context.response_url else None
        return cls(client, str(context.user_id), context.channel_id, None, respond)

    async def tell(self, text: str) -> None:
        await self.show(Reply(title=text))

    async def show(self, reply: Reply) -> None:
        text, blocks = fallback_text(reply), reply_blocks(reply)
        if self.respond is not None:
            kind = "in_channel" if reply.public else "ephemeral"
            await self.respond(text, blocks, response_type=kind, replace_original=False)
        elif self.channel_id and reply.public:
            await self.client.chat_postMessage(
                channel=self.channel_id, text=text, blocks=blocks, thread_ts=self.thread_ts
            )
        elif self.channel_id:
            await self.client.chat_postEphemeral(
                channel=self.channel_id,
                user=self.user_id,
                text=text,
                blocks=blocks,
                thread_ts=self.thread_ts,
            )
        else:
            await self.client.chat_postMessage(channel=self.user_id, text=text, blocks=blocks)
        if reply.files:
            await self.upload(reply.files)

    async def upload(self, files: Sequence[ReplyFile]) -> None:
        """A reply's files into the conversation the request came from (files upload v2); where
        the bot may not post (a channel it is not in), into the asker's direct messages."""
        uploads = [
            {"content": f.data, "filename": f.filename, "title": f.title or f.filename}
            for f in files
        ]
        if self.channel_id:
            try:
                await self.client.files_upload_v2(
                    file_uploads=uploads, channel=self.channel_id, thread_ts=self.thread_ts
                )
                return
            except SlackApiError as error:
                log.info("upload to %s refused (%s); sending to DM", self.channel_id, error)
        opened = await self.client.conversations_open(users=[self.user_id])
        await self.client.files_upload_v2(
            file_uploads=uploads, channel=str(opened["channel"]["id"])
        )


def apology(what: str, user_id: str | None) -> str:
    """Log the exception being handled with a short reference, and say sorry quoting it."""
    reference = secrets.token_hex(4)
    log.exception("slack %s failed for %s (ref %s)", what, user_id, reference)
    return f"Sorry, something went wrong (ref {reference})."


async def answering(asker: Asker, work: Awaitable[None], what: str) -> None:
    """Run work for asker: a refusal is told as it is; anything else is logged with a reference."""
    try:
        await work
    except Refusal as refusal:
        await _tell_safely(asker, refusal.message)
    except Exception:
        await _tell_safely(asker, apology(what, asker.user_id))


async def _tell_safely(asker: Asker, text: str) -> None:
    try:
        await asker.tell(text)
    except Exception:
        log.exception("could not answer %s on Slack: %s", asker.user_id, text)


def actor_of(context: AsyncBoltContext) -> Actor:
    """The linked person behind a request (the people middleware put it there)."""
    actor = context.get(ACTOR_KEY)
    if not isinstance(actor, Actor):
        raise RuntimeError("no actor on this request: is the people middleware registered?")
    return actor


@dataclass
class SlackKit:
    """Handed to every listener group's `register`."""

    services: Services
    client: AsyncWebClient
    bot_token: str
    work: InFlight = field(default_factory=InFlight)
    inbox: Inbox = field(init=False)

    def __post_init__(self) -> None:
        self.inbox = Inbox(self.services)

    def context(self, actor: Actor) -> Context:
        return self.services.context(actor, Channel.SLACK)

    def answer(self, asker: Asker, work: Coroutine[Any, Any, None], what: str) -> None:
        """Do work after the ack, answering asker if it is refused or fails."""
        self.work.start(answering(asker, work, what), f"slack {what}")
