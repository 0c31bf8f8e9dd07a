"""Web2Fax in Slack: the `/fax send` modal, and page one of a fax for `/fax show`.

`/fax send` with no words opens the modal: number(s), the account (resellers and staff), the
caller id (one of the account's numbers), the name on the fax, text and files. The numbers,
account and caller are checked before the modal closes (errors show next to their fields); the
submission is then kept in the Slack inbox before the ack, and after it the files are fetched
from Slack and the fax is queued, once per modal however often it is replayed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from sqlalchemy import select

from c2bot.bot.faxcommands import FAX_SEND, FaxShown
from c2bot.bot.slack import forms
from c2bot.bot.slack.blocks import Block, plain
from c2bot.bot.slack.case_form import choices_for
from c2bot.bot.slack.files import SlackFile, fetch_files
from c2bot.bot.slack.kit import Asker, SlackKit, actor_of, apology
from c2bot.faxgw.render import preview_png
from c2bot.handlers import fax
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, Refusal
from c2bot.handlers.permissions import visible_accounts
from c2bot.storage.models import Did, Role, SlackInbox

log = logging.getLogger(__name__)

FAX_FORM = "fax_form"  # the Slack inbox kind of a kept submission
MAX_CALLERS = 100
TEXT_INPUT_MAX = 3000
# The domain names a field; the modal shows its error next to this block.
BLOCK_OF_FIELD = {"number": "numbers", "file": "text", "caller": "caller", "account": "account"}


@dataclass(frozen=True)
class FaxForm:
    """A submitted modal: the fax to send (without its files) and the Slack files attached."""

    submission: fax.FaxSubmission
    files: tuple[SlackFile, ...]


# --- opening ---------------------------------------------------------------------------------


async def open_form(kit: SlackKit, ctx: Context, trigger_id: str) -> None:
    await kit.client.views_open(trigger_id=trigger_id, view=await fax_send_view(ctx))


async def fax_send_view(ctx: Context) -> Block:
    """The modal for this person: accounts they may fax for, and their accounts' numbers."""
    choices = await choices_for(ctx)
    blocks: list[Block] = []
    if choices.accounts:
        blocks.append(forms.select("account", "Account", list(choices.accounts), choices.account))
    elif ctx.actor.role is not Role.CUSTOMER:
        blocks.append(
            forms.text_input("account", "Account number", hint="The account that sends the fax.")
        )
    hint = "Several: separate them with commas, e.g. 020 123 4567, +32 2 555 12 34."
    blocks.append(forms.text_input("numbers", "Fax number(s)", hint=hint))
    callers = await _callers(ctx)
    if callers:
        hint = "The number the fax comes from; the first one if you choose none."
        blocks.append(
            forms.select("caller", "Caller id", callers) | {"optional": True, "hint": plain(hint)}
        )
    name_hint = "On the fax's header line; the company name if empty."
    blocks += [
        forms.text_input("name", "Name on the fax", optional=True, hint=name_hint, max_length=100),
        forms.text_input("text", "Text", multiline=True, optional=True, max_length=TEXT_INPUT_MAX),
        forms.file_input("Documents (PDF, TIFF, images, text)"),
    ]
    return forms.modal(FAX_SEND, "Send a fax", "Send", blocks)


async def _callers(ctx: Context) -> list[tuple[str, str]]:
    """The numbers of the accounts this person may fax for, as (label, number)."""
    async with ctx.sessions() as session:
        stmt = select(Did).order_by(Did.number).limit(MAX_CALLERS)
        visible = await visible_accounts(session, ctx.actor)
        if visible is not None:
            stmt = stmt.where(Did.account_id.in_(visible))
        dids = list(await session.scalars(stmt))
    if ctx.actor.role is Role.CUSTOMER:
        return [(did.number, did.number) for did in dids]
    return [(f"{did.number} ({did.account.number})", did.number) for did in dids]


# --- submission ------------------------------------------------------------------------------


def read_fax_form(view_id: str, values: dict[str, Any]) -> FaxForm:
    """The submitted state -> the fax to send, marked with its modal (one fax per modal)."""
    submission = fax.FaxSubmission(
        numbers=fax.split_numbers(_chosen(values, "numbers") or ""),
        text=_chosen(values, "text"),
        account=_chosen(values, "account"),
        caller=_chosen(values, "caller"),
        caller_name=_chosen(values, "name"),
        source_ref=f"slack:view:{view_id}",
    )
    return FaxForm(submission, tuple(forms.files_of(values)))


def _chosen(values: dict[str, Any], block_id: str) -> str | None:
    return (forms.chosen(values, block_id) or "").strip() or None


async def check_fax_form(ctx: Context, form: FaxForm) -> None:
    """Refuse, before the modal closes, whatever `submit_fax` would refuse.

    The files are fetched from Slack only after the ack, so here each stands in by its name.
    """
    sub = form.submission
    if form.files and not sub.files:
        named = [fax.FaxFile(str(f.get("name") or "file"), "", b"") for f in form.files]
        sub = replace(sub, files=named)
    await fax.check_submission(ctx, sub)


def form_errors(refusal: Refusal, blocks: set[str]) -> dict[str, str]:
    return forms.form_errors(
        refusal, blocks, "numbers", BLOCK_OF_FIELD, whole_message_if_single=True
    )


async def send_from_form(kit: SlackKit, ctx: Context, asker: Asker, form: FaxForm) -> None:
    """After the ack: fetch the files from Slack and queue the fax; tell the sender."""
    fetched, missing = await fetch_files(
        kit.bot_token, form.files, kit.services.settings.slack_api_url
    )
    if missing:
        raise Invalid(
            f"Slack would not give us {', '.join(missing)}, so the fax was not sent. "
            "Send it again with the files attached."
        )
    files = [fax.FaxFile(f.filename, f.content_type, f.data) for f in fetched]
    accepted = await fax.submit_fax(ctx, replace(form.submission, files=files))
    await asker.show(accepted.reply())


async def replay(kit: SlackKit, ctx: Context, row: SlackInbox) -> None:
    """Queue a kept submission whose work a crash left undone (no second fax if it was done)."""
    form = read_fax_form(row.payload["view_id"], row.payload["values"])
    await send_from_form(kit, ctx, Asker(kit.client, row.user_id), form)


def register(app: AsyncApp, kit: SlackKit) -> None:
    async def on_submit(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        ctx, user = kit.context(actor_of(context)), str(context.user_id)
        values = view["state"]["values"]
        blocks = set(values) | {"numbers", "text"}
        if ctx.actor.role is not Role.CUSTOMER:
            blocks.add("account")
        try:
            form = read_fax_form(view["id"], values)
            await check_fax_form(ctx, form)
        except Refusal as refusal:
            await ack(response_action="errors", errors=form_errors(refusal, blocks))
            return
        except Exception:
            await ack(response_action="errors", errors={"numbers": apology(FAX_SEND, user)})
            return
        # Slack closes the modal on our ack: the submission is written down before we give it.
        row = await kit.inbox.keep(FAX_FORM, user, {"view_id": view["id"], "values": values})
        await ack()
        asker = Asker(kit.client, user)
        kit.answer(asker, kit.inbox.tracked(row, send_from_form(kit, ctx, asker, form)), "fax form")

    app.view(FAX_SEND)(on_submit)


# --- /fax show: page one ---------------------------------------------------------------------


async def share_preview(kit: SlackKit, asker: Asker, shown: FaxShown) -> None:
    """Page one of a rendered fax as a PNG, in the asker's DM (the fax is theirs alone)."""
    if not shown.tiff_path:
        return
    tiff = Path(shown.tiff_path)
    try:
        png = await preview_png(tiff, page=0)
    except FileNotFoundError:
        await asker.tell(
            f"The pages of fax #{shown.job_id} are no longer kept, so there is no preview."
        )
        return
    except Exception:
        log.exception("no preview of fax %s from %s", shown.job_id, tiff)
        await asker.tell(f"The pages of fax #{shown.job_id} could not be read for a preview.")
        return
    name = f"fax-{shown.job_id}-page-1.png"
    opened = await kit.client.conversations_open(users=[asker.user_id])
    await kit.client.files_upload_v2(
        file_uploads=[{"content": png, "filename": name, "title": name}],
        channel=str(opened["channel"]["id"]),
        initial_comment=f"Fax #{shown.job_id}, page 1",
    )
