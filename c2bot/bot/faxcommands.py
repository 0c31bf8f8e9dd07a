"""The `fax` command: Web2Fax, fax senders and fax settings.

The words are the DESIGN grammar; each verb turns them into one call to `c2bot.handlers.fax`.
`commands.py` registers them, so Slack, the shell and `bot@` mail accept the same lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from c2bot.bot.grammar import Command, Invocation, Param, Result, Verb
from c2bot.handlers import fax
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid
from c2bot.handlers.replies import Reply
from c2bot.storage.models import FaxState

FAX_SEND = "fax_send"
SEND_USAGE = (
    'fax send NUMBER[,NUMBER...] TEXT... [account:N] [caller:NUMBER] [name:"..."] '
    '(a number with spaces goes in "...")'
)
FAX_ID = Param(
    "id", "the fax as listed, e.g. 7 or #7", required=True, positional=True, integer=True
)
ACCOUNT = Param("account", "account number (resellers and staff)")
STATES = tuple(state.value for state in FaxState)
YES_NO = ("yes", "no")
# The words `fax set ... clear:` takes, and the stored settings each one empties.
CLEARABLE: dict[str, tuple[str, ...]] = {
    "retries": ("retries",),
    "server": ("server",),
    "mailbox": ("imap_host", "imap_port"),
    "user": ("imap_user",),
    "password": ("imap_password",),
    "tls": ("imap_tls",),
    "countries": ("countries",),
    "premium": ("allow_premium",),
    "pages": ("daily_pages",),
}


@dataclass(frozen=True)
class FaxShown(Reply):
    """`fax show`'s reply, plus where its rendered pages are, for doors that show a picture."""

    job_id: int = 0
    tiff_path: str | None = None


# --- sending and following faxes --------------------------------------------------------------


async def _fax_send(ctx: Context, inv: Invocation) -> Result:
    submission = fax.FaxSubmission(
        numbers=fax.split_numbers(inv.need("numbers")),
        text=inv.get("text"),
        account=inv.get("account"),
        caller=inv.get("caller"),
        caller_name=inv.get("name"),
        source_ref=ctx.request_ref,
    )
    return (await fax.submit_fax(ctx, submission)).reply()


async def _fax_list(ctx: Context, inv: Invocation) -> Result:
    state = inv.get("state")
    query = fax.FaxFilter(account=inv.get("account"), state=FaxState(state) if state else None)
    return await fax.list_faxes(ctx, query)


async def _fax_show(ctx: Context, inv: Invocation) -> Result:
    view = await fax.show_fax(ctx, inv.number("id"))
    request = view.job.request
    reply = view.reply(request.account.timezone)
    return FaxShown(
        title=reply.title,
        text=reply.text,
        fields=reply.fields,
        table=reply.table,
        job_id=view.job.id,
        tiff_path=request.tiff_path,
    )


async def _fax_retry(ctx: Context, inv: Invocation) -> Result:
    return await fax.retry_fax(ctx, inv.number("id"))


async def _fax_cancel(ctx: Context, inv: Invocation) -> Result:
    return await fax.cancel_fax(ctx, inv.number("id"))


# --- who may send by mail ---------------------------------------------------------------------


async def _fax_allow(ctx: Context, inv: Invocation) -> Result:
    reply = await fax.allow_sender(
        ctx, inv.need("email"), inv.get("account"), smtp_password="smtp" in inv.flags
    )
    # An SMTP password is shown once, to the asker alone: never in a channel.
    return Reply(title=reply.title, text=reply.text, fields=reply.fields, public=False)


async def _fax_disallow(ctx: Context, inv: Invocation) -> Result:
    return await fax.remove_sender(ctx, inv.need("email"))


async def _fax_senders(ctx: Context, inv: Invocation) -> Result:
    return await fax.list_senders(ctx, inv.get("account"))


# --- fax settings -----------------------------------------------------------------------------


async def _fax_settings(ctx: Context, inv: Invocation) -> Result:
    return await fax.show_fax_settings(ctx, inv.get("account"))


async def _fax_set(ctx: Context, inv: Invocation) -> Result:
    host, port = _mailbox(inv.get("mailbox"))
    change = fax.FaxSettingsChange(
        account=inv.get("account"),
        retries=_integer(inv.get("retries")),
        imap_host=host,
        imap_port=port,
        imap_user=inv.get("user"),
        imap_password=inv.get("password"),
        imap_tls=_yes(inv.get("tls")),
        server=inv.get("server"),
        countries=inv.get("countries"),
        allow_premium=_yes(inv.get("premium")),
        daily_pages=_integer(inv.get("pages")),
        clear=_cleared(inv.get("clear")),
    )
    return await fax.set_fax_settings(ctx, change)


def _mailbox(value: str | None) -> tuple[str | None, int | None]:
    """`host` or `host:port` -> (host, port)."""
    if value is None:
        return None, None
    host, colon, port = value.strip().rpartition(":")
    if not colon:
        return value.strip(), None
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise Invalid(
            f"mailbox must be host or host:port, e.g. imap.example.nl:993 (got {value!r}).",
            {"mailbox": "host or host:port"},
        )
    return host, int(port)


def _integer(value: str | None) -> int | None:
    return None if value is None else int(value)


def _yes(value: str | None) -> bool | None:
    return None if value is None else value == "yes"


def _cleared(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    words = [word.strip().lower() for word in value.split(",") if word.strip()]
    unknown = [word for word in words if word not in CLEARABLE]
    if unknown:
        raise Invalid(
            f"clear: knows no setting {', '.join(unknown)}; it takes {', '.join(CLEARABLE)}.",
            {"clear": "unknown setting"},
        )
    return tuple(name for word in words for name in CLEARABLE[word])


FAX = Command(
    name="fax",
    summary="send faxes (Web2Fax), follow them, and manage Mail2Fax senders and fax settings",
    verbs=(
        Verb(
            "send",
            "fax a text (in Slack, with no words: a form that also takes files)",
            _fax_send,
            form=FAX_SEND,
            params=(
                Param(
                    "numbers",
                    'fax number(s), comma-separated, no spaces (or in "...")',
                    required=True,
                    positional=True,
                ),
                ACCOUNT,
                Param("caller", "one of the account's numbers, sent as the fax's caller id"),
                Param("name", "the name on the fax header; the company name by default"),
            ),
            rest="text",
        ),
        Verb(
            "list",
            "faxes you may see, newest first",
            _fax_list,
            params=(
                Param("account", "only this account"),
                Param("state", "only faxes in this state", STATES),
            ),
        ),
        Verb(
            "show",
            "a fax: state, attempts, result (in Slack: page one too)",
            _fax_show,
            params=(FAX_ID,),
        ),
        Verb("retry", "send a failed or cancelled fax again", _fax_retry, params=(FAX_ID,)),
        Verb("cancel", "stop a fax that is not on the line yet", _fax_cancel, params=(FAX_ID,)),
        Verb(
            "allow",
            "let an address send faxes by mail (Mail2Fax) for an account",
            _fax_allow,
            params=(
                Param("email", "the sender's address", required=True, positional=True),
                ACCOUNT,
            ),
            flags=(("smtp", "also give it an SMTP password (shown once) for SMTP AUTH"),),
        ),
        Verb(
            "disallow",
            "stop an address sending faxes by mail",
            _fax_disallow,
            params=(Param("email", "the sender's address", required=True, positional=True),),
        ),
        Verb("senders", "addresses that may send faxes by mail", _fax_senders, params=(ACCOUNT,)),
        Verb(
            "settings",
            "an account's fax settings and where each comes from",
            _fax_settings,
            params=(ACCOUNT,),
        ),
        Verb(
            "set",
            "change an account's fax settings (the guard: its reseller or support only)",
            _fax_set,
            params=(
                ACCOUNT,
                Param("retries", "fax send retries after the first attempt, 0 to 10", integer=True),
                Param("server", "the fax server (FreeSWITCH host) that sends"),
                Param("mailbox", "the account's fax mailbox, IMAP host or host:port"),
                Param("user", "the fax mailbox's user"),
                Param("password", "the fax mailbox's password (stored encrypted, never shown)"),
                Param("tls", "IMAP over TLS", YES_NO),
                Param("countries", "countries that may be faxed, e.g. NL,BE,DE (guard)"),
                Param("premium", "allow premium-rate numbers (guard)", YES_NO),
                Param("pages", "pages a day the account may send (guard)", integer=True),
                Param("clear", f"settings to inherit again: {','.join(CLEARABLE)}"),
            ),
        ),
    ),
    examples=(
        'fax send +31201234567 "Please call us back about order 42."',
        "fax list state:failed",
        "fax allow scanner@acme.nl account:1001 smtp",
        "fax set account:1001 retries:5 countries:NL,BE pages:200",
    ),
)

# Numbers and their FOIP forwarding are `route did` (devicecommands.py).
ROUTE_OBJECTS: tuple[Command, ...] = ()
READ_ONLY_VERBS = frozenset({"senders", "settings"})
