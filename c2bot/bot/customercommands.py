"""`/c2 customer new|list|show|edit|suspend|unsuspend|import`: the words of accounts with the
platform's customer fields, each verb one call into c2bot.handlers.customers.

`new` with no words opens a form in Slack (text doors explain the one-line form); `add` is the
same verb under its old name, so existing scripts keep working. `import` opens a form with a
file input in Slack; the shell has `c2bot import customers FILE.csv`.
"""

from __future__ import annotations

from c2bot.bot.grammar import Command, Invocation, Param, Result, Verb
from c2bot.handlers import customers
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid
from c2bot.storage.models import Channel

CUSTOMER_NEW, CUSTOMER_IMPORT = "customer_new", "customer_import"

NUMBER = Param("number", "the account number, e.g. 1001", required=True, positional=True)
# The fields `new` and `edit` share, by the key the handler knows them by.
FIELD_PARAMS = (
    Param("company", "company name"),
    Param("email", "the account's email address (also a contact for cases)"),
    Param("first-name", "contact's first name"),
    Param("last-name", "contact's last name"),
    Param("phone", "phone number"),
    Param("mobile", "mobile number"),
    Param("address", "street and number"),
    Param("city", "city"),
    Param("province", "province or state"),
    Param("zip", "zip or postal code"),
    Param("timezone", "IANA time zone, default Europe/Amsterdam"),
    Param("rategroup", "rate group name: one of the seller's (none: no group)"),
    Param("billing", "prepaid (calls while the balance lasts) or postpaid", customers.BILLINGS),
    Param("balance", "balance, e.g. 25.00 (not negative)"),
    Param("credit-limit", "credit limit for postpaid, e.g. 100.00"),
    Param("channels", "concurrent calls allowed (0: no limit)"),
    Param("cps", "calls per second allowed (0: no limit)"),
    Param("translation", 'number translation in match/replace rules, e.g. "0031/0","00/+"'),
    Param("out-callerid", "outbound caller-id translation (match/replace rules)"),
    Param("in-callerid", "inbound caller-id translation (match/replace rules)"),
    Param(
        "password",
        f"portal password: {customers.PASSWORD_MIN}+ characters, letters and digits (not by email)",
    ),
)
NEW_PARAMS = (
    Param("number", "account number (empty: 10 random digits are made)", positional=True),
    *FIELD_PARAMS,
    Param("sip-username", "first SIP device's user name (default ACCOUNT-100)"),
    Param(
        "sip-password",
        f"first SIP device's password, {12}+ characters (better: leave it out, one is made)",
    ),
    Param("reseller", "the parent account: staff name a reseller; a reseller one of its own"),
    Param("role", "staff: customer or reseller (a reseller's email becomes a reseller user)"),
)
DEVICE_FLAG = ("device", "also make a first SIP device, ACCOUNT-100, with a made password")
NEW_USAGE = (
    'c2 customer new [NUMBER] company:"..." email:EMAIL [first-name:...] [last-name:...] '
    "[phone:...] [rategroup:NAME] [billing:prepaid|postpaid] [balance:N] [credit-limit:N] "
    "[channels:N] [cps:N] [translation:RULES] [password:...] [device] [sip-username:...]"
)
IMPORT_USAGE = (
    "In Slack, `/c2 customer import` opens a form for the CSV file; in a shell: "
    "`c2bot import customers FILE.csv`. Columns (by header name, any order): "
    + customers.GUIDE_HEADER
    + " (and Reseller, Rate Group, Billing, Time Zone)."
)
FORM_USAGE = {CUSTOMER_NEW: NEW_USAGE, CUSTOMER_IMPORT: IMPORT_USAGE}
READ_ONLY_VERBS: frozenset[str] = frozenset({"list", "show"})
KEYS = tuple(p.name for p in FIELD_PARAMS)


def _values(inv: Invocation) -> dict[str, str | None]:
    return {key: inv.get(key) for key in KEYS if inv.get(key) is not None}


async def _new(ctx: Context, inv: Invocation) -> Result:
    values = _values(inv) | {"number": inv.get("number")}
    user, password = inv.get("sip-username"), inv.get("sip-password")
    wanted = "device" in inv.flags or user is not None or password is not None
    request = customers.NewCustomer(
        values=values,
        device=customers.DeviceWanted(user or "", password or "") if wanted else None,
        reseller=inv.get("reseller"),
        role=inv.get("role") or "customer",
    )
    made = await customers.new_customer(ctx, request)
    # Mail travels and is kept in the clear; other doors answer the asker alone.
    return made.reply(show_password=ctx.channel is not Channel.EMAIL)


async def _list(ctx: Context, inv: Invocation) -> Result:
    return await customers.list_customers(
        ctx,
        page=int(inv.get("page") or 1),
        sort=inv.get("sort") or "number",
        status=inv.get("status"),
        reseller=inv.get("reseller"),
    )


async def _show(ctx: Context, inv: Invocation) -> Result:
    return await customers.show_customer(ctx, inv.need("number"))


async def _edit(ctx: Context, inv: Invocation) -> Result:
    return await customers.edit_customer(ctx, inv.need("number"), _values(inv))


async def _suspend(ctx: Context, inv: Invocation) -> Result:
    return await customers.set_suspended(ctx, inv.need("number"), True)


async def _unsuspend(ctx: Context, inv: Invocation) -> Result:
    return await customers.set_suspended(ctx, inv.need("number"), False)


async def _import(ctx: Context, inv: Invocation) -> Result:
    raise Invalid(IMPORT_USAGE)


def _new_verb(name: str, summary: str) -> Verb:
    return Verb(name, summary, _new, params=NEW_PARAMS, flags=(DEVICE_FLAG,), form=CUSTOMER_NEW)


CUSTOMER = Command(
    "c2 customer",
    "accounts (customers and resellers) with the platform's fields",
    (
        _new_verb(
            "new",
            "add an account: staff any, a reseller its own customers (Slack: a form)",
        ),
        _new_verb("add", "the same as new (its old name)"),
        Verb(
            "list",
            "accounts you may see, with balance and credit, a page at a time",
            _list,
            params=(
                Param("page", "page number, 25 accounts a page", integer=True),
                Param("sort", "order by", customers.SORTS),
                Param("status", "only active or suspended accounts", customers.STATUSES),
                Param("reseller", "only the customers of this reseller"),
            ),
        ),
        Verb("show", "every field of an account, its balance and devices", _show, params=(NUMBER,)),
        Verb(
            "edit",
            "change fields (an account's own people: contact fields and password)",
            _edit,
            params=(NUMBER, *FIELD_PARAMS),
        ),
        Verb(
            "suspend",
            "suspend an account: its outbound calls are refused (its seller)",
            _suspend,
            params=(NUMBER,),
        ),
        Verb("unsuspend", "put a suspended account back in service", _unsuspend, params=(NUMBER,)),
        Verb(
            "import",
            "many customers from a CSV file (Slack: a form for the file)",
            _import,
            form=CUSTOMER_IMPORT,
        ),
    ),
    examples=(
        'c2 customer new company:"Acme BV" email:office@acme.nl rategroup:retail '
        "balance:25 channels:2 device",
        "c2 customer list sort:balance page:2",
        "c2 customer show 1001",
        'c2 customer edit 1001 phone:+31201234567 translation:"0031/0,00/+"',
        "c2 customer suspend 1001",
    ),
)
