"""Slack modals for SIP devices, ring groups and queues (see plugins.py for the protocol).

`/c2 device add`, `/c2 ringgroup add` and `/c2 queue add` with no words open a form;
`edit NAME` with nothing to change opens it filled in, and `edit` with no words first asks which
one. A ring group has a row for each of its ten members (`1001-101 delay:5 timeout:20`).

A submission is checked by the same handler that will apply it, without committing, so a
refusal stays in the modal next to its field. It is then kept in the Slack inbox before the
ack and applied after it; the answer comes as a direct message. Applying is idempotent on
replay: the request is named by its modal, so a device is made once (with the same password),
an edit sets what it set already, a ring group or queue is not added twice. A new device's
password is not put in the message: the person asks for it with `/c2 device password`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from sqlalchemy import select

from c2bot.bot.devicecommands import (
    DEVICE_ADD,
    DEVICE_EDIT,
    QUEUE_ADD,
    QUEUE_EDIT,
    RINGGROUP_ADD,
    RINGGROUP_EDIT,
)
from c2bot.bot.grammar import Result
from c2bot.bot.slack import forms
from c2bot.bot.slack.blocks import Block, mrkdwn
from c2bot.bot.slack.case_form import Choices, choices_for
from c2bot.bot.slack.kit import Asker, SlackKit, actor_of, apology
from c2bot.handlers import devices, queues, ringgroups
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, Refusal
from c2bot.handlers.permissions import visible_accounts
from c2bot.handlers.replies import OpenForm, Reply
from c2bot.storage.models import Account, CallQueue, RingGroup, SipDevice, SlackInbox

DEVICE_VIEW, RINGGROUP_VIEW, QUEUE_VIEW = "routing_device", "routing_ringgroup", "routing_queue"
PICK_VIEW = "routing_pick"  # which object an edit is about
ROUTING_FORM = "routing_form"  # the Slack inbox kind of a kept submission
FORMS: frozenset[str] = frozenset(
    {DEVICE_ADD, DEVICE_EDIT, RINGGROUP_ADD, RINGGROUP_EDIT, QUEUE_ADD, QUEUE_EDIT}
)
KINDS: frozenset[str] = frozenset({ROUTING_FORM})
EDITS = frozenset({DEVICE_EDIT, RINGGROUP_EDIT, QUEUE_EDIT})
WHAT = {
    DEVICE_ADD: "SIP device",
    DEVICE_EDIT: "SIP device",
    RINGGROUP_ADD: "ring group",
    RINGGROUP_EDIT: "ring group",
    QUEUE_ADD: "queue",
    QUEUE_EDIT: "queue",
}
MAX_OPTIONS = 100
ON_OFF = [("On", "on"), ("Off", "off")]
OFF_ON = [("Off", "off"), ("On", "on")]
NO_YES = [("No", "no"), ("Yes", "yes")]
DESTINATION_HINT = "TYPE DESTINATION, e.g. voicemail 1001-100, pstn +31612345678; empty: none."
RECORDING_HINT = "The name of one of the account's recordings; empty for none."
_SETTING = re.compile(r"^(delay|timeout):(\d+)$")


class FormChange(Protocol):
    """A submitted modal as the change it asks for."""

    @property
    def errors_at(self) -> dict[str, str]: ...

    async def save(self, ctx: Context, *, check_only: bool = False) -> Reply: ...


# --- opening -----------------------------------------------------------------------------------


async def open_form(kit: SlackKit, ctx: Context, form: OpenForm, trigger_id: str) -> None:
    if form.form not in FORMS:
        raise LookupError(f"no form {form.form!r} here")
    if form.form in EDITS and not form.initial.get("name"):
        view = await pick_view(ctx, form.form)
    elif form.form in EDITS:
        view = await edit_view(ctx, form.form, form.initial["name"], form.initial.get("account"))
    else:
        view = add_view(form.form, await choices_for(ctx))
    await kit.client.views_open(trigger_id=trigger_id, view=view)


def add_view(form: str, choices: Choices) -> Block:
    builders = {DEVICE_ADD: device_view, RINGGROUP_ADD: ringgroup_view, QUEUE_ADD: queue_view}
    return builders[form](form, choices, {})


async def edit_view(ctx: Context, form: str, name: str, account: str | None) -> Block:
    """The edit modal filled in with the object as it is now."""
    if form == DEVICE_EDIT:
        return device_view(
            form, Choices(), device_initial(await devices.device_settings(ctx, name))
        )
    if form == RINGGROUP_EDIT:
        found = await ringgroups.ring_group_settings(ctx, name, account)
        return ringgroup_view(form, Choices(), ringgroup_initial(found))
    return queue_view(
        form, Choices(), queue_initial(await queues.queue_settings(ctx, name, account))
    )


async def pick_view(ctx: Context, form: str) -> Block:
    """Which device, ring group or queue to edit: a list of those the person may change."""
    options = await _editable(ctx, form)
    label = f"The {WHAT[form]} to change"
    if options and len(options) <= MAX_OPTIONS:
        block = forms.select("object", label, options)
    else:
        hint = "Its name; for a ring group or queue of another account: NAME ACCOUNT."
        block = forms.text_input("object", label, hint=hint)
    view = forms.modal(PICK_VIEW, f"Change a {WHAT[form]}"[:24], "Next", [block])
    return view | {"private_metadata": json.dumps({"form": form})}


async def _editable(ctx: Context, form: str) -> list[tuple[str, str]]:
    async with ctx.sessions() as session:
        visible = await visible_accounts(session, ctx.actor)
        if form == DEVICE_EDIT:
            stmt = select(SipDevice.username).order_by(SipDevice.username)
            if visible is not None:
                stmt = stmt.where(SipDevice.account_id.in_(visible))
            return [(u, u) for u in await session.scalars(stmt.limit(MAX_OPTIONS + 1))]
        model = RingGroup if form == RINGGROUP_EDIT else CallQueue
        query = select(model.name, Account.number).join(Account, Account.id == model.account_id)
        if visible is not None:
            query = query.where(model.account_id.in_(visible))
        rows = (await session.execute(query.order_by(Account.number, model.name).limit(101))).all()
    return [(f"{name} ({number})", f"{name} {number}") for name, number in rows]


def _text(
    block_id: str,
    label: str,
    initial: dict[str, str],
    *,
    hint: str | None = None,
    optional: bool = True,
    multiline: bool = False,
) -> Block:
    block = forms.text_input(
        block_id, label, multiline=multiline, max_length=500, optional=optional, hint=hint
    )
    if initial.get(block_id):
        block["element"]["initial_value"] = initial[block_id]
    return block


def _pick(
    block_id: str, label: str, options: list[tuple[str, str]], initial: dict[str, str]
) -> Block:
    return forms.select(block_id, label, options, initial.get(block_id, options[0][1]))


def _head(form: str, choices: Choices, initial: dict[str, str], name_label: str) -> list[Block]:
    """Account and name for a new object; a line naming the object being changed."""
    if form in EDITS:
        line = f"*{WHAT[form]} {initial['name']}* of account {initial['account']}"
        return [{"type": "section", "text": mrkdwn(line)}]
    blocks: list[Block] = []
    if choices.accounts:
        blocks.append(forms.select("account", "Account", list(choices.accounts), choices.account))
    elif choices.asks_account:
        blocks.append(forms.text_input("account", "Account number"))
    hint = (
        "2 to 6 digits; the user name becomes ACCOUNT-EXTENSION."
        if form == DEVICE_ADD
        else "Letters, digits, - _ . (destinations name it; it cannot change later)."
    )
    blocks.append(_text("name", name_label, initial, hint=hint, optional=False))
    return blocks


def _status(form: str, initial: dict[str, str]) -> list[Block]:
    return [_pick("status", "Status", ON_OFF, initial)] if form in EDITS else []


def _modal(form: str, callback: str, blocks: list[Block], initial: dict[str, str]) -> Block:
    verb = "Change" if form in EDITS else "New"
    view = forms.modal(callback, f"{verb} {WHAT[form]}", "Save" if form in EDITS else "Add", blocks)
    meta = {"form": form, "name": initial.get("name", ""), "account": initial.get("account", "")}
    return view | {"private_metadata": json.dumps(meta)}


def device_view(form: str, choices: Choices, initial: dict[str, str]) -> Block:
    chosen = initial.get("codecs", "PCMA,PCMU,G722,OPUS").split(",")
    options = [forms.option(codec, codec) for codec in devices.CODECS]
    codecs: Block = {
        "type": "multi_static_select",
        "action_id": forms.VALUE,
        "options": options,
        "initial_options": [o for o in options if o["value"] in chosen],
    }
    blocks = [
        *_head(form, choices, initial, "Extension"),
        _text("caller", "Caller number", initial, hint="One of the account's numbers."),
        _text("callername", "Caller name", initial, hint="The name the device calls out with."),
        _pick("voicemail", "Voicemail", OFF_ON, initial),
        _text("pin", "Voicemail PIN", initial, hint="4 to 10 digits; needed with voicemail on."),
        _text("vmemail", "Mail voicemail to", initial, hint="An email address; empty: none."),
        forms.input_block("codecs", "Codecs", codecs),
        _pick("record", "Record calls", OFF_ON, initial),
        *_status(form, initial),
    ]
    return _modal(form, DEVICE_VIEW, blocks, initial)


def device_initial(found: devices.DeviceSettings) -> dict[str, str]:
    return {
        "name": found.username,
        "account": found.account,
        "caller": found.caller_number,
        "callername": found.caller_name,
        "voicemail": "on" if found.voicemail else "off",
        "pin": found.voicemail_pin,
        "vmemail": found.voicemail_email,
        "codecs": ",".join(found.codecs),
        "record": "on" if found.record_calls else "off",
        "status": "on" if found.enabled else "off",
    }


def ringgroup_view(form: str, choices: Choices, initial: dict[str, str]) -> Block:
    strategies = [(word.title(), word) for word in ringgroups.STRATEGIES]
    recording = [
        ("Follow the device", "device"),
        ("Force on", "on"),
        ("Force off", "off"),
    ]
    rows = [
        _text(
            f"member_{n}",
            f"Member {n}",
            initial,
            hint="A device or number, then delay and timeout, e.g. 1001-101 delay:5 timeout:20."
            if n == 1
            else None,
        )
        for n in range(1, ringgroups.MAX_MEMBERS + 1)
    ]
    blocks = [
        *_head(form, choices, initial, "Name"),
        _pick("strategy", "Strategy", strategies, initial),
        *rows,
        _text("noanswer", "No answer", initial, hint=DESTINATION_HINT),
        _text("announcement", "Announcement", initial, hint=RECORDING_HINT),
        _text(
            "ringback",
            "Ring-back",
            initial,
            hint=f"A recording or {', '.join(ringgroups.RINGBACK_TONES)}; empty: default ring.",
        ),
        _text("cidname", "Caller-id name prefix", initial),
        _text("cidnumber", "Caller-id number prefix", initial),
        _pick("record", "Call recording", recording, initial),
        _pick("skipbusy", "Skip busy members", NO_YES, initial),
        *_status(form, initial),
    ]
    return _modal(form, RINGGROUP_VIEW, blocks, initial)


def ringgroup_initial(found: ringgroups.RingGroupSettings) -> dict[str, str]:
    initial = {
        "name": found.name,
        "account": found.account,
        "strategy": found.strategy,
        "noanswer": f"{found.noanswer.type} {found.noanswer.value}".strip(),
        "announcement": found.announcement,
        "ringback": found.ringback,
        "cidname": found.cid_name_prefix,
        "cidnumber": found.cid_number_prefix,
        "record": found.recording,
        "skipbusy": "yes" if found.skip_busy else "no",
        "status": "on" if found.enabled else "off",
    }
    for n, member in enumerate(found.members, start=1):
        initial[f"member_{n}"] = f"{member.target} delay:{member.delay} timeout:{member.timeout}"
    return initial


def queue_view(form: str, choices: Choices, initial: dict[str, str]) -> Block:
    strategies = [(word, word) for word in queues.STRATEGIES]
    tone_hint = f"A recording or {', '.join(ringgroups.RINGBACK_TONES)}; empty: none."
    blocks = [
        *_head(form, choices, initial, "Name"),
        _pick("strategy", "Strategy", strategies, initial),
        _text(
            "agents",
            "Agents",
            initial,
            multiline=True,
            hint="Devices or numbers, one a line (or comma-separated), in order.",
        ),
        _text("timeout", "Longest wait (seconds)", {"timeout": "300"} | initial, optional=False),
        _text("failover", "After the longest wait", initial, hint=DESTINATION_HINT),
        _text("moh", "Music on hold", initial, hint="A recording; empty: the switch's music."),
        _text("agenttone", "Agent tone", initial, hint=tone_hint),
        _text("customertone", "Customer tone", initial, hint=tone_hint),
        *_status(form, initial),
    ]
    return _modal(form, QUEUE_VIEW, blocks, initial)


def queue_initial(found: queues.QueueSettings) -> dict[str, str]:
    return {
        "name": found.name,
        "account": found.account,
        "strategy": found.strategy,
        "agents": "\n".join(found.agents),
        "timeout": str(found.timeout),
        "failover": f"{found.failover.type} {found.failover.value}".strip(),
        "moh": found.moh,
        "agenttone": found.agent_tone,
        "customertone": found.customer_tone,
        "status": "on" if found.enabled else "off",
    }


# --- reading submissions -----------------------------------------------------------------------


def _meta(view: dict[str, Any]) -> dict[str, str]:
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        meta = {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def _typed(values: dict[str, Any], block_id: str) -> str | None:
    """What was typed or picked; "" when a shown box was emptied, None when it is not there."""
    if block_id not in values:
        return None
    return (forms.chosen(values, block_id) or "").strip()


def _on(values: dict[str, Any], block_id: str) -> bool | None:
    chosen = _typed(values, block_id)
    return None if not chosen else chosen in ("on", "yes")


def _picked_many(values: dict[str, Any], block_id: str) -> str | None:
    element = (values.get(block_id) or {}).get(forms.VALUE)
    if element is None:
        return None
    return ",".join(str(o.get("value")) for o in element.get("selected_options") or [])


def _target(meta: dict[str, str], values: dict[str, Any]) -> tuple[str, str | None]:
    """The object's name and account: from the form when new, from the metadata when changed."""
    if meta.get("form") in EDITS:
        return meta.get("name", ""), meta.get("account") or None
    return _typed(values, "name") or "", _typed(values, "account") or None


@dataclass(frozen=True)
class DeviceForm:
    form: str
    name: str
    account: str | None
    fields: devices.DeviceFields
    errors_at: dict[str, str]

    async def save(self, ctx: Context, *, check_only: bool = False) -> Reply:
        if self.form == DEVICE_EDIT:
            return await devices.edit_device(ctx, self.name, self.fields, check_only=check_only)
        request = devices.NewDevice(self.name, self.account, fields=self.fields)
        made = await devices.add_device(ctx, request, check_only=check_only)
        # A direct message stays in the history: the password is told on request only.
        return made.reply(show_password=False)


@dataclass(frozen=True)
class RingGroupForm:
    form: str
    name: str
    account: str | None
    fields: ringgroups.RingGroupFields
    errors_at: dict[str, str]

    async def save(self, ctx: Context, *, check_only: bool = False) -> Reply:
        run = (
            ringgroups.edit_ring_group if self.form == RINGGROUP_EDIT else ringgroups.add_ring_group
        )
        return await run(ctx, self.name, self.account, self.fields, check_only=check_only)


@dataclass(frozen=True)
class QueueForm:
    form: str
    name: str
    account: str | None
    fields: queues.QueueFields
    errors_at: dict[str, str]

    async def save(self, ctx: Context, *, check_only: bool = False) -> Reply:
        run = queues.edit_queue if self.form == QUEUE_EDIT else queues.add_queue
        return await run(ctx, self.name, self.account, self.fields, check_only=check_only)


def read_device(meta: dict[str, str], values: dict[str, Any]) -> DeviceForm:
    name, account = _target(meta, values)
    fields = devices.DeviceFields(
        caller_number=_typed(values, "caller"),
        caller_name=_typed(values, "callername"),
        voicemail=_on(values, "voicemail"),
        voicemail_pin=_typed(values, "pin"),
        voicemail_email=_typed(values, "vmemail"),
        codecs=_picked_many(values, "codecs"),
        record_calls=_on(values, "record"),
        enabled=_on(values, "status"),
    )
    return DeviceForm(meta.get("form", DEVICE_ADD), name, account, fields, {"username": "name"})


def read_ringgroup(meta: dict[str, str], values: dict[str, Any]) -> RingGroupForm:
    """Member rows in order, empty ones skipped; a handler's `member_N` (the Nth member given)
    is shown at the row it came from."""
    name, account = _target(meta, values)
    members: list[ringgroups.Member] = []
    errors_at: dict[str, str] = {}
    for row in range(1, ringgroups.MAX_MEMBERS + 1):
        text = _typed(values, f"member_{row}")
        if text:
            members.append(_member(text, f"member_{row}"))
            errors_at[f"member_{len(members)}"] = f"member_{row}"
    fields = ringgroups.RingGroupFields(
        strategy=_typed(values, "strategy") or None,
        members=tuple(members),
        announcement=_typed(values, "announcement"),
        ringback=_typed(values, "ringback"),
        cid_name_prefix=forms.chosen(values, "cidname") or ("" if "cidname" in values else None),
        cid_number_prefix=_typed(values, "cidnumber"),
        recording=_typed(values, "record") or None,
        skip_busy=_on(values, "skipbusy"),
        noanswer=_typed(values, "noanswer"),
        enabled=_on(values, "status"),
    )
    form = meta.get("form", RINGGROUP_ADD)
    return RingGroupForm(form, name, account, fields, errors_at | {"type": "noanswer"})


def _member(text: str, block: str) -> ringgroups.Member:
    """`1001-101`, `1001-101 5 20` or `1001-101 delay:5 timeout:20`."""
    target, *rest = text.split()
    settings: dict[str, int] = {}
    for position, word in enumerate(rest):
        named = _SETTING.match(word.lower())
        if named:
            settings[named[1]] = int(named[2])
        elif word.isdigit() and position < 2:
            settings["timeout" if position else "delay"] = int(word)
        else:
            raise Invalid(
                f"Member row {text!r}: after the device or number come delay and timeout "
                "in seconds, e.g. 1001-101 delay:5 timeout:20.",
                {block: "DEVICE delay:N timeout:N"},
            )
    return ringgroups.Member(target, settings.get("delay", 0), settings.get("timeout", 30))


def read_queue(meta: dict[str, str], values: dict[str, Any]) -> QueueForm:
    name, account = _target(meta, values)
    agents = _typed(values, "agents")
    timeout = _typed(values, "timeout")
    if timeout is not None and not timeout.isdigit():
        raise Invalid("The longest wait is a number of seconds.", {"timeout": "seconds"})
    fields = queues.QueueFields(
        strategy=_typed(values, "strategy") or None,
        agents=None if agents is None else tuple(w for w in re.split(r"[,\s]+", agents) if w),
        moh=_typed(values, "moh"),
        agent_tone=_typed(values, "agenttone"),
        customer_tone=_typed(values, "customertone"),
        timeout=int(timeout) if timeout else None,
        failover=_typed(values, "failover"),
        enabled=_on(values, "status"),
    )
    errors_at = {f"agent_{n}": "agents" for n in range(1, queues.MAX_AGENTS + 1)}
    form = meta.get("form", QUEUE_ADD)
    return QueueForm(form, name, account, fields, errors_at | {"type": "failover"})


READERS: dict[str, Callable[[dict[str, str], dict[str, Any]], FormChange]] = {
    DEVICE_VIEW: read_device,
    RINGGROUP_VIEW: read_ringgroup,
    QUEUE_VIEW: read_queue,
}


def form_errors(
    refusal: Refusal, values: dict[str, Any], errors_at: dict[str, str]
) -> dict[str, str]:
    blocks = set(values)
    fallback = "name" if "name" in blocks else next(iter(values), "name")
    return forms.form_errors(refusal, blocks, fallback, errors_at, whole_message_if_single=True)


# --- submitting --------------------------------------------------------------------------------


def _once(ctx: Context, view_id: str) -> Context:
    """The context of one modal's change: replayed, it is the same request."""
    return replace(ctx, request_ref=f"slack:view:{view_id}")


async def apply_change(ctx: Context, asker: Asker, change: FormChange) -> None:
    await asker.show(await change.save(ctx))


def replay(kit: SlackKit, ctx: Context, row: SlackInbox) -> Coroutine[Any, Any, None]:
    """Apply a kept submission a crash left undone (the same change once, however often)."""
    if row.kind != ROUTING_FORM:
        raise LookupError(f"no kept submission kind {row.kind!r} here")
    payload = row.payload
    change = READERS[payload["callback"]](payload["meta"], payload["values"])
    return apply_change(_once(ctx, payload["view_id"]), Asker(kit.client, row.user_id), change)


def _submitting(kit: SlackKit, callback: str) -> Callable[..., Awaitable[None]]:
    async def on_submit(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        ctx, user = kit.context(actor_of(context)), str(context.user_id)
        ctx = _once(ctx, view["id"])
        meta, values = _meta(view), view["state"]["values"]
        errors_at: dict[str, str] = {}
        try:
            change = READERS[callback](meta, values)
            errors_at = change.errors_at
            await change.save(ctx, check_only=True)
        except Refusal as refusal:
            await ack(response_action="errors", errors=form_errors(refusal, values, errors_at))
            return
        except Exception:
            fallback = "name" if "name" in values else next(iter(values), "name")
            await ack(response_action="errors", errors={fallback: apology(callback, user)})
            return
        # Slack closes the modal on our ack: the submission is written down before we give it.
        payload = {"view_id": view["id"], "callback": callback, "meta": meta, "values": values}
        row = await kit.inbox.keep(ROUTING_FORM, user, payload)
        await ack()
        asker = Asker(kit.client, user)
        kit.answer(asker, kit.inbox.tracked(row, apply_change(ctx, asker, change)), callback)

    return on_submit


def _picking(kit: SlackKit) -> Callable[..., Awaitable[None]]:
    """The chosen object's edit modal replaces the question which one."""

    async def on_submit(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        ctx = kit.context(actor_of(context))
        form = _meta(view).get("form", "")
        name, _, account = (_typed(view["state"]["values"], "object") or "").partition(" ")
        try:
            if form not in EDITS or not name:
                raise Invalid(f"Choose the {WHAT.get(form, 'object')} to change.")
            edit = await edit_view(ctx, form, name, account.strip() or None)
        except Refusal as refusal:
            await ack(response_action="errors", errors={"object": refusal.message[:150]})
            return
        await ack(response_action="update", view=edit)

    return on_submit


def register(app: AsyncApp, kit: SlackKit) -> None:
    for callback in READERS:
        app.view(callback)(_submitting(kit, callback))
    app.view(PICK_VIEW)(_picking(kit))


async def after_reply(kit: SlackKit, asker: Asker, result: Result) -> None:
    """Nothing to add: replies say it all."""
