"""Slack modules that bring their own modals: one protocol, so the app wires them all alike.

A module lists the forms it opens (`OpenForm.form` names) and the Slack inbox kinds it keeps,
registers its listeners, opens its forms, replays its kept submissions after a crash, and may
add to a command's answer (a file, a picture) after the reply is shown.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp

from c2bot.bot.grammar import Result
from c2bot.bot.slack import customer_form, device_forms, pbx_forms, port_form, report_actions
from c2bot.bot.slack.kit import Asker, SlackKit
from c2bot.handlers.context import Context
from c2bot.handlers.replies import OpenForm
from c2bot.storage.models import SlackInbox


class FormModule(Protocol):
    FORMS: frozenset[str]
    KINDS: frozenset[str]

    def register(self, app: AsyncApp, kit: SlackKit) -> None: ...

    async def open_form(
        self, kit: SlackKit, ctx: Context, form: OpenForm, trigger_id: str
    ) -> None: ...

    def replay(self, kit: SlackKit, ctx: Context, row: SlackInbox) -> Coroutine[Any, Any, None]: ...

    async def after_reply(self, kit: SlackKit, asker: Asker, result: Result) -> None: ...


PLUGINS: tuple[FormModule, ...] = (
    device_forms,
    pbx_forms,
    port_form,
    report_actions,
    customer_form,
)


def for_form(name: str) -> FormModule | None:
    return next((p for p in PLUGINS if name in p.FORMS), None)


def for_kind(kind: str) -> FormModule | None:
    return next((p for p in PLUGINS if kind in p.KINDS), None)
