"""`/port`: number porting by message, the same words in Slack, the shell and at `bot@`.

Each verb turns its words into one call to `c2bot.handlers.porting`. Two verbs move files and so
differ by door: `port sign` takes the signed letter (Slack: a modal with an upload; shell:
`file:PATH`; mail: a reply to the letter's mail with the file attached) and `port letter` gives
the filled-in letter (Slack: a PDF in your DM; shell: a file; mail: the letter mailed again).
"""

from __future__ import annotations

import asyncio
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from c2bot.bot.grammar import Command, Invocation, Param, Result, Verb
from c2bot.handlers import portcheck, porting, portview
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid
from c2bot.handlers.replies import OpenForm, Reply
from c2bot.storage.models import Channel, PortState

PORT_NEW = "port_new"
PORT_SIGN = "port_sign"
NEW_USAGE = (
    'port new company:"..." contact:"..." street:"..." house:N [addition:"..."] postcode:1234AB '
    'city:"..." donor:"..." numbers:"0201234567,0301234500-0301234599" date:YYYY-MM-DD '
    '[donor_customer:"..."] [contract:terminate|continue] '
    f"[line:{'|'.join(portcheck.LINE_WORDS)}] [email:ADDRESS] [account:N]"
)
SIGN_USAGE = "port sign ID (in Slack: a form to upload the signed letter; shell: file:PATH)"
FORM_USAGE: dict[str, str] = {PORT_NEW: NEW_USAGE, PORT_SIGN: SIGN_USAGE}
# Neither changes anything where changes are guarded: in Slack `sign` only opens its form (the
# form's submission is the change) and `letter` only shows the PDF; by mail, `sign` explains how
# to send the file and `letter` re-sends the letter to the request's own contact address.
READ_ONLY_VERBS: frozenset[str] = frozenset({"sign", "letter"})

PORT_ID = Param(
    "id", "the port request, e.g. 12 or #12", required=True, positional=True, integer=True
)
STATUS_WORDS = tuple(s.value for s in porting.STAFF_STATES)
STATES = tuple(s.value for s in PortState)


@dataclass(frozen=True)
class PortLetter(Reply):
    """`port letter`'s reply in Slack: the PDF goes to the asker's DM after the reply."""

    request_id: int = 0
    filename: str = ""
    pdf: bytes = b""


# --- the verbs --------------------------------------------------------------------------------


async def _new(ctx: Context, inv: Invocation) -> Result:
    request = portcheck.NewPort(
        company=inv.get("company") or "",
        contact=inv.get("contact") or "",
        email=inv.get("email"),
        street=inv.get("street") or "",
        house=inv.get("house") or "",
        addition=inv.get("addition") or "",
        postcode=inv.get("postcode") or "",
        city=inv.get("city") or "",
        donor=inv.get("donor") or "",
        donor_customer=inv.get("donor_customer") or "",
        contract=inv.get("contract"),
        line_type=inv.get("line"),
        numbers=inv.get("numbers") or "",
        desired_date=inv.get("date"),
        account=inv.get("account"),
    )
    return (await porting.create_port(ctx, request)).reply()


async def _list(ctx: Context, inv: Invocation) -> Result:
    state = inv.get("state")
    query = porting.PortFilter(
        state=PortState(state) if state else None,
        account=inv.get("account"),
        date_from=inv.get("from"),
        date_to=inv.get("to"),
        include_final="all" in inv.flags,
    )
    return await porting.list_ports(ctx, query)


async def _show(ctx: Context, inv: Invocation) -> Result:
    return (await porting.show_port(ctx, inv.number("id"))).as_reply()


async def _cancel(ctx: Context, inv: Invocation) -> Result:
    view = await porting.cancel_port(ctx, inv.number("id"), inv.get("reason") or "")
    return Reply(title=f"Port request #{view.number} is cancelled.", fields=view.fields())


async def _status(ctx: Context, inv: Invocation) -> Result:
    change = porting.StatusChange(
        number=inv.number("id"),
        state=PortState(inv.need("state")),
        reason=inv.get("reason") or "",
        code=inv.get("code"),
        new_date=inv.get("date"),
    )
    view = await porting.set_status(ctx, change)
    return Reply(
        title=f"Port request #{view.number} is now {view.state.value}.",
        fields=view.fields(),
        text=_after_completion(view),
    )


def _after_completion(view: portview.PortView) -> str:
    if view.state is not PortState.COMPLETED:
        return ""
    first = view.ranges[0].first if view.ranges else "NUMBER"
    return (
        f"{view.total} number(s) are now DIDs of account {view.account_number}, with no "
        f"forwarding yet: set each with `/route did set NUMBER TYPE DESTINATION`, e.g. "
        f"`/route did set {first} local DEVICE`."
    )


async def _sign(ctx: Context, inv: Invocation) -> Result:
    number = inv.number("id")
    if ctx.channel is Channel.SLACK:
        await porting.check_may_sign(ctx, number)
        return OpenForm(form=PORT_SIGN, usage=SIGN_USAGE, initial={"id": str(number)})
    if ctx.channel is Channel.SHELL:
        path = inv.get("file")
        if not path:
            raise Invalid(
                f"Give the signed letter: port sign {number} file:PATH.", {"file": "missing"}
            )
        letter = await asyncio.to_thread(_read_local, Path(path))
        view = await porting.sign_port(ctx, number, letter)
        return Reply(title=f"Signed letter kept; port request #{number} is {view.state.value}.")
    view = await porting.check_may_sign(ctx, number)
    return Reply(
        title=(
            f"To send the signed letter for port request #{number} by mail, reply to the mail "
            f"that brought the letter (it went to {view.contact_email or 'the account'}) and "
            "attach the signed letter as a PDF or a photo. Lost that mail? Send "
            f"`port letter {number}` here and it comes again."
        )
    )


def _read_local(path: Path) -> porting.SignedLetter:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise Invalid(f"Cannot read {path}: {error.strerror}.", {"file": "unreadable"}) from None
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return porting.SignedLetter(path.name, kind, data)


async def _letter(ctx: Context, inv: Invocation) -> Result:
    number = inv.number("id")
    if ctx.channel is Channel.EMAIL:
        view = await porting.send_letter_again(ctx, number)
        return Reply(
            title=f"The letter of authorisation for port request #{number} is mailed again to "
            f"{view.contact_email or 'the account'}."
        )
    filename, pdf = await porting.letter_for(ctx, number)
    if ctx.channel is Channel.SHELL:
        target = Path(inv.get("file") or filename)
        await asyncio.to_thread(target.write_bytes, pdf)
        return Reply(
            title=f"Letter of authorisation for port request #{number} written to {target}."
        )
    return PortLetter(
        title=f"The letter of authorisation for port request #{number} is in your DM with c2bot.",
        request_id=number,
        filename=filename,
        pdf=pdf,
    )


# --- the command ------------------------------------------------------------------------------


def _text(name: str, help: str) -> Param:
    return Param(name, help)


PORT = Command(
    name="port",
    summary="number porting: bring numbers over from another operator",
    verbs=(
        Verb(
            "new",
            "ask to port numbers (in Slack, with no words: a form); every problem is told at once",
            _new,
            form=PORT_NEW,
            params=(
                _text("company", "the company that holds the numbers (required)"),
                _text("contact", "the contact person who signs the letter (required)"),
                _text("street", "street of the address the donor has on file (required)"),
                _text("house", "house number (required)"),
                _text("addition", "house number addition, e.g. A or bis"),
                _text("postcode", "postcode, e.g. 1234AB (required)"),
                _text("city", "city (required)"),
                _text("donor", "the current operator, e.g. KPN (required)"),
                _text("donor_customer", "your customer number at the current operator"),
                Param(
                    "contract",
                    "terminate (the contract there ends; default) or continue "
                    "(other services go on)",
                    portcheck.CONTRACT_WORDS,
                ),
                Param(
                    "line",
                    "the line type; guessed from the numbers if left out",
                    portcheck.LINE_WORDS,
                ),
                _text(
                    "numbers",
                    "numbers and ranges, comma-separated: 0201234567, 0301234500-0301234599 or "
                    "0301234500+100 (start and count) (required)",
                ),
                _text(
                    "date",
                    "desired porting date, YYYY-MM-DD, a working day far enough ahead (required)",
                ),
                _text("email", "where the letter and news go; you (or the account) by default"),
                _text("account", "account number (resellers and staff)"),
            ),
        ),
        Verb(
            "list",
            "port requests you may see (running ones unless state: or all)",
            _list,
            params=(
                Param("state", "only requests in this state", STATES),
                _text("account", "only this account"),
                _text("from", "porting date on or after YYYY-MM-DD"),
                _text("to", "porting date on or before YYYY-MM-DD"),
            ),
            flags=(("all", "finished requests too"),),
        ),
        Verb("show", "a request with its numbers and history", _show, params=(PORT_ID,)),
        Verb(
            "cancel",
            "cancel a request (customers: until it is scheduled)",
            _cancel,
            params=(PORT_ID, _text("reason", "why, for the record")),
        ),
        Verb(
            "status",
            "record the current operator's answer or the port's progress (staff)",
            _status,
            params=(
                PORT_ID,
                Param("state", "the new state", STATUS_WORDS, required=True, positional=True),
                _text("reason", "why (rejected: a note; delayed: required)"),
                Param("code", "rejected: the reason code", tuple(portview.REJECT_CODES)),
                _text("date", "delayed: the new expected date; scheduled: the agreed date"),
            ),
        ),
        Verb(
            "sign",
            "send the signed letter of authorisation (Slack: upload form; shell: file:PATH)",
            _sign,
            form=PORT_SIGN,
            params=(PORT_ID, _text("file", "shell: the signed letter (PDF, JPEG or PNG)")),
        ),
        Verb(
            "letter",
            "the filled-in letter of authorisation as PDF (by mail: mailed again)",
            _letter,
            params=(PORT_ID, _text("file", "shell: where to write the PDF")),
        ),
    ),
    examples=(
        'port new company:"Acme BV" contact:"Jan Jansen" street:Dorpsstraat house:12 '
        'postcode:1234AB city:Amsterdam donor:KPN numbers:"0201234567,0301234500-0301234599" '
        "date:2026-12-14",
        "port list state:submitted",
        'port status 12 rejected code:customer-number reason:"KPN knows no customer 4711"',
        "port status 12 scheduled date:2026-12-14",
    ),
)
