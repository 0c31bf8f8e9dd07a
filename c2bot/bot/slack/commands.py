"""Slash commands: every one goes through the shared grammar; acked first, answered after."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from c2bot.bot.commands import changes_something, run_command
from c2bot.bot.faxcommands import FAX_SEND, FaxShown
from c2bot.bot.slack import case_form, fax_form, people, plugins
from c2bot.bot.slack.inbox import COMMAND
from c2bot.bot.slack.kit import Asker, SlackKit
from c2bot.handlers.replies import OpenForm

SLASH_COMMANDS = ("/case", "/c2", "/report", "/route", "/port", "/fax", "/calls")


async def answer_command(kit: SlackKit, asker: Asker, command: dict[str, Any]) -> None:
    actor = await people.actor_for(kit, asker.user_id)
    if actor is None:
        await asker.tell(people.link_instructions(asker.user_id))
        return
    ctx = kit.context(actor)
    if command.get("inbox_id") is not None:
        ctx = replace(ctx, request_ref=f"slack:inbox:{command['inbox_id']}")
    outcome = await run_command(ctx, command["command"], command.get("text") or "", forms=True)
    plugin = plugins.for_form(outcome.result.form) if isinstance(outcome.result, OpenForm) else None
    if isinstance(outcome.result, OpenForm) and outcome.result.form == FAX_SEND:
        await fax_form.open_form(kit, ctx, command["trigger_id"])
    elif isinstance(outcome.result, OpenForm) and plugin is not None:
        await plugin.open_form(kit, ctx, outcome.result, command["trigger_id"])
    elif isinstance(outcome.result, OpenForm):
        await case_form.open_form(kit, ctx, outcome.result, command["trigger_id"])
    else:
        await asker.show(outcome.result)
    if isinstance(outcome.result, FaxShown):
        await fax_form.share_preview(kit, asker, outcome.result)
    for module in plugins.PLUGINS:
        await module.after_reply(kit, asker, outcome.result)


def kept_command(command: dict[str, Any]) -> dict[str, Any]:
    return {key: command.get(key) for key in ("command", "text", "channel_id", "user_id")}


def register(app: AsyncApp, kit: SlackKit) -> None:
    async def on_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
        row = None
        if changes_something(f"{command['command']} {command.get('text') or ''}"):
            # A change is written down before the ack; reading needs no such care.
            row = await kit.inbox.keep(COMMAND, str(context.user_id), kept_command(command))
        await ack()
        if row is not None:
            command = {**command, "inbox_id": row}
        asker = Asker.of(kit.client, context)
        work = kit.inbox.tracked(row, answer_command(kit, asker, command))
        kit.answer(asker, work, command["command"])

    for name in SLASH_COMMANDS:
        app.command(name)(on_command)
