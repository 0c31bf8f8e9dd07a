"""The "new case" modal: the carrier portal's form in Slack, checked before it closes.

`/case new` with no words opens it. On submission the form is checked by the domain (errors show
next to their fields); once it closes, attached files are fetched from Slack and the case opens.
The requester's confirmation is the case card in their DM (see notify.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from sqlalchemy import select

from c2bot.bot.commands import Outcome
from c2bot.bot.grammar import UsageError
from c2bot.bot.slack import forms
from c2bot.bot.slack.blocks import Block
from c2bot.bot.slack.files import SlackFile, fetch_files
from c2bot.bot.slack.inbox import CASE_FORM
from c2bot.bot.slack.kit import Asker, SlackKit, actor_of, apology
from c2bot.handlers import cases
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, Refusal
from c2bot.handlers.permissions import visible_accounts
from c2bot.handlers.replies import OpenForm
from c2bot.storage.models import Account, CaseType, Contact, Priority, Role

CASE_NEW = "case_new"
ALWAYS = frozenset({"type", "priority", "subject", "description"})
MAX_OPTIONS = 100
DESCRIPTION_INPUT_MAX = 3000


@dataclass(frozen=True)
class Choices:
    """What the form offers this person."""

    contacts: tuple[tuple[str, str], ...] = ()
    contact: str | None = None
    accounts: tuple[tuple[str, str], ...] = ()
    account: str | None = None
    asks_account: bool = False


async def open_form(kit: SlackKit, ctx: Context, form: OpenForm, trigger_id: str) -> None:
    if form.form != CASE_NEW:
        raise UsageError(Outcome(form).reply.title)
    view = case_new_view(await choices_for(ctx))
    await kit.client.views_open(trigger_id=trigger_id, view=view)


async def choices_for(ctx: Context) -> Choices:
    actor = ctx.actor
    async with ctx.sessions() as session:
        if actor.role is Role.CUSTOMER and actor.account_id is not None:
            contacts = list(
                await session.scalars(
                    select(Contact)
                    .where(Contact.account_id == actor.account_id)
                    .order_by(Contact.id)
                )
            )
            email = (actor.email or "").lower()
            mine = next((c.email for c in contacts if c.email.lower() == email), None)
            options = tuple((f"{c.name} <{c.email}>", c.email) for c in contacts)
            return Choices(contacts=options[:MAX_OPTIONS], contact=mine)
        if actor.role is not Role.RESELLER:
            return Choices(asks_account=True)
        visible = await visible_accounts(session, actor) or set()
        accounts = list(
            await session.scalars(
                select(Account)
                .where(Account.id.in_(visible))
                .order_by(Account.number)
                .limit(MAX_OPTIONS + 1)
            )
        )
    if len(accounts) > MAX_OPTIONS:
        return Choices(asks_account=True)
    own = next((a.number for a in accounts if a.id == actor.account_id), None)
    options = tuple((f"{a.number} {a.company}", a.number) for a in accounts)
    return Choices(accounts=options, account=own, asks_account=True)


def case_new_view(choices: Choices) -> Block:
    blocks = [forms.select("type", "Type of question", [(label, t.value) for t, label in _types()])]
    if choices.asks_account:
        blocks.append(_account_block(choices))
    if choices.contacts:
        contact = forms.select("contact", "Contact", list(choices.contacts), choices.contact)
        blocks.append(contact | {"optional": True})
    elif choices.asks_account:
        hint = "Email or name of one of the account's contacts. Empty: you."
        blocks.append(forms.text_input("contact", "Contact", optional=True, hint=hint))
    blocks += [
        _priority_block(),
        forms.text_input("subject", "Subject", max_length=cases.SUBJECT_MAX),
        forms.text_input(
            "description", "Description", multiline=True, max_length=DESCRIPTION_INPUT_MAX
        ),
        forms.file_input("File"),
    ]
    return forms.modal(CASE_NEW, "New support case", "Open case", blocks)


def _types() -> list[tuple[CaseType, str]]:
    return list(cases.CASE_TYPES.items())


def _account_block(choices: Choices) -> Block:
    if choices.accounts:
        return forms.select("account", "Account", list(choices.accounts), choices.account)
    return forms.text_input("account", "Account number", hint="The account the case is about.")


def _priority_block() -> Block:
    options = [forms.option(p.value.title(), p.value, meaning) for p, meaning in _meanings()]
    normal = next(o for o in options if o["value"] == Priority.NORMAL.value)
    element = {"type": "radio_buttons", "action_id": forms.VALUE, "options": options}
    return forms.input_block("priority", "Priority", element | {"initial_option": normal})


def _meanings() -> list[tuple[Priority, str]]:
    return list(cases.PRIORITY_MEANINGS.items())


# -- submission -------------------------------------------------------------------------------


def read_case_form(values: dict[str, Any]) -> tuple[cases.NewCase, list[SlackFile]]:
    """The submitted state -> a new-case request (without files) and the Slack files attached."""
    kind, priority = forms.chosen(values, "type") or "", forms.chosen(values, "priority") or ""
    problems = {}
    if kind not in {t.value for t in CaseType}:
        problems["type"] = "Pick the type of question."
    if priority not in {p.value for p in Priority}:
        problems["priority"] = "Pick a priority."
    if problems:
        raise Invalid(" ".join(problems.values()), problems)
    request = cases.NewCase(
        type=CaseType(kind),
        priority=Priority(priority),
        subject=forms.chosen(values, "subject") or "",
        description=forms.chosen(values, "description") or "",
        account=(forms.chosen(values, "account") or "").strip() or None,
        contact=(forms.chosen(values, "contact") or "").strip() or None,
    )
    return request, forms.files_of(values)


def form_errors(refusal: Refusal, blocks: set[str]) -> dict[str, str]:
    return forms.form_errors(refusal, blocks, fallback="subject")


def read_form_once(view_id: str, values: dict[str, Any]) -> tuple[cases.NewCase, list[SlackFile]]:
    """The form's request, marked with its modal so that replaying it opens one case only."""
    request, files = read_case_form(values)
    return replace(request, source_ref=f"slack-view:{view_id}"), files


async def open_from_form(
    kit: SlackKit, ctx: Context, asker: Asker, request: cases.NewCase, files: list[SlackFile]
) -> None:
    fetched, missing = await fetch_files(kit.bot_token, files, kit.services.settings.slack_api_url)
    view = await cases.open_case(ctx, replace(request, files=fetched))
    if missing:
        await asker.tell(
            f"Case #{view.number} is open, but Slack would not give us these files: "
            f"{', '.join(missing)}. Attach them again in the case's thread."
        )


def register(app: AsyncApp, kit: SlackKit) -> None:
    async def on_submit(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        ctx, user = kit.context(actor_of(context)), str(context.user_id)
        values = view["state"]["values"]
        blocks = (
            set(values) | ALWAYS | ({"account"} if ctx.actor.role is not Role.CUSTOMER else set())
        )
        try:
            request, files = read_form_once(view["id"], values)
            await cases.check_new_case(ctx, request)
        except Refusal as refusal:
            await ack(response_action="errors", errors=form_errors(refusal, blocks))
            return
        except Exception:
            await ack(response_action="errors", errors={"subject": apology(CASE_NEW, user)})
            return
        # Slack closes the form on our ack: the form is written down before we give it.
        row = await kit.inbox.keep(CASE_FORM, user, {"view_id": view["id"], "values": values})
        await ack()
        asker = Asker(kit.client, user)
        work = open_from_form(kit, ctx, asker, request, files)
        kit.answer(asker, kit.inbox.tracked(row, work), "case form")

    app.view(CASE_NEW)(on_submit)
