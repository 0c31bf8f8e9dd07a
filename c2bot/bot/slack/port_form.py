"""Number porting in Slack: the `/port new` modal, the signed-letter upload, and the buttons on a
request's cards (staff: the current operator's answers; the customer: upload, letter, cancel).

Submissions are checked by the domain before the modal closes (every problem next to its field),
then kept in the Slack inbox before the ack and acted on after it, once per modal however often
they are replayed. The cards and thread lines follow from the port events (portthreads.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from sqlalchemy import select

from c2bot.bot.grammar import Result
from c2bot.bot.portcommands import PORT_NEW, PORT_SIGN, PortLetter
from c2bot.bot.slack import forms, portthreads
from c2bot.bot.slack.blocks import Block, escape, mrkdwn, plain
from c2bot.bot.slack.case_form import choices_for
from c2bot.bot.slack.files import SlackFile, fetch_files
from c2bot.bot.slack.kit import Asker, SlackKit, actor_of, apology
from c2bot.handlers import portcheck, porting, portview
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, Refusal
from c2bot.handlers.loa import LINE_TYPES
from c2bot.handlers.permissions import check_staff, visible_accounts
from c2bot.handlers.replies import OpenForm, Reply
from c2bot.storage.models import Account, PortRequest, PortState, Role, SlackInbox

PORT_STATUS = "port_status"  # the staff modal behind Reject…, Delay… and Schedule…
NEW_KIND, SIGN_KIND, STATUS_KIND = "port_form", "port_sign_form", "port_status_form"
FORMS: frozenset[str] = frozenset({PORT_NEW, PORT_SIGN})
KINDS: frozenset[str] = frozenset({NEW_KIND, SIGN_KIND, STATUS_KIND})
NUMBERS_INPUT_MAX = 3000
MAX_OPTIONS = 100
NEW_BLOCKS = frozenset(
    {"company", "contact", "street", "house", "postcode", "city", "donor", "numbers", "date"}
)
STATUS_TITLES = {
    PortState.REJECTED: "Reject",
    PortState.DELAYED: "Delay",
    PortState.SCHEDULED: "Schedule",
}
STATUS_BLOCKS = {
    PortState.REJECTED: {"code", "reason"},
    PortState.DELAYED: {"date", "reason"},
    PortState.SCHEDULED: {"date"},
}
BUTTON_STATES = {
    portthreads.REJECT: PortState.REJECTED,
    portthreads.DELAY: PortState.DELAYED,
    portthreads.SCHEDULE: PortState.SCHEDULED,
}


# --- the new-request modal ---------------------------------------------------------------------


async def open_form(kit: SlackKit, ctx: Context, form: OpenForm, trigger_id: str) -> None:
    if form.form == PORT_NEW:
        view = await new_port_view(ctx)
    elif form.form == PORT_SIGN:
        number = form.initial.get("id")
        view = await sign_view(ctx, int(number) if number else None)
    else:
        raise LookupError(f"no form {form.form!r} here")
    await kit.client.views_open(trigger_id=trigger_id, view=view)


async def new_port_view(ctx: Context) -> Block:
    """The portal's porting form: company, address, current operator, numbers and date."""
    choices = await choices_for(ctx)
    company = await _own_company(ctx)
    blocks: list[Block] = []
    if choices.accounts:
        blocks.append(forms.select("account", "Account", list(choices.accounts), choices.account))
    elif ctx.actor.role is not Role.CUSTOMER:
        blocks.append(text("account", "Account number", hint="The account the numbers go to."))
    customer = ctx.actor.role is Role.CUSTOMER
    blocks += [
        text("company", "Company name", initial=company, max_length=200),
        text("contact", "Contact person", initial=ctx.actor.label if customer else None),
        text(
            "email",
            "Email for the letter and news",
            optional=True,
            hint="Empty: you (or the account's address).",
        ),
        text("street", "Street", max_length=200),
        text("house", "House number", max_length=5),
        text("addition", "Addition", optional=True, max_length=10, hint="e.g. A, bis, 2hg"),
        text("postcode", "Postcode", max_length=7, hint="e.g. 1234AB"),
        text("city", "City", max_length=100),
        text("donor", "Current operator", max_length=100, hint="e.g. KPN, Ziggo, Vodafone"),
        text("donor_customer", "Customer number there", optional=True, max_length=64),
        _contract_block(),
        _line_block(),
        text(
            "numbers",
            "Numbers and ranges",
            multiline=True,
            max_length=NUMBERS_INPUT_MAX,
            hint="One per line or comma-separated: 020 123 4567, a range 0301234500-0301234599, "
            "or a start and a count 0301234500+100.",
        ),
        _date_block("date", "Desired porting date", _earliest(ctx)),
    ]
    return forms.modal(PORT_NEW, "Port numbers", "Request", blocks)


def text(
    block_id: str,
    label: str,
    *,
    optional: bool = False,
    hint: str | None = None,
    initial: str | None = None,
    multiline: bool = False,
    max_length: int | None = None,
) -> Block:
    block = forms.text_input(block_id, label, multiline, max_length, optional, hint)
    if initial:
        block["element"]["initial_value"] = initial
    return block


def _contract_block() -> Block:
    options = [
        forms.option("Terminate", "terminate", "The contract there ends for these numbers"),
        forms.option("Continue", "continue", "Other services of the contract there go on"),
    ]
    element: Block = {"type": "radio_buttons", "action_id": forms.VALUE, "options": options}
    element["initial_option"] = options[0]
    return forms.input_block("contract", "Contract with the current operator", element)


def _line_block() -> Block:
    options = [(label.capitalize(), word) for word, label in LINE_TYPES.items()]
    block = forms.select("line", "Line type", options)
    return block | {"optional": True, "hint": plain("Empty: guessed from the numbers.")}


def _date_block(block_id: str, label: str, initial: date | None) -> Block:
    element: Block = {"type": "datepicker", "action_id": forms.VALUE}
    if initial is not None:
        element["initial_date"] = initial.isoformat()
    return forms.input_block(block_id, label, element)


def _earliest(ctx: Context) -> date:
    country = ctx.settings.port_country
    return portcheck.add_working_days(
        portcheck.local_today(ctx, None), ctx.settings.port_lead_days, country
    )


async def _own_company(ctx: Context) -> str | None:
    if ctx.actor.role is not Role.CUSTOMER or ctx.actor.account_id is None:
        return None
    async with ctx.sessions() as session:
        account = await session.get(Account, ctx.actor.account_id)
        return account.company if account else None


def read_new_port(view_id: str, values: dict[str, Any]) -> portcheck.NewPort:
    """The submitted modal -> the request, marked with its modal (one request per modal)."""

    def value(block_id: str) -> str:
        return (forms.chosen(values, block_id) or "").strip()

    return portcheck.NewPort(
        company=value("company"),
        contact=value("contact"),
        email=value("email") or None,
        street=value("street"),
        house=value("house"),
        addition=value("addition"),
        postcode=value("postcode"),
        city=value("city"),
        donor=value("donor"),
        donor_customer=value("donor_customer"),
        contract=value("contract") or None,
        line_type=value("line") or None,
        numbers=value("numbers"),
        desired_date=picked_date(values, "date"),
        account=value("account") or None,
        source_ref=f"slack:view:{view_id}",
    )


def picked_date(values: dict[str, Any], block_id: str) -> str | None:
    element = (values.get(block_id) or {}).get(forms.VALUE) or {}
    picked = element.get("selected_date")
    return str(picked) if picked else None


async def make_from_form(ctx: Context, asker: Asker, request: portcheck.NewPort) -> None:
    created = await porting.create_port(ctx, request)
    await asker.show(created.reply())


async def _on_new(
    kit: SlackKit, ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext
) -> None:
    ctx, user = kit.context(actor_of(context)), str(context.user_id)
    values = view["state"]["values"]
    blocks = (
        set(values) | NEW_BLOCKS | ({"account"} if ctx.actor.role is not Role.CUSTOMER else set())
    )
    try:
        request = read_new_port(view["id"], values)
        await portcheck.check_new_port(ctx, request)
    except Refusal as refusal:
        await ack(response_action="errors", errors=forms.form_errors(refusal, blocks, "numbers"))
        return
    except Exception:
        await ack(response_action="errors", errors={"numbers": apology(PORT_NEW, user)})
        return
    # Slack closes the modal on our ack: the submission is written down before we give it.
    row = await kit.inbox.keep(NEW_KIND, user, {"view_id": view["id"], "values": values})
    await ack()
    asker = Asker(kit.client, user)
    kit.answer(asker, kit.inbox.tracked(row, make_from_form(ctx, asker, request)), "port form")


# --- the signed letter -------------------------------------------------------------------------


async def sign_view(ctx: Context, number: int | None) -> Block:
    """Upload the signed letter: for one request, or a choice of those waiting for it."""
    blocks: list[Block] = []
    if number is not None:
        shown = await porting.check_may_sign(ctx, number)
        summary = f"*Port request #{shown.number}*: {escape(shown.company)}, "
        summary += escape(shown.numbers_label)
        blocks.append({"type": "section", "text": mrkdwn(summary)})
    else:
        options = await _signable(ctx)
        if not options:
            raise Invalid("You have no port request waiting for a signed letter.")
        blocks.append(forms.select("request", "Port request", options, options[0][1]))
    element = {"type": "file_input", "action_id": forms.VALUE, "max_files": 1}
    element |= {"filetypes": ["pdf", "jpg", "jpeg", "png"]}
    blocks.append(forms.input_block("file", "The signed letter (PDF or photo)", element))
    modal = forms.modal(PORT_SIGN, "Signed letter", "Send", blocks)
    modal["private_metadata"] = str(number) if number is not None else ""
    return modal


async def _signable(ctx: Context) -> list[tuple[str, str]]:
    async with ctx.sessions() as session:
        stmt = (
            select(PortRequest)
            .where(PortRequest.state.in_(portcheck.RUNNING))
            .order_by(PortRequest.state != PortState.DRAFT, PortRequest.id.desc())
            .limit(MAX_OPTIONS)
        )
        visible = await visible_accounts(session, ctx.actor)
        if visible is not None:
            stmt = stmt.where(PortRequest.account_id.in_(visible))
        ports = list(await session.scalars(stmt))
    return [(f"#{p.id} {p.company} ({p.state.value})", str(p.id)) for p in ports]


def read_sign(view: dict[str, Any]) -> tuple[int | None, list[SlackFile]]:
    values = view["state"]["values"]
    chosen = view.get("private_metadata") or forms.chosen(values, "request") or ""
    files = list(((values.get("file") or {}).get(forms.VALUE) or {}).get("files") or [])
    return (int(chosen) if str(chosen).isdigit() else None), files


async def sign_from_form(
    kit: SlackKit, ctx: Context, asker: Asker, view_id: str, number: int, files: list[SlackFile]
) -> None:
    """After the ack: fetch the file from Slack and keep it as the signed letter."""
    fetched, missing = await fetch_files(kit.bot_token, files, kit.services.settings.slack_api_url)
    if missing or not fetched:
        raise Invalid(
            f"Slack would not give us {', '.join(missing) or 'the file'}, so the letter was not "
            f"kept. Upload it again with `/port sign {number}`."
        )
    upload = fetched[0]
    letter = porting.SignedLetter(upload.filename, upload.content_type, upload.data)
    view = await porting.sign_port(ctx, number, letter, source_ref=f"slack:view:{view_id}")
    await asker.show(
        Reply(title=f"Signed letter kept: port request #{number} is {view.state.value}.")
    )


async def _on_sign(
    kit: SlackKit, ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext
) -> None:
    ctx, user = kit.context(actor_of(context)), str(context.user_id)
    number, files = read_sign(view)
    try:
        if number is None:
            raise Invalid("Pick the port request.", {"request": "Pick the port request."})
        await porting.check_may_sign(ctx, number)
        if not files:
            raise Invalid("Attach the signed letter.", {"file": "Attach the signed letter."})
    except Refusal as refusal:
        blocks = set(view["state"]["values"]) | {"file"}
        await ack(response_action="errors", errors=forms.form_errors(refusal, blocks, "file"))
        return
    payload = {"view_id": view["id"], "number": number, "files": files}
    row = await kit.inbox.keep(SIGN_KIND, user, payload)
    await ack()
    asker = Asker(kit.client, user)
    work = sign_from_form(kit, ctx, asker, view["id"], number, files)
    kit.answer(asker, kit.inbox.tracked(row, work), "port sign form")


# --- staff: the current operator's answers ------------------------------------------------------


def status_view(shown: portview.PortView, state: PortState) -> Block:
    blocks: list[Block] = [
        {
            "type": "section",
            "text": mrkdwn(
                f"*Port request #{shown.number}*: {escape(shown.company)}, "
                f"{escape(shown.numbers_label)}, from {escape(shown.donor)}"
            ),
        }
    ]
    if state is PortState.REJECTED:
        options = [
            (f"{code}: {meaning}"[:75], code) for code, meaning in portview.REJECT_CODES.items()
        ]
        blocks.append(forms.select("code", "Reason code", options))
        blocks.append(text("reason", "Note", optional=True, multiline=True, max_length=1000))
    else:
        day = shown.port_date or shown.desired_date
        label = "New expected date" if state is PortState.DELAYED else "Porting date"
        blocks.append(_date_block("date", label, day))
        if state is PortState.DELAYED:
            blocks.append(text("reason", "Why", multiline=True, max_length=1000))
    title = f"{STATUS_TITLES[state]} port #{shown.number}"
    modal = forms.modal(PORT_STATUS, title, STATUS_TITLES[state], blocks)
    modal["private_metadata"] = json.dumps({"id": shown.number, "state": state.value})
    return modal


def read_status(view: dict[str, Any]) -> porting.StatusChange:
    meta = json.loads(view.get("private_metadata") or "{}")
    values = view["state"]["values"]
    return porting.StatusChange(
        number=int(meta["id"]),
        state=PortState(meta["state"]),
        reason=(forms.chosen(values, "reason") or "").strip(),
        code=forms.chosen(values, "code"),
        new_date=picked_date(values, "date"),
        source_ref=f"slack:view:{view['id']}",
    )


async def _set_status(ctx: Context, change: porting.StatusChange) -> None:
    await porting.set_status(ctx, change)


async def _on_status(
    kit: SlackKit, ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext
) -> None:
    ctx, user = kit.context(actor_of(context)), str(context.user_id)
    blocks = set(view["state"]["values"])
    try:
        change = read_status(view)
        blocks |= STATUS_BLOCKS.get(change.state, set())
        await porting.check_status_change(ctx, change)
    except Refusal as refusal:
        fallback = "date" if "date" in blocks else "reason"
        await ack(response_action="errors", errors=forms.form_errors(refusal, blocks, fallback))
        return
    row = await kit.inbox.keep(STATUS_KIND, user, {"view": _kept_view(view)})
    await ack()
    asker = Asker(kit.client, user)
    kit.answer(asker, kit.inbox.tracked(row, _set_status(ctx, change)), "port status form")


def _kept_view(view: dict[str, Any]) -> dict[str, Any]:
    return {key: view.get(key) for key in ("id", "private_metadata", "state")}


# --- buttons ------------------------------------------------------------------------------------


Press = Callable[[SlackKit, Context, Asker, int, str], Awaitable[None]]


async def _accept(kit: SlackKit, ctx: Context, asker: Asker, number: int, trigger: str) -> None:
    await porting.set_status(ctx, porting.StatusChange(number, PortState.ACCEPTED))


async def _complete(kit: SlackKit, ctx: Context, asker: Asker, number: int, trigger: str) -> None:
    await porting.set_status(ctx, porting.StatusChange(number, PortState.COMPLETED))


async def _cancel(kit: SlackKit, ctx: Context, asker: Asker, number: int, trigger: str) -> None:
    await porting.cancel_port(ctx, number, "cancelled in Slack")


async def _upload(kit: SlackKit, ctx: Context, asker: Asker, number: int, trigger: str) -> None:
    await kit.client.views_open(trigger_id=trigger, view=await sign_view(ctx, number))


async def _letter(kit: SlackKit, ctx: Context, asker: Asker, number: int, trigger: str) -> None:
    filename, pdf = await porting.letter_for(ctx, number)
    await send_letter_dm(kit, asker.user_id, number, filename, pdf)


def _status_modal(state: PortState) -> Press:
    async def open_modal(
        kit: SlackKit, ctx: Context, asker: Asker, number: int, trigger: str
    ) -> None:
        check_staff(ctx.actor, "record the current operator's answer")
        shown = await porting.show_port(ctx, number)
        porting.check_transition(number, shown.state, state)
        await kit.client.views_open(trigger_id=trigger, view=status_view(shown, state))

    return open_modal


PRESSES: dict[str, Press] = {
    portthreads.ACCEPT: _accept,
    portthreads.COMPLETE: _complete,
    portthreads.CANCEL: _cancel,
    portthreads.UPLOAD: _upload,
    portthreads.LETTER: _letter,
    **{action: _status_modal(state) for action, state in BUTTON_STATES.items()},
}


def _number(action: dict[str, Any]) -> int:
    value = str(action.get("value") or "")
    if not value.isdigit():
        raise Invalid("This button does not name a port request; use `/port` instead.")
    return int(value)


async def _press(
    press: Press, kit: SlackKit, ctx: Context, asker: Asker, action: dict[str, Any], trigger: str
) -> None:
    await press(kit, ctx, asker, _number(action), trigger)


async def send_letter_dm(kit: SlackKit, user: str, number: int, filename: str, pdf: bytes) -> None:
    """The letter as a PDF in the person's DM with c2bot (it is theirs alone)."""
    opened = await kit.client.conversations_open(users=[user])
    await kit.client.files_upload_v2(
        file_uploads=[{"content": pdf, "filename": filename, "title": filename}],
        channel=str(opened["channel"]["id"]),
        initial_comment=f"Letter of authorisation for port request #{number}: sign it and "
        f"send it back with `/port sign {number}`.",
    )


# --- the plugin protocol ------------------------------------------------------------------------


def register(app: AsyncApp, kit: SlackKit) -> None:
    async def on_new(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        await _on_new(kit, ack, view, context)

    async def on_sign(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        await _on_sign(kit, ack, view, context)

    async def on_status(ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext) -> None:
        await _on_status(kit, ack, view, context)

    app.view(PORT_NEW)(on_new)
    app.view(PORT_SIGN)(on_sign)
    app.view(PORT_STATUS)(on_status)

    def listener(action_id: str, press: Press) -> Callable[..., Awaitable[None]]:
        async def on_press(
            ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
        ) -> None:
            await ack()
            ctx = kit.context(actor_of(context))
            asker = Asker.of(kit.client, context)
            trigger = str(body.get("trigger_id") or "")
            kit.answer(asker, _press(press, kit, ctx, asker, action, trigger), action_id)

        return on_press

    for action_id, press in PRESSES.items():
        app.action(action_id)(listener(action_id, press))


def replay(kit: SlackKit, ctx: Context, row: SlackInbox) -> Coroutine[Any, Any, None]:
    """The work of a kept submission a crash left undone (each is done once however replayed)."""
    asker = Asker(kit.client, row.user_id)
    payload = row.payload
    if row.kind == NEW_KIND:
        request = read_new_port(payload["view_id"], payload["values"])
        return make_from_form(ctx, asker, request)
    if row.kind == SIGN_KIND:
        return sign_from_form(
            kit, ctx, asker, payload["view_id"], int(payload["number"]), payload["files"]
        )
    if row.kind == STATUS_KIND:
        return _set_status(ctx, read_status(payload["view"]))
    raise LookupError(f"no kept submission kind {row.kind!r} here")


async def after_reply(kit: SlackKit, asker: Asker, result: Result) -> None:
    """`/port letter`: the PDF follows the reply, in the asker's DM."""
    if isinstance(result, PortLetter) and result.pdf:
        await send_letter_dm(kit, asker.user_id, result.request_id, result.filename, result.pdf)
