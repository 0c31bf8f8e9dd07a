"""The case card's buttons: assign to me, priority, pending, close, reopen.

The domain checks who may press what; a refusal comes back to the presser only. The card itself
is redrawn by the case event each change fires (notify.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from c2bot.bot.slack import cards
from c2bot.bot.slack.kit import Asker, SlackKit, actor_of
from c2bot.handlers import cases
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid

Press = Callable[[Context, dict[str, Any]], Awaitable[object]]


def case_number(action: dict[str, Any]) -> int:
    value = str(action.get("value") or "")
    if not value.isdigit():
        raise Invalid("This button does not name a case; use `/case` instead.")
    return int(value)


async def assign(ctx: Context, action: dict[str, Any]) -> object:
    return await cases.assign_to_me(ctx, case_number(action))


async def set_priority(ctx: Context, action: dict[str, Any]) -> object:
    chosen = str((action.get("selected_option") or {}).get("value") or "")
    try:
        number, priority = cards.parse_priority_value(chosen)
    except ValueError:
        raise Invalid(f"{chosen!r} is not a priority of a case.") from None
    return await cases.set_priority(ctx, number, priority)


async def pending(ctx: Context, action: dict[str, Any]) -> object:
    return await cases.set_pending(ctx, case_number(action))


async def close(ctx: Context, action: dict[str, Any]) -> object:
    return await cases.close_case(ctx, case_number(action))


async def reopen(ctx: Context, action: dict[str, Any]) -> object:
    return await cases.reopen_case(ctx, case_number(action))


PRESSES: dict[str, Press] = {
    cards.ASSIGN: assign,
    cards.PRIORITY: set_priority,
    cards.PENDING: pending,
    cards.CLOSE: close,
    cards.REOPEN: reopen,
}


async def run_press(press: Press, ctx: Context, action: dict[str, Any]) -> None:
    await press(ctx, action)


def register(app: AsyncApp, kit: SlackKit) -> None:
    def listener(action_id: str, press: Press) -> Callable[..., Awaitable[None]]:
        async def on_press(
            ack: AsyncAck, action: dict[str, Any], context: AsyncBoltContext
        ) -> None:
            await ack()
            ctx = kit.context(actor_of(context))
            kit.answer(Asker.of(kit.client, context), run_press(press, ctx, action), action_id)

        return on_press

    for action_id, press in PRESSES.items():
        app.action(action_id)(listener(action_id, press))
