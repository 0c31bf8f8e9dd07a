"""Slack modals for customers (see plugins.py for the protocol).

`/c2 customer new` with no words opens the platform's customer form. A submission is made
(and committed) before the ack, in one transaction with its first SIP device: a refusal stays
in the modal, each problem next to its box, and nothing acked is left undone. The modal then
turns into the result, with the device's password when c2bot made it: shown once, to the
person alone, gone when the modal closes (the direct message that follows leaves it out).
Passwords are never kept in the Slack inbox: this form is not kept at all.

`/c2 customer import` opens a form with a file input for the CSV. The file is fetched from
Slack after the ack (it may take longer than Slack's 3 seconds), so the submission (the file's
reference, not its contents) is kept in the Slack inbox first; the outcome comes as a direct
message: what was imported, or every bad row and why, with nothing written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from sqlalchemy import select

from c2bot.bot.customercommands import CUSTOMER_IMPORT, CUSTOMER_NEW
from c2bot.bot.grammar import Result
from c2bot.bot.slack import forms
from c2bot.bot.slack.blocks import Block, field_sections, mrkdwn, plain
from c2bot.bot.slack.files import fetch_files
from c2bot.bot.slack.kit import Asker, SlackKit, actor_of, apology
from c2bot.handlers import customers
from c2bot.handlers.accounts import check_may_add_accounts
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, Refusal
from c2bot.handlers.replies import OpenForm
from c2bot.storage.models import RateGroup, Role, SlackInbox

NEW_VIEW, IMPORT_VIEW, DONE_VIEW = "customer_new", "customer_import", "customer_done"
IMPORT_KIND = "customer_import"  # the Slack inbox kind of a kept import
FORMS: frozenset[str] = frozenset({CUSTOMER_NEW, CUSTOMER_IMPORT})
KINDS: frozenset[str] = frozenset({IMPORT_KIND})
MAX_OPTIONS = 99  # and "none"
TRANSLATION_HINT = 'match/replace rules, comma-separated, e.g. "0031/0","00/+"; empty: none.'
# Where a handler's field name is shown in this form.
BLOCK_OF_FIELD = {"rate_group": "rategroup", "account": "reseller", "name": "sip-username"}


# --- opening -----------------------------------------------------------------------------------


async def open_form(kit: SlackKit, ctx: Context, form: OpenForm, trigger_id: str) -> None:
    if form.form not in FORMS:
        raise LookupError(f"no form {form.form!r} here")
    check_may_add_accounts(ctx)  # a customer is told so, rather than shown a form it cannot use
    view = import_view() if form.form == CUSTOMER_IMPORT else new_view(ctx, await _groups(ctx))
    await kit.client.views_open(trigger_id=trigger_id, view=view)


async def _groups(ctx: Context) -> list[str] | None:
    """A reseller picks one of its own rate groups; others type a name (None)."""
    if ctx.actor.role is not Role.RESELLER or ctx.actor.account_id is None:
        return None
    async with ctx.sessions() as session:
        names = list(
            await session.scalars(
                select(RateGroup.name)
                .where(RateGroup.account_id == ctx.actor.account_id)
                .order_by(RateGroup.name)
                .limit(MAX_OPTIONS + 1)
            )
        )
    return names if 0 < len(names) <= MAX_OPTIONS else None


def _text(block_id: str, hint: str | None = None, *, optional: bool = True) -> Block:
    label = customers.LABELS[block_id]
    return forms.text_input(block_id, label, max_length=500, optional=optional, hint=hint)


def new_view(ctx: Context, groups: list[str] | None) -> Block:
    blocks: list[Block] = []
    if ctx.actor.is_staff:
        hint = "A reseller's account number; empty: a direct account of the carrier."
        blocks.append(_text("reseller", hint))
        roles = [
            ("Customer", "customer"),
            ("Reseller (its email becomes a reseller user)", "reseller"),
        ]
        blocks.append(forms.select("role", "Role", roles, "customer"))
    else:
        line = "The new account is your customer."
        blocks.append({"type": "section", "text": mrkdwn(line)})
    blocks += [
        _text("number", "Empty: 10 random digits are made."),
        _text(
            "password",
            f"Portal password: {customers.PASSWORD_MIN}+ characters, letters and digits; "
            "stored hashed. Empty: none.",
        ),
        _text("first-name"),
        _text("last-name"),
        _text("company", "Empty: the first and last name."),
        _text("email", optional=False),
        _text("phone"),
        _text("mobile"),
        _text("address"),
        _text("city"),
        _text("province"),
        _text("zip"),
    ]
    if groups:
        options = [("None", "none"), *((name, name) for name in groups)]
        blocks.append(forms.select("rategroup", "Rate group", options, "none"))
    else:
        blocks.append(_text("rategroup", "The name of one of the seller's rate groups."))
    blocks += [
        forms.select("billing", "Billing", [("Prepaid", "prepaid"), ("Postpaid", "postpaid")]),
        _text("balance", "e.g. 25.00; empty: 0."),
        _text("credit-limit", "Postpaid: how far below zero it may go; empty: 0."),
        _text("channels", "Concurrent calls; empty or 0: no limit."),
        _text("cps", "Calls per second; empty or 0: no limit."),
        _text("translation", TRANSLATION_HINT),
        _text("out-callerid", TRANSLATION_HINT),
        _text("in-callerid", TRANSLATION_HINT),
        forms.select(
            "device",
            "First SIP device",
            [("Yes: extension 100", "yes"), ("No", "no")],
            "yes",
        ),
        _text("sip-username", "Empty: ACCOUNT-100."),
        _text("sip-password", "12+ characters; empty: c2bot makes one and shows it once."),
    ]
    return forms.modal(NEW_VIEW, "New customer", "Add", blocks)


def import_view() -> Block:
    element: Block = {"type": "file_input", "action_id": forms.VALUE, "max_files": 1}
    element |= {"filetypes": ["csv", "txt"]}
    blocks: list[Block] = [
        {
            "type": "section",
            "text": mrkdwn(
                "Columns by header name, in any order: "
                + customers.GUIDE_HEADER.replace(",", ", ")
                + " (and Reseller, Rate Group, Billing, Time Zone). The whole file is checked "
                "first: every row goes in, or none."
            ),
        },
        forms.input_block("file", "The CSV file", element),
    ]
    return forms.modal(IMPORT_VIEW, "Import customers", "Import", blocks)


# --- new: reading and saving -------------------------------------------------------------------


def _typed(values: dict[str, Any], block_id: str) -> str | None:
    if block_id not in values:
        return None
    return (forms.chosen(values, block_id) or "").strip()


def read_new(values: dict[str, Any]) -> customers.NewCustomer:
    fields = {key: _typed(values, key) for key in customers.LABELS if key in values}
    for key in ("reseller", "role", "sip-username", "sip-password", "device"):
        fields.pop(key, None)
    if fields.get("rategroup") == "none":
        fields["rategroup"] = ""
    wanted = _typed(values, "device") != "no"
    device = (
        customers.DeviceWanted(
            _typed(values, "sip-username") or "", _typed(values, "sip-password") or ""
        )
        if wanted
        else None
    )
    return customers.NewCustomer(
        values=fields,
        device=device,
        reseller=_typed(values, "reseller") or None,
        role=_typed(values, "role") or Role.CUSTOMER.value,
    )


def form_errors(refusal: Refusal, values: dict[str, Any]) -> dict[str, str]:
    blocks = set(values)
    fallback = "reseller" if "reseller" in blocks else "number"
    return forms.form_errors(refusal, blocks, fallback, BLOCK_OF_FIELD)


def done_view(made: customers.CustomerMade) -> Block:
    """The result in place of the form: the password shown here only, once."""
    reply = made.reply(show_password=True)
    blocks: list[Block] = [{"type": "section", "text": mrkdwn(f"*{reply.title}*")}]
    blocks += field_sections(reply.fields)
    if made.device is not None and not made.device.password_given:
        note = "Note the SIP password now: it is not shown again here or in the message."
        blocks.append({"type": "context", "elements": [mrkdwn(note)]})
    return {
        "type": "modal",
        "callback_id": DONE_VIEW,
        "title": plain("Customer added", 24),
        "close": plain("Done", 24),
        "blocks": blocks,
    }


def _once(ctx: Context, view_id: str) -> Context:
    """One modal's request: sent again, it makes the same number and device password."""
    return replace(ctx, request_ref=f"slack:view:{view_id}")


def _adding(kit: SlackKit) -> Callable[..., Awaitable[None]]:
    async def on_submit(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        ctx, user = kit.context(actor_of(context)), str(context.user_id)
        ctx = _once(ctx, view["id"])
        values = view["state"]["values"]
        try:
            made = await customers.new_customer(ctx, read_new(values))
        except Refusal as refusal:
            await ack(response_action="errors", errors=form_errors(refusal, values))
            return
        except Exception:
            await ack(response_action="errors", errors={"email": apology(NEW_VIEW, user)})
            return
        await ack(response_action="update", view=done_view(made))
        asker = Asker(kit.client, user)
        kit.answer(asker, asker.show(made.reply(show_password=False)), NEW_VIEW)

    return on_submit


# --- import --------------------------------------------------------------------------------------


async def import_file(
    kit: SlackKit, ctx: Context, asker: Asker, view_id: str, files: list[Any]
) -> None:
    """After the ack: fetch the CSV from Slack, import it, say how it went."""
    fetched, missing = await fetch_files(kit.bot_token, files, kit.services.settings.slack_api_url)
    if missing or not fetched:
        raise Invalid(
            f"Slack would not give us {', '.join(missing) or 'the file'}, so nothing was "
            "imported. Try `/c2 customer import` again."
        )
    outcome = await customers.import_customers(_once(ctx, view_id), fetched[0].data)
    await asker.show(outcome.reply())


def replay(kit: SlackKit, ctx: Context, row: SlackInbox) -> Coroutine[Any, Any, None]:
    """Import a kept file a crash left undone (the rows' checks find what was written)."""
    if row.kind != IMPORT_KIND:
        raise LookupError(f"no kept submission kind {row.kind!r} here")
    asker = Asker(kit.client, row.user_id)
    return import_file(kit, ctx, asker, row.payload["view_id"], row.payload["files"])


def _importing(kit: SlackKit) -> Callable[..., Awaitable[None]]:
    async def on_submit(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        ctx, user = kit.context(actor_of(context)), str(context.user_id)
        values = view["state"]["values"]
        files = list(((values.get("file") or {}).get(forms.VALUE) or {}).get("files") or [])
        try:
            check_may_add_accounts(ctx)
            if len(files) != 1:
                raise Invalid("Attach one CSV file.", {"file": "Attach one CSV file."})
        except Refusal as refusal:
            errors = forms.form_errors(refusal, {"file"}, "file")
            await ack(response_action="errors", errors=errors)
            return
        # Slack closes the modal on our ack: the submission is written down before we give it.
        payload = {"view_id": view["id"], "files": files}
        row = await kit.inbox.keep(IMPORT_KIND, user, payload)
        await ack()
        asker = Asker(kit.client, user)
        work = import_file(kit, ctx, asker, view["id"], files)
        kit.answer(asker, kit.inbox.tracked(row, work), IMPORT_VIEW)

    return on_submit


def register(app: AsyncApp, kit: SlackKit) -> None:
    app.view(NEW_VIEW)(_adding(kit))
    app.view(IMPORT_VIEW)(_importing(kit))


async def after_reply(kit: SlackKit, asker: Asker, result: Result) -> None:
    """Nothing to add: replies say it all."""
