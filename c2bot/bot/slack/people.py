"""Who is asking: a global middleware that turns the Slack user into an `Actor`.

A user nobody linked yet is told how to get linked, and nothing else happens. Messages from bots
(ours and others) and events without a user stop here too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from c2bot.bot.slack.inbox import THREAD_MESSAGE
from c2bot.bot.slack.kit import ACTOR_KEY, INBOX_KEY, Asker, SlackKit
from c2bot.bot.slack.messages import is_kept_message
from c2bot.handlers.accounts import person_by_slack_id
from c2bot.handlers.context import Actor


def link_instructions(user_id: str) -> str:
    return (
        f"You are not linked to a c2bot account yet (your Slack user id is {user_id}). "
        "Ask an admin to link you with "
        f"`c2bot user link {user_id} --role customer --account ACCOUNT_NUMBER`."
    )


def from_a_bot(body: dict[str, Any]) -> bool:
    event = body.get("event") or {}
    return bool(event.get("bot_id")) or event.get("subtype") == "bot_message"


def wants_an_answer(body: dict[str, Any]) -> bool:
    """Whether an unlinked user's request deserves the link instructions.

    Commands, buttons, shortcuts and direct messages do; chatter in channels does not.
    """
    event = body.get("event")
    if event is None:
        return body.get("type") != "view_closed"
    return bool(event.get("type") == "message" and event.get("channel_type") == "im")


def is_slash_command(body: dict[str, Any]) -> bool:
    return "command" in body and "event" not in body


async def actor_for(kit: SlackKit, slack_user_id: str) -> Actor | None:
    async with kit.services.sessions() as session:
        person = await person_by_slack_id(session, slack_user_id)
        return Actor.of(person) if person else None


def register(app: AsyncApp, kit: SlackKit) -> None:
    async def resolve_person(
        body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        user_id = context.user_id
        if not user_id or from_a_bot(body):
            return BoltResponse(status=200, body="")
        if is_slash_command(body):
            # A command acks before anything else; its listener looks the person up after.
            await next()
            return None
        actor = await actor_for(kit, user_id)
        if actor is not None:
            context[ACTOR_KEY] = actor
            event = body.get("event") or {}
            if is_kept_message(event):
                # Events are acked as soon as we go on: write the message down first.
                row = await kit.inbox.keep(THREAD_MESSAGE, user_id, event)
                context[INBOX_KEY] = row
            await next()
            return None
        if wants_an_answer(body):
            asker = Asker.of(kit.client, context)
            kit.answer(asker, asker.tell(link_instructions(user_id)), "link instructions")
        return BoltResponse(status=200, body="")

    app.middleware(resolve_person)
