"""Message events: replies in case threads become case messages.

In the support channel's card thread, staff answer the customer; in the customer's DM thread,
the customer writes to support. Everything else (bots, edits, deletions, chatter outside case
threads) is left alone.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.bot.slack.files import fetch_files
from c2bot.bot.slack.kit import INBOX_KEY, Asker, SlackKit, actor_of
from c2bot.handlers import cases
from c2bot.handlers.context import Context
from c2bot.handlers.errors import NotAllowed
from c2bot.storage.models import CaseMessage

PEOPLE_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
ONLY_STAFF = (
    "Only support staff answer in case threads; this message was not sent to the customer. "
    "To write on your own case, reply in the thread of its card in your DM with c2bot."
)
DM_HINT = (
    "To open a case, use `/case new`; to write on one of your cases, reply in the thread of its "
    "card here. `/case help` lists the rest."
)


def is_thread_reply(event: dict[str, Any]) -> bool:
    thread_ts = event.get("thread_ts")
    return bool(thread_ts) and thread_ts != event.get("ts")


def is_from_a_person(event: dict[str, Any]) -> bool:
    return event.get("subtype") in PEOPLE_SUBTYPES and not event.get("bot_id")


def is_kept_message(event: dict[str, Any]) -> bool:
    """A person's reply in a thread: it may be a case message, so it is kept before the ack."""
    return event.get("type") == "message" and is_from_a_person(event) and is_thread_reply(event)


async def write_on_case(kit: SlackKit, ctx: Context, asker: Asker, event: dict[str, Any]) -> None:
    channel, thread_ts, ts = str(event["channel"]), str(event["thread_ts"]), str(event["ts"])
    async with ctx.sessions() as session:
        case = await cases.case_by_slack_thread(session, channel, thread_ts)
        if case is None or await already_stored(session, case.id, ts):
            return
    if (case.slack_channel, case.slack_ts) == (channel, thread_ts):
        if not ctx.actor.is_staff:
            raise NotAllowed(ONLY_STAFF)
        write = cases.staff_reply
    elif ctx.actor.person_id is not None and ctx.actor.person_id == case.requester_id:
        write = cases.customer_reply
    else:
        return
    files, missing = await fetch_files(
        kit.bot_token, event.get("files") or [], kit.services.settings.slack_api_url
    )
    body = str(event.get("text") or "")
    if missing:
        body += f"\n(Files Slack would not give us: {', '.join(missing)})"
    message = cases.CaseMessageIn(case.id, body, files, slack_ts=ts)
    await write(ctx, message)
    if missing:
        await asker.tell(f"Slack would not give us {', '.join(missing)}; attach it again.")


async def already_stored(session: AsyncSession, case_id: int, ts: str) -> bool:
    """Slack redelivers an event it thinks we missed; a message is stored once."""
    found = await session.scalar(
        select(CaseMessage.id).where(CaseMessage.case_id == case_id, CaseMessage.slack_ts == ts)
    )
    return found is not None


def thread_asker(kit: SlackKit, user_id: str, event: dict[str, Any]) -> Asker:
    return Asker(kit.client, user_id, str(event["channel"]), str(event["thread_ts"]))


async def hint(asker: Asker) -> None:
    await asker.tell(DM_HINT)


def register(app: AsyncApp, kit: SlackKit) -> None:
    async def on_message(event: dict[str, Any], context: AsyncBoltContext) -> None:
        if not is_from_a_person(event):
            return
        ctx = kit.context(actor_of(context))
        if is_thread_reply(event):
            asker = thread_asker(kit, str(context.user_id), event)
            work = write_on_case(kit, ctx, asker, event)
            kit.answer(asker, kit.inbox.tracked(context.get(INBOX_KEY), work), "thread reply")
        elif event.get("channel_type") == "im":
            asker = Asker(kit.client, str(context.user_id), event["channel"])
            kit.answer(asker, hint(asker), "dm hint")

    app.event("message")(on_message)
