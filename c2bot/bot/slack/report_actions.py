"""`/report cdr` in Slack: a "Next page" button under a page of calls, carrying the next
page's words (with its keyset cursor); pressing it runs them as the person who presses it."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from c2bot.bot.commands import run_command
from c2bot.bot.grammar import Result
from c2bot.bot.reportcommands import ReportPage
from c2bot.bot.slack.blocks import Block, plain
from c2bot.bot.slack.kit import Asker, SlackKit, actor_of
from c2bot.handlers.context import Context
from c2bot.handlers.replies import OpenForm
from c2bot.storage.models import SlackInbox

NEXT_PAGE = "report_next_page"
FORMS: frozenset[str] = frozenset()
KINDS: frozenset[str] = frozenset()


def next_page_blocks(words: str) -> list[Block]:
    button = {"type": "button", "action_id": NEXT_PAGE, "text": plain("Next page"), "value": words}
    return [{"type": "actions", "block_id": NEXT_PAGE, "elements": [button]}]


async def offer_next_page(asker: Asker, words: str) -> None:
    text, blocks = "More calls follow.", next_page_blocks(words)
    if asker.respond is not None:
        await asker.respond(text, blocks, response_type="ephemeral", replace_original=False)
    elif asker.channel_id:
        await asker.client.chat_postEphemeral(
            channel=asker.channel_id, user=asker.user_id, text=text, blocks=blocks
        )
    else:
        await asker.client.chat_postMessage(channel=asker.user_id, text=text, blocks=blocks)


async def show_page(kit: SlackKit, ctx: Context, asker: Asker, words: str) -> None:
    outcome = await run_command(ctx, "report", words)
    await asker.show(outcome.reply)
    await after_reply(kit, asker, outcome.result)


def register(app: AsyncApp, kit: SlackKit) -> None:
    async def on_next(ack: AsyncAck, action: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        ctx = kit.context(actor_of(context))
        asker = Asker.of(kit.client, context)
        words = str(action.get("value") or "")
        kit.answer(asker, show_page(kit, ctx, asker, words), NEXT_PAGE)

    app.action(NEXT_PAGE)(on_next)


async def open_form(kit: SlackKit, ctx: Context, form: OpenForm, trigger_id: str) -> None:
    raise LookupError(f"no form {form.form!r} here")


def replay(kit: SlackKit, ctx: Context, row: SlackInbox) -> Coroutine[Any, Any, None]:
    raise LookupError(f"no kept submission kind {row.kind!r} here")


async def after_reply(kit: SlackKit, asker: Asker, result: Result) -> None:
    """A page of calls with more after it gets its "Next page" button."""
    if isinstance(result, ReportPage) and result.next_words:
        await offer_next_page(asker, result.next_words)
