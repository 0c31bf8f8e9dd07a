"""Slack modals of this area (see c2bot.bot.slack.plugins for the protocol)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp

from c2bot.bot.grammar import Result
from c2bot.bot.slack.kit import Asker, SlackKit
from c2bot.handlers.context import Context
from c2bot.handlers.replies import OpenForm
from c2bot.storage.models import SlackInbox

FORMS: frozenset[str] = frozenset()
KINDS: frozenset[str] = frozenset()


def register(app: AsyncApp, kit: SlackKit) -> None:
    """Listeners for this module's modals."""


async def open_form(kit: SlackKit, ctx: Context, form: OpenForm, trigger_id: str) -> None:
    raise LookupError(f"no form {form.form!r} here")


def replay(kit: SlackKit, ctx: Context, row: SlackInbox) -> Coroutine[Any, Any, None]:
    raise LookupError(f"no kept submission kind {row.kind!r} here")


async def after_reply(kit: SlackKit, asker: Asker, result: Result) -> None:
    """Nothing to add."""
