"""Internal notes: the "Internal note on case" message shortcut and its modal.

A note is an explicit action, never a text prefix; it shows in the support thread only.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from c2bot.bot.slack.blocks import Block, escape, mrkdwn, plain
from c2bot.bot.slack.kit import Asker, SlackKit, actor_of, apology
from c2bot.handlers import cases
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, Refusal
from c2bot.handlers.permissions import check_staff

SHORTCUT = "case_note"
MODAL = "case_note_modal"
NOTE = "note"
VALUE = "value"
QUOTE_MAX = 300
NOTE_INPUT_MAX = 3000
ERROR_MAX = 150


async def case_of_message(kit: SlackKit, channel: str, message: dict[str, Any]) -> int:
    """The case whose support thread holds the message (the card itself included)."""
    thread_ts = str(message.get("thread_ts") or message.get("ts") or "")
    async with kit.services.sessions() as session:
        case = await cases.case_by_slack_thread(session, channel, thread_ts)
    if case is None or case.slack_ts != thread_ts:
        raise Invalid("Use this shortcut on a message in a case's thread in the support channel.")
    return case.id


def note_view(number: int, quoted: str) -> Block:
    excerpt = quoted if len(quoted) <= QUOTE_MAX else quoted[:QUOTE_MAX] + "…"
    about = f"On case #{number}. Staff only: never sent to the customer."
    blocks: list[Block] = [{"type": "context", "elements": [mrkdwn(escape(about))]}]
    if excerpt:
        blocks.append({"type": "section", "text": mrkdwn("> " + escape(excerpt))})
    element = {"type": "plain_text_input", "action_id": VALUE, "multiline": True}
    blocks.append(
        {
            "type": "input",
            "block_id": NOTE,
            "label": plain("Note"),
            "element": element | {"max_length": NOTE_INPUT_MAX},
        }
    )
    return {
        "type": "modal",
        "callback_id": MODAL,
        "private_metadata": str(number),
        "title": plain("Internal note", 24),
        "submit": plain("Add note", 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }


async def open_note(kit: SlackKit, ctx: Context, shortcut: dict[str, Any]) -> None:
    check_staff(ctx.actor, "add internal notes")
    message = shortcut.get("message") or {}
    number = await case_of_message(kit, str(shortcut["channel"]["id"]), message)
    view = note_view(number, str(message.get("text") or ""))
    await kit.client.views_open(trigger_id=shortcut["trigger_id"], view=view)


def register(app: AsyncApp, kit: SlackKit) -> None:
    async def on_shortcut(
        ack: AsyncAck, shortcut: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        ctx = kit.context(actor_of(context))
        kit.answer(Asker.of(kit.client, context), open_note(kit, ctx, shortcut), SHORTCUT)

    async def on_submit(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        # Only the database is involved, so the note is committed before the modal closes.
        ctx = kit.context(actor_of(context))
        state = view["state"]["values"].get(NOTE, {}).get(VALUE) or {}
        text = str(state.get("value") or "")
        try:
            if not view.get("private_metadata", "").isdigit():
                raise Invalid("This form lost its case number; run the shortcut again.")
            number = int(view["private_metadata"])
            await cases.add_note(ctx, cases.CaseMessageIn(number=number, body=text))
        except Refusal as refusal:
            await ack(response_action="errors", errors={NOTE: refusal.message[:ERROR_MAX]})
            return
        except Exception:
            await ack(response_action="errors", errors={NOTE: apology(MODAL, context.user_id)})
            return
        await ack()

    app.shortcut(SHORTCUT)(on_shortcut)
    app.view(MODAL)(on_submit)
