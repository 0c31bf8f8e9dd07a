"""Slack modals for IVRs, time conditions, conferences and recordings (see plugins.py).

`/c2 ivr add`, `/c2 timecondition add` and `/c2 conference add` with no words open a form;
`edit NAME` with nothing to change opens the same form filled in. IVR options and time condition
rows are lines in one box, in the words the commands take (`1 ringgroup sales`,
`09:00-17:30 days:mon-fri ringgroup sales`), so what works in one door works in the other.

These changes are small and quick, so a submission is applied (and committed) before the ack:
a refusal stays in the modal next to its field, and nothing acked is ever left undone. A
recording upload must first fetch the file from Slack, which can outlast Slack's 3 seconds:
its name and account are checked before the ack, the submission is kept in the Slack inbox,
and the file is fetched and stored after it, once per modal however often it is replayed.
`/c2 recording play NAME` sends the WAV to the asker as a direct message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

from c2bot.bot.grammar import Result
from c2bot.bot.pbxcommands import (
    CONFERENCE_ADD,
    CONFERENCE_EDIT,
    IVR_ADD,
    IVR_EDIT,
    RECORDING_ADD,
    TC_ADD,
    TC_EDIT,
    RecordingPlayed,
)
from c2bot.bot.slack import forms
from c2bot.bot.slack.blocks import Block, mrkdwn
from c2bot.bot.slack.case_form import Choices, choices_for
from c2bot.bot.slack.files import fetch_files
from c2bot.bot.slack.kit import Asker, SlackKit, actor_of, apology
from c2bot.handlers import conferences, ivrs, recordings, tcs
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, Refusal
from c2bot.handlers.replies import OpenForm, Reply
from c2bot.storage.models import SlackInbox

log = logging.getLogger(__name__)

IVR_VIEW, TC_VIEW, CONFERENCE_VIEW, RECORDING_VIEW = (
    "pbx_ivr",
    "pbx_timecondition",
    "pbx_conference",
    "pbx_recording",
)
RECORDING_UPLOAD = "recording_upload"  # the Slack inbox kind of a kept upload
FORMS: frozenset[str] = frozenset(
    {IVR_ADD, IVR_EDIT, TC_ADD, TC_EDIT, CONFERENCE_ADD, CONFERENCE_EDIT, RECORDING_ADD}
)
KINDS: frozenset[str] = frozenset({RECORDING_UPLOAD})
EDITS = frozenset({IVR_EDIT, TC_EDIT, CONFERENCE_EDIT})
LINES_MAX = 3000
ON_OFF = [("On", "on"), ("Off", "off")]
YES_NO = [("No", "no"), ("Yes", "yes")]
Saver = Callable[[Context, dict[str, Any], dict[str, Any]], Awaitable[Reply]]


# --- opening ---------------------------------------------------------------------------------


async def open_form(kit: SlackKit, ctx: Context, form: OpenForm, trigger_id: str) -> None:
    builders = {
        IVR_ADD: ivr_view,
        IVR_EDIT: ivr_view,
        TC_ADD: tc_view,
        TC_EDIT: tc_view,
        CONFERENCE_ADD: conference_view,
        CONFERENCE_EDIT: conference_view,
        RECORDING_ADD: recording_view,
    }
    if form.form not in builders:
        raise LookupError(f"no form {form.form!r} here")
    choices = await choices_for(ctx) if form.form not in EDITS else Choices()
    view = builders[form.form](form.form, choices, form.initial)
    await kit.client.views_open(trigger_id=trigger_id, view=view)


def _text(
    block_id: str,
    label: str,
    initial: dict[str, str],
    *,
    hint: str | None = None,
    multiline: bool = False,
    optional: bool = True,
) -> Block:
    block = forms.text_input(
        block_id,
        label,
        multiline=multiline,
        max_length=LINES_MAX if multiline else 500,
        optional=optional,
        hint=hint,
    )
    if initial.get(block_id):
        block["element"]["initial_value"] = initial[block_id]
    return block


def _head(form: str, what: str, choices: Choices, initial: dict[str, str]) -> list[Block]:
    """Account and name for a new object; a line naming the object being edited."""
    if form in EDITS:
        line = f"*{what} {initial['name']}* of account {initial['account']}"
        return [{"type": "section", "text": mrkdwn(line)}]
    blocks: list[Block] = []
    if choices.accounts:
        blocks.append(forms.select("account", "Account", list(choices.accounts), choices.account))
    elif choices.asks_account:
        blocks.append(forms.text_input("account", "Account number"))
    hint = "Letters, digits, - _ . (it is how destinations name it; it cannot change later)"
    blocks.append(_text("name", "Name", initial, hint=hint, optional=False))
    return blocks


def _status(form: str, initial: dict[str, str]) -> list[Block]:
    return (
        [forms.select("status", "Status", ON_OFF, initial.get("status", "on"))]
        if form in EDITS
        else []
    )


def _view(
    form: str, callback: str, title: str, blocks: list[Block], initial: dict[str, str]
) -> Block:
    view = forms.modal(callback, title, "Save" if form in EDITS else "Add", blocks)
    meta = {"form": form, "name": initial.get("name", ""), "account": initial.get("account", "")}
    return view | {"private_metadata": json.dumps(meta)}


def ivr_view(form: str, choices: Choices, initial: dict[str, str]) -> Block:
    initial = {"timeout": "10", "retries": "3"} | initial
    recording_hint = "The name of one of the account's recordings; empty for none."
    blocks = [
        *_head(form, "IVR", choices, initial),
        _text("greeting", "Welcome greeting", initial, hint=recording_hint),
        _text("invalid", "Invalid-choice message", initial, hint=recording_hint),
        _text("exit", "Exit message", initial, hint=recording_hint),
        _text("timeout", "Timeout (seconds)", initial, optional=False),
        _text("retries", "Invalid retries", initial, optional=False),
        forms.select(
            "direct_dial",
            "Direct dial (callers dial extensions)",
            YES_NO,
            initial.get("direct_dial", "no"),
        ),
        _text("cid_prefix", "Caller-id name prefix", initial),
        _text(
            "ringback",
            "Ring-back",
            initial,
            hint=f"A recording or {', '.join(ivrs.RINGBACK_TONES)}.",
        ),
        _text("failover", "Failover", initial, hint="TYPE DESTINATION, e.g. voicemail 1001-100."),
        *_status(form, initial),
        _text(
            "options",
            "Options",
            initial,
            multiline=True,
            hint="One a line: DIGIT TYPE DESTINATION, e.g. 1 ringgroup sales, 9 ivr support.",
        ),
    ]
    return _view(form, IVR_VIEW, "IVR", blocks, initial)


def tc_view(form: str, choices: Choices, initial: dict[str, str]) -> Block:
    hint = (
        "One row a line, e.g. 09:00-17:30 days:mon-fri priority:1 ringgroup sales, or "
        "holiday country:NL priority:0 playback closed-msg. The lowest matching priority wins."
    )
    blocks = [
        *_head(form, "Time condition", choices, initial),
        _text(
            "failover",
            "Failover (no row matches)",
            initial,
            hint="TYPE DESTINATION, e.g. voicemail 1001-100.",
        ),
        *_status(form, initial),
        _text("rows", "Rows", initial, multiline=True, hint=hint),
    ]
    return _view(form, TC_VIEW, "Time condition", blocks, initial)


def conference_view(form: str, choices: Choices, initial: dict[str, str]) -> Block:
    blocks = [
        *_head(form, "Conference", choices, initial),
        _text("greeting", "Greeting", initial, hint="A recording of the account; empty for none."),
        _text(
            "profile",
            "Profile",
            {"profile": "default"} | initial,
            hint="A conference profile of the account, or default.",
        ),
        _text("pin", "PIN", initial, hint="3 to 16 digits; empty: no PIN."),
        *_status(form, initial),
    ]
    return _view(form, CONFERENCE_VIEW, "Conference", blocks, initial)


def recording_view(form: str, choices: Choices, initial: dict[str, str]) -> Block:
    wav: Block = {
        "type": "file_input",
        "action_id": forms.VALUE,
        "filetypes": ["wav"],
        "max_files": 1,
    }
    blocks = [
        *_head(form, "Recording", choices, initial),
        forms.input_block("files", "WAV file (16-bit mono, 8 or 16 kHz)", wav),
    ]
    return _view(form, RECORDING_VIEW, "Upload a recording", blocks, initial)


# --- saving ------------------------------------------------------------------------------------


def _meta(view: dict[str, Any]) -> dict[str, Any]:
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        meta = {}
    return meta if isinstance(meta, dict) else {}


def _typed(values: dict[str, Any], block_id: str) -> str | None:
    """What was typed, "" when a shown box was emptied, None when the form has no such box."""
    if block_id not in values:
        return None
    return (forms.chosen(values, block_id) or "").strip()


def _target(meta: dict[str, Any], values: dict[str, Any]) -> tuple[str, str | None]:
    """The object's name and account: from the form when new, from the metadata when edited."""
    if meta.get("form") in EDITS:
        return str(meta.get("name") or ""), str(meta.get("account") or "") or None
    return _typed(values, "name") or "", _typed(values, "account") or None


def _number(values: dict[str, Any], block_id: str) -> str | None:
    return _typed(values, block_id) or None  # an emptied number box leaves the setting as it is


async def save_ivr(ctx: Context, meta: dict[str, Any], values: dict[str, Any]) -> Reply:
    name, account = _target(meta, values)
    changes = ivrs.IvrChanges(
        greeting=_typed(values, "greeting"),
        invalid=_typed(values, "invalid"),
        exit=_typed(values, "exit"),
        timeout=_number(values, "timeout"),
        retries=_number(values, "retries"),
        direct_dial=_typed(values, "direct_dial") or None,
        cid_prefix=forms.chosen(values, "cid_prefix") or ("" if "cid_prefix" in values else None),
        ringback=_typed(values, "ringback"),
        failover=_typed(values, "failover"),
        status=_typed(values, "status") or None,
        options=_typed(values, "options"),
    )
    if meta.get("form") == IVR_EDIT:
        return await ivrs.edit_ivr(ctx, name, account, changes)
    return await ivrs.add_ivr(ctx, name, account, changes)


async def save_tc(ctx: Context, meta: dict[str, Any], values: dict[str, Any]) -> Reply:
    name, account = _target(meta, values)
    changes = tcs.TcChanges(
        failover=_typed(values, "failover"),
        status=_typed(values, "status") or None,
        rows=_typed(values, "rows"),
    )
    if meta.get("form") == TC_EDIT:
        return await tcs.edit_tc(ctx, name, account, changes)
    return await tcs.add_tc(ctx, name, account, changes)


async def save_conference(ctx: Context, meta: dict[str, Any], values: dict[str, Any]) -> Reply:
    name, account = _target(meta, values)
    changes = conferences.ConferenceChanges(
        greeting=_typed(values, "greeting"),
        profile=_typed(values, "profile"),
        pin=_typed(values, "pin"),
        status=_typed(values, "status") or None,
    )
    if meta.get("form") == CONFERENCE_EDIT:
        return await conferences.edit_conference(ctx, name, account, changes)
    return await conferences.add_conference(ctx, name, account, changes)


def _errors(refusal: Refusal, values: dict[str, Any]) -> dict[str, str]:
    blocks = set(values)
    fallback = "name" if "name" in blocks else next(iter(values), "name")
    return forms.form_errors(
        refusal, blocks, fallback, {"file": "files"}, whole_message_if_single=True
    )


def _saving(kit: SlackKit, callback: str, save: Saver) -> Callable[..., Awaitable[None]]:
    async def on_submit(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        ctx, user = kit.context(actor_of(context)), str(context.user_id)
        values = view["state"]["values"]
        try:
            reply = await save(ctx, _meta(view), values)
        except Refusal as refusal:
            await ack(response_action="errors", errors=_errors(refusal, values))
            return
        except Exception:
            fallback = next(iter(values), "name")
            await ack(response_action="errors", errors={fallback: apology(callback, user)})
            return
        await ack()  # the change is committed: the modal may close
        asker = Asker(kit.client, user)
        kit.answer(asker, asker.show(reply), callback)

    return on_submit


# --- recordings ----------------------------------------------------------------------------------


async def check_upload(ctx: Context, values: dict[str, Any]) -> None:
    """Before the ack: one file, a free name, an account the person may use."""
    if len(forms.files_of(values)) != 1:
        raise Invalid("Attach one WAV file.", {"files": "Attach one WAV file."})
    await recordings.check_new_recording(
        ctx, _typed(values, "name") or "", _typed(values, "account") or None
    )


async def store_upload(
    kit: SlackKit, ctx: Context, asker: Asker, view_id: str, values: dict[str, Any]
) -> None:
    """After the ack: fetch the file from Slack, check it is a WAV the switch plays, keep it."""
    fetched, missing = await fetch_files(
        kit.bot_token, forms.files_of(values), kit.services.settings.slack_api_url
    )
    if missing or not fetched:
        raise Invalid(
            f"Slack would not give us {', '.join(missing) or 'the file'}, so no recording was "
            "added. Upload it again with `/c2 recording add`."
        )
    request = recordings.NewRecording(
        name=_typed(values, "name") or "",
        data=fetched[0].data,
        account=_typed(values, "account") or None,
        source="upload",
        recorded_by=ctx.actor.label,
        request_ref=f"slack:view:{view_id}",
    )
    await asker.show(await recordings.add_recording(ctx, request))


def replay(kit: SlackKit, ctx: Context, row: SlackInbox) -> Coroutine[Any, Any, None]:
    """Store a kept upload a crash left undone (the same file once, however often replayed)."""
    if row.kind != RECORDING_UPLOAD:
        raise LookupError(f"no kept submission kind {row.kind!r} here")
    asker = Asker(kit.client, row.user_id)
    return store_upload(kit, ctx, asker, row.payload["view_id"], row.payload["values"])


def _uploading(kit: SlackKit) -> Callable[..., Awaitable[None]]:
    async def on_submit(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        ctx, user = kit.context(actor_of(context)), str(context.user_id)
        values = view["state"]["values"]
        try:
            await check_upload(ctx, values)
        except Refusal as refusal:
            await ack(response_action="errors", errors=_errors(refusal, values))
            return
        except Exception:
            await ack(response_action="errors", errors={"name": apology(RECORDING_VIEW, user)})
            return
        # Slack closes the modal on our ack: the submission is written down before we give it.
        payload = {"view_id": view["id"], "values": values}
        row = await kit.inbox.keep(RECORDING_UPLOAD, user, payload)
        await ack()
        asker = Asker(kit.client, user)
        work = store_upload(kit, ctx, asker, view["id"], values)
        kit.answer(asker, kit.inbox.tracked(row, work), "recording upload")

    return on_submit


def register(app: AsyncApp, kit: SlackKit) -> None:
    app.view(IVR_VIEW)(_saving(kit, IVR_VIEW, save_ivr))
    app.view(TC_VIEW)(_saving(kit, TC_VIEW, save_tc))
    app.view(CONFERENCE_VIEW)(_saving(kit, CONFERENCE_VIEW, save_conference))
    app.view(RECORDING_VIEW)(_uploading(kit))


async def after_reply(kit: SlackKit, asker: Asker, result: Result) -> None:
    """`/c2 recording play`: the WAV itself, in the asker's direct messages."""
    if not isinstance(result, RecordingPlayed):
        return
    try:
        data = await asyncio.to_thread(Path(result.path).read_bytes)
    except OSError:
        log.warning("recording file %s is missing", result.path)
        await asker.tell(f"The file of {result.title.lower()} is missing on the server.")
        return
    opened = await kit.client.conversations_open(users=[asker.user_id])
    await kit.client.files_upload_v2(
        file_uploads=[{"content": data, "filename": result.filename, "title": result.filename}],
        channel=str(opened["channel"]["id"]),
        initial_comment=result.title,
    )
