"""Customers: the platform's account fields, made one at a time or from a CSV file, listed,
shown, changed, suspended.

Every door gives the fields as text under the same keys (the command's `key:` words, the
modal's boxes, the CSV's columns mapped by `CSV_COLUMNS`), and every door gets the same checks:
`check_values` finds every problem at once, keyed by field, so a form shows each next to its
box and an import names each bad row with all its reasons.

Who may do what (DESIGN.md "Who is who"): staff make any account (a carrier's direct account,
a reseller, or a reseller's customer with `reseller:N`); a reseller makes customers under
itself; a customer makes none. A customer (and a reseller, on its own account) may change only
its contact fields and password; money, limits, rate group and translations are set by the
seller above (its reseller, or staff). Suspending is for the seller above too; a suspended
account's outbound calls are refused by the dialplan (`Account.status`).

Passwords are hashed with scrypt (as fax SMTP passwords are) and never logged, audited, kept
in a Slack inbox or echoed. A first SIP device is made in the same transaction as its account,
with the devices handler's own rules (user name, password strength, sealing, change log).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers import audit, devices
from c2bot.handlers.accounts import (
    NewAccount,
    account_by_number,
    check_address_is_free,
    check_may_add_accounts,
    check_timezone,
    insert_account,
    normalise_email,
    parent_for,
    rate_group_for,
    scoped,
)
from c2bot.handlers.amounts import parse_amount, parse_count
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound, Refusal
from c2bot.handlers.fax import hash_password
from c2bot.handlers.permissions import check_account
from c2bot.handlers.replies import Reply, Table
from c2bot.storage.crypto import seal
from c2bot.storage.models import (
    Account,
    AccountStatus,
    Billing,
    Contact,
    Person,
    RateGroup,
    Role,
    SipDevice,
)
from c2bot.switch.translation import TranslationError, parse_rules, render

# The fields, by the key every door uses, with the label people read.
LABELS: dict[str, str] = {
    "number": "Account number",
    "password": "Password",
    "first-name": "First name",
    "last-name": "Last name",
    "company": "Company",
    "email": "Email",
    "phone": "Phone",
    "mobile": "Mobile",
    "address": "Address",
    "city": "City",
    "province": "Province/State",
    "zip": "Zip/Postal code",
    "timezone": "Time zone",
    "rategroup": "Rate group",
    "billing": "Billing",
    "balance": "Balance",
    "credit-limit": "Credit limit",
    "channels": "Concurrent calls",
    "cps": "CPS",
    "translation": "Number translation",
    "out-callerid": "Out caller-id translation",
    "in-callerid": "In caller-id translation",
    "sip-username": "SIP username",
    "sip-password": "SIP password",
    "reseller": "Reseller",
    "role": "Role",
}
# key -> (Account column, longest length)
TEXT_COLUMNS: dict[str, tuple[str, int]] = {
    "first-name": ("first_name", 100),
    "last-name": ("last_name", 100),
    "company": ("company", 200),
    "phone": ("phone", 40),
    "mobile": ("mobile", 40),
    "address": ("address", 200),
    "city": ("city", 100),
    "province": ("province", 100),
    "zip": ("zip_code", 20),
}
TRANSLATIONS: dict[str, str] = {
    "translation": "number_translation",
    "out-callerid": "out_callerid_translation",
    "in-callerid": "in_callerid_translation",
}
MONEY: dict[str, str] = {"balance": "balance", "credit-limit": "credit_limit"}
COUNTS: dict[str, str] = {"channels": "max_channels", "cps": "cps"}
# What an account's own people may change on it (a customer, or a reseller on its own account).
CONTACT_KEYS = frozenset(
    {"first-name", "last-name", "phone", "mobile", "address", "city", "province", "zip"}
    | {"password"}
)
# What the seller above may change (staff: on every account); number, device, parent and role
# are set when the account is made.
EDITABLE = frozenset(
    {*TEXT_COLUMNS, *TRANSLATIONS, *MONEY, *COUNTS}
    | {"email", "timezone", "rategroup", "billing", "password"}
)
ROLES = (Role.CUSTOMER.value, Role.RESELLER.value)
BILLINGS = tuple(b.value for b in Billing)
STATUSES = tuple(s.value for s in AccountStatus)

# The platform guide's CSV columns (and c2bot's four more), matched by header name in any order
# and case; spaces around a header do not count.
CSV_COLUMNS: dict[str, str] = {
    "account number": "number",
    "password": "password",
    "first name": "first-name",
    "last name": "last-name",
    "company": "company",
    "phone": "phone",
    "mobile": "mobile",
    "email": "email",
    "address": "address",
    "city": "city",
    "province/state": "province",
    "zip/postal code": "zip",
    "number translation": "translation",
    "out callerid translation": "out-callerid",
    "in callerid translation": "in-callerid",
    "concurrent calls": "channels",
    "cps": "cps",
    "balance": "balance",
    "credit limit": "credit-limit",
    "sip username": "sip-username",
    "sip password": "sip-password",
    # c2bot's own: under which reseller (staff), at which rate group, how billed, local time.
    "reseller": "reseller",
    "rate group": "rategroup",
    "billing": "billing",
    "time zone": "timezone",
}
GUIDE_HEADER = (
    "Account Number,Password,First Name,Last Name,Company,Phone,Mobile,Email,Address,City,"
    "Province/State,Zip/Postal Code,Number Translation,Out Callerid Translation,"
    "In Callerid Translation,Concurrent Calls,CPS,Balance,Credit Limit,SIP Username,SIP Password"
)
CSV_REQUIRED = ("email",)
CSV_HEADERS = (*GUIDE_HEADER.split(","), "Reseller", "Rate Group", "Billing", "Time Zone")
MAX_IMPORT_ROWS = 10_000
MAX_IMPORT_BYTES = 5 * 1024 * 1024

PASSWORD_MIN, PASSWORD_MAX = 8, 128
NUMBER_DIGITS = 10
PAGE_SIZE = 25
MONEY_MAX = Decimal(10) ** 12
COUNT_MAX = 100_000
SORTS = ("number", "company", "balance", "created", "status")
_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")
_PHONE = re.compile(r"^[0-9+()./\- ]*$")


# --- checking what was given -------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """Given text as account columns, the password still plain, and every problem by key."""

    columns: dict[str, Any] = field(default_factory=dict)
    password: str | None = None
    rate_group: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


def check_password(password: str, number: str = "") -> str:
    """The portal password rules: 8 to 128 characters, letters and digits, not the number."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise Invalid(
            f"A password is {PASSWORD_MIN} to {PASSWORD_MAX} characters.",
            {"password": f"{PASSWORD_MIN} to {PASSWORD_MAX} characters"},
        )
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        raise Invalid(
            "A password needs both letters and digits.", {"password": "letters and digits"}
        )
    if number and number.lower() in password.lower():
        raise Invalid(
            "A password must not contain the account number.", {"password": "contains the number"}
        )
    return password


def check_values(values: Mapping[str, str | None], *, new: bool) -> Checked:
    """Every given field checked; keys not given (or None) are left out of `columns`."""
    columns: dict[str, Any] = {}
    errors: dict[str, str] = {}
    given = {k: v.strip() for k, v in values.items() if v is not None}
    for key, text in given.items():
        try:
            if key in TEXT_COLUMNS:
                column, longest = TEXT_COLUMNS[key]
                if len(text) > longest:
                    raise ValueError(f"at most {longest} characters")
                if key == "company" and not text and not new:
                    raise ValueError("cannot be empty")
                if key in ("phone", "mobile") and not _PHONE.match(text):
                    raise ValueError("digits, spaces, + ( ) - . only")
                columns[column] = " ".join(text.split())
            elif key in TRANSLATIONS:
                columns[TRANSLATIONS[key]] = render(parse_rules(text))
            elif key in MONEY:
                columns[MONEY[key]] = parse_amount(text or "0", maximum=MONEY_MAX)
            elif key in COUNTS:
                columns[COUNTS[key]] = parse_count(text or "0", maximum=COUNT_MAX)
            elif key == "email" and not text:
                raise ValueError("needed" if new else "cannot be empty")
            elif key == "email":
                columns["email"] = normalise_email(text)
            elif key == "timezone" and text:
                columns["timezone"] = check_timezone(text)
            elif key == "billing" and text:
                if text.lower() not in BILLINGS:
                    raise ValueError("prepaid or postpaid")
                columns["billing"] = text.lower()
            elif key == "number" and text and not _NUMBER.match(text):
                raise ValueError("2 to 32 letters, digits, - or _")
        except TranslationError as bad:
            errors[key] = str(bad)
        except ValueError as bad:
            errors[key] = str(bad)
        except Invalid as bad:
            errors[key] = next(iter(bad.fields.values()), bad.message)
    password = given.get("password") or None
    if password is not None:
        try:
            check_password(password, given.get("number", ""))
        except Invalid as bad:
            errors["password"] = bad.fields["password"]
    if new:
        if not given.get("email") and "email" not in errors:
            errors["email"] = "needed"
        name = " ".join(f"{given.get('first-name', '')} {given.get('last-name', '')}".split())
        if not given.get("company") and not name and "company" not in errors:
            errors["company"] = "give a company or a name"
        if "company" not in errors:
            columns["company"] = columns.get("company") or name
    rate_group = given.get("rategroup")
    if rate_group is not None and rate_group.lower() == "none":
        rate_group = ""
    return Checked(columns, password, rate_group, errors)


def _refusal(checked: Checked, what: str) -> Invalid:
    listed = "; ".join(f"{LABELS.get(k, k)}: {v}" for k, v in checked.errors.items())
    return Invalid(f"{what}: {listed}.", dict(checked.errors))


def _generated_number(ctx: Context, salt: str) -> str:
    """Ten digits, the first not 0. For a request that may come again (a kept Slack command, a
    confirmed mail) the same digits each time, derived with C2_SECRET_KEY, so a replay finds
    the account it made instead of making a second one."""
    key = ctx.settings.secret_key
    if ctx.request_ref is None or key is None:
        return str(secrets.randbelow(9) + 1) + "".join(
            str(secrets.randbelow(10)) for _ in range(NUMBER_DIGITS - 1)
        )
    message = f"account number:{ctx.request_ref}:{salt}".encode()
    digest = hmac.new(key.get_secret_value().encode(), message, hashlib.sha256).digest()
    value = int.from_bytes(digest, "big")
    first, rest = divmod(value % (9 * 10 ** (NUMBER_DIGITS - 1)), 10 ** (NUMBER_DIGITS - 1))
    return f"{first + 1}{rest:0{NUMBER_DIGITS - 1}d}"


# --- the first SIP device ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceWanted:
    username: str  # as given; "" for ACCOUNT-100
    password: str  # as given; "" for a generated one


_DEVICE_FIELDS = {"name": "sip-username", "username": "sip-username", "password": "sip-password"}


def _device_refusal(bad: Invalid) -> Invalid:
    fields = {_DEVICE_FIELDS.get(k, k): v for k, v in bad.fields.items()}
    return Invalid(bad.message, fields)


def device_username(number: str, wanted: DeviceWanted) -> str:
    """The device's user name for an account number, checked by the devices handler's rules."""
    try:
        username = devices.new_username(number, wanted.username or None, wanted.password or None)
    except Invalid as bad:
        raise _device_refusal(bad) from None
    return username


async def _first_device(
    session: AsyncSession, ctx: Context, account: Account, wanted: DeviceWanted
) -> devices.DeviceMade:
    """The account's first SIP device (extension 100), in the account's transaction."""
    username = device_username(account.number, wanted)
    if await session.scalar(select(SipDevice.id).where(SipDevice.username == username)):
        raise Invalid(
            f"There is already a SIP device {username}.", {"sip-username": "already taken"}
        )
    password = wanted.password or devices.new_password(ctx, username)
    device = SipDevice(
        account_id=account.id,
        username=username,
        extension=devices.FIRST_EXTENSION,
        password_sealed=seal(ctx.settings, password),
    )
    await devices.store_new_device(session, ctx, device)
    return devices.made(ctx, device, account, password, given=bool(wanted.password))


# --- new ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewCustomer:
    """What `new` takes: field text by key (see LABELS), the first device if wanted."""

    values: Mapping[str, str | None]
    device: DeviceWanted | None = None
    reseller: str | None = None
    role: str = Role.CUSTOMER.value


@dataclass(frozen=True)
class CustomerMade:
    number: str
    company: str
    reseller: str | None
    generated_number: bool
    role: str
    device: devices.DeviceMade | None = None

    def reply(self, *, show_password: bool) -> Reply:
        under = f" under reseller {self.reseller}" if self.reseller else ""
        what = "Reseller" if self.role == Role.RESELLER.value else "Customer"
        fields: list[tuple[str, str]] = [("Account number", self.number)]
        if self.generated_number:
            fields[0] = ("Account number", f"{self.number} (generated: 10 random digits)")
        text = f"Everything about it: `/c2 customer show {self.number}`."
        if self.device is not None:
            made = self.device.reply(show_password=show_password)
            fields += [("SIP device", self.device.username), *made.fields[1:]]
        return Reply(
            title=f"{what} {self.number} ({self.company}) added{under}.",
            fields=tuple(fields),
            text=text,
        )


async def new_customer(ctx: Context, request: NewCustomer) -> CustomerMade:
    """Make one account with the platform's fields (and its first device), in one transaction."""
    check_may_add_accounts(ctx)
    role = request.role.lower()
    if role not in ROLES:
        raise Invalid("role is customer or reseller.", {"role": "customer or reseller"})
    if role == Role.RESELLER.value and not ctx.actor.is_staff:
        raise NotAllowed("Only support staff make resellers.")
    checked = check_values(request.values, new=True)
    if checked.errors:
        raise _refusal(checked, "The customer was not added")
    given_number = (request.values.get("number") or "").strip()
    number = given_number or _generated_number(ctx, "new")
    if request.device is not None:
        device_username(number, request.device)  # refused here, before the password is hashed
    hashed = await asyncio.to_thread(hash_password, checked.password) if checked.password else None
    columns = dict(checked.columns)
    company, email = columns.pop("company"), columns.pop("email")
    timezone = columns.pop("timezone", "Europe/Amsterdam")
    async with ctx.sessions.begin() as session:
        if not given_number:
            number = await _free_number(session, ctx, number)
        account = await insert_account(
            session,
            ctx,
            NewAccount(
                number=number,
                company=company,
                email=email,
                reseller=request.reseller or None,
                timezone=timezone,
                rate_group=checked.rate_group or None,
            ),
            action="customer.new",
            password_hash=hashed,
            **columns,
        )
        made = None
        if request.device is not None:
            made = await _first_device(session, ctx, account, request.device)
        if role == Role.RESELLER.value:
            await _reseller_person(session, ctx, account)
        reseller = account.reseller.number if account.reseller else None
    return CustomerMade(number, company, reseller, not given_number, role, made)


async def _free_number(session: AsyncSession, ctx: Context, number: str) -> str:
    """A generated number no account has (a replayed request finds its own: `insert_account`
    then says it exists)."""
    for attempt in range(10):
        taken = await session.scalar(select(Account.id).where(Account.number == number))
        if taken is None or ctx.request_ref is not None:
            return number
        number = _generated_number(ctx, f"retry {attempt}")
    raise Refusal("Could not find a free account number; give one with number:.")


async def _reseller_person(session: AsyncSession, ctx: Context, account: Account) -> None:
    """A reseller's email becomes a c2bot user with the reseller role on it (by mail at once;
    in Slack once staff link the Slack user: `c2 user link`)."""
    email = account.email
    known = await session.scalar(
        select(Person.id).where(func.lower(Person.email) == email).limit(1)
    )
    if known is not None:
        raise Invalid(
            f"{email} is already a c2bot user; give the reseller another address, or make it "
            "with role:customer and link the person with `c2 user link`.",
            {"email": "already a c2bot user"},
        )
    person = Person(email=email, role=Role.RESELLER, account_id=account.id, name=account.company)
    session.add(person)
    await session.flush()
    audit.record(session, ctx, "user.link", "person", person.id, account.id, role="reseller")


# --- edit, suspend -----------------------------------------------------------------------------


async def _seller_above(session: AsyncSession, ctx: Context, account: Account) -> bool:
    """Whether the actor sells to this account (staff: every account; a reseller: its
    customers, not itself)."""
    await check_account(session, ctx.actor, account.id)
    return ctx.actor.is_staff or account.id != ctx.actor.account_id


async def edit_customer(ctx: Context, number: str, values: Mapping[str, str | None]) -> Reply:
    """Change the given fields; the seller above changes any, the account's own people only
    their contact fields and password."""
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        raise Invalid(
            f"Say what to change, e.g. `c2 customer edit {number} phone:+31201234567`.",
            {"number": "nothing to change"},
        )
    fixed = sorted(set(given) - EDITABLE)
    if fixed:
        raise Invalid(
            f"{', '.join(LABELS.get(k, k) for k in fixed)} cannot be changed here "
            "(a device: `/c2 device`; a suspension: `/c2 customer suspend`).",
            {k: "cannot be changed" for k in fixed},
        )
    checked = check_values(given, new=False)
    if checked.errors:
        raise _refusal(checked, f"Account {number} was not changed")
    hashed = await asyncio.to_thread(hash_password, checked.password) if checked.password else None
    async with ctx.sessions.begin() as session:
        account = await account_by_number(session, number)
        if not await _seller_above(session, ctx, account):
            sellers = sorted(set(given) - CONTACT_KEYS)
            if sellers:
                words = ", ".join(LABELS[k] for k in sellers)
                raise NotAllowed(
                    f"{words} of account {number} are set by its seller; you may change its "
                    "contact fields and password."
                )
        if "email" in checked.columns and checked.columns["email"] != account.email:
            await check_address_is_free(session, ctx, account, checked.columns["email"])
        changed: dict[str, Any] = {}
        for column, value in checked.columns.items():
            if getattr(account, column) != value:
                changed[column] = value
                setattr(account, column, value)
        if checked.rate_group is not None:
            group = await rate_group_for(session, checked.rate_group or None, account.reseller)
            group_id = group.id if group else None
            if group_id != account.rate_group_id:
                account.rate_group_id = group_id
                changed["rate_group"] = group.name if group else None
        if hashed is not None:
            account.password_hash = hashed
            changed["password"] = CHANGED
        if not changed:
            return Reply(title=f"Nothing to change on account {number}.")
        audit.record(
            session,
            ctx,
            "customer.edit",
            "account",
            account.number,
            account.id,
            **{k: (str(v) if k != "password" else CHANGED) for k, v in changed.items()},
        )
    words = ", ".join(_WORDS.get(c, c.replace("_", " ")) for c in changed)
    return Reply(title=f"Account {number}: {words} changed.")


CHANGED = "changed"  # what the audit log says of a password: never the password
LIST_COLUMNS = (
    *("Account", "Company", "Name", "Status", "Billing", "Balance", "Credit", "Rate group"),
    "Reseller",
)
_WORDS = {"zip_code": "zip/postal code", "max_channels": "concurrent calls", "cps": "CPS"}


async def set_suspended(ctx: Context, number: str, suspended: bool) -> Reply:
    """Suspend (outbound calls refused) or put back in service; for the seller above."""
    status = AccountStatus.SUSPENDED.value if suspended else AccountStatus.ACTIVE.value
    verb = "suspend" if suspended else "unsuspend"
    async with ctx.sessions.begin() as session:
        account = await account_by_number(session, number)
        if ctx.actor.role is Role.CUSTOMER or not await _seller_above(session, ctx, account):
            raise NotAllowed(
                f"Only the seller of account {number} (its reseller, or support) can {verb} it."
            )
        if account.status == status:
            return Reply(title=f"Account {number} is {status} already.")
        account.status = status
        audit.record(session, ctx, f"customer.{verb}", "account", number, account.id)
    if suspended:
        return Reply(title=f"Account {number} is suspended: its outbound calls are refused.")
    return Reply(title=f"Account {number} is active again.")


# --- list, show --------------------------------------------------------------------------------


def money(value: Decimal) -> str:
    """At least two decimals, more only when they are there: 12.50, 0.012345."""
    text = f"{value.normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _name(account: Account) -> str:
    return " ".join(f"{account.first_name} {account.last_name}".split()) or "-"


_ORDER = {
    "number": (Account.number,),
    "company": (Account.company, Account.number),
    "balance": (Account.balance.desc(), Account.number),
    "created": (Account.created_at.desc(), Account.id.desc()),
    "status": (Account.status, Account.number),
}


async def list_customers(
    ctx: Context,
    page: int = 1,
    sort: str = "number",
    status: str | None = None,
    reseller: str | None = None,
) -> Reply:
    """The accounts the actor may see, a page at a time, with balance and credit."""
    if sort not in _ORDER:
        raise Invalid(f"sort is one of {', '.join(SORTS)}.", {"sort": "unknown"})
    page = max(page, 1)
    async with ctx.sessions() as session:
        stmt = select(Account)
        stmt = await scoped(session, ctx, stmt, Account.id, None)
        if status:
            stmt = stmt.where(Account.status == status)
        if reseller:
            parent = await account_by_number(session, reseller)
            await check_account(session, ctx.actor, parent.id)
            stmt = stmt.where(Account.reseller_id == parent.id)
        total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows: list[Account] = list(
            await session.scalars(
                stmt.order_by(*_ORDER[sort]).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
            )
        )
        groups = await _group_names(session, {a.rate_group_id for a in rows})
    if not rows:
        return Reply(title="No accounts." if page == 1 else f"No accounts on page {page}.")
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    table = Table(
        LIST_COLUMNS,
        tuple(
            (
                a.number,
                a.company,
                _name(a),
                a.status,
                a.billing,
                money(a.balance),
                money(a.credit_limit),
                groups.get(a.rate_group_id, "-"),
                a.reseller.number if a.reseller else "-",
            )
            for a in rows
        ),
    )
    more = f" Next: `c2 customer list page:{page + 1} sort:{sort}`." if page < pages else ""
    return Reply(
        title=f"{total} account(s), page {page} of {pages}, by {sort}",
        text=more.strip(),
        table=table,
    )


async def _group_names(session: AsyncSession, ids: set[int | None]) -> dict[int | None, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(
        select(RateGroup.id, RateGroup.name).where(RateGroup.id.in_(wanted))
    )
    return {row.id: row.name for row in rows}


async def show_customer(ctx: Context, number: str) -> Reply:
    """Every field of an account the actor may see, with what it may spend and its devices."""
    async with ctx.sessions() as session:
        account = await account_by_number(session, number)
        try:
            await check_account(session, ctx.actor, account.id)
        except NotAllowed:
            raise NotFound(f"There is no account {number} among those you may see.") from None
        group = (
            await session.get(RateGroup, account.rate_group_id) if account.rate_group_id else None
        )
        device_count = await session.scalar(
            select(func.count()).select_from(SipDevice).where(SipDevice.account_id == account.id)
        )
        customers = await session.scalar(
            select(func.count()).select_from(Account).where(Account.reseller_id == account.id)
        )
    spendable = account.balance + (
        account.credit_limit if account.billing == Billing.POSTPAID.value else Decimal(0)
    )
    unlimited = "no limit"
    fields = (
        ("Company", account.company),
        ("Name", _name(account)),
        ("Status", account.status),
        ("Email", account.email),
        ("Phone", account.phone or "-"),
        ("Mobile", account.mobile or "-"),
        ("Address", account.address or "-"),
        ("City", account.city or "-"),
        ("Province/State", account.province or "-"),
        ("Zip/Postal code", account.zip_code or "-"),
        ("Time zone", account.timezone),
        ("Reseller", account.reseller.number if account.reseller else "- (the carrier's)"),
        ("Rate group", group.name if group else "none"),
        ("Billing", account.billing),
        ("Balance", money(account.balance)),
        ("Credit limit", money(account.credit_limit)),
        ("May spend", money(spendable)),
        ("Concurrent calls", str(account.max_channels or unlimited)),
        ("CPS", str(account.cps or unlimited)),
        ("Number translation", account.number_translation or "none"),
        ("Out caller-id translation", account.out_callerid_translation or "none"),
        ("In caller-id translation", account.in_callerid_translation or "none"),
        ("Password", "set" if account.password_hash else "not set"),
        ("SIP devices", str(device_count or 0)),
        ("Customers", str(customers or 0)),
        ("Created", f"{account.created_at:%Y-%m-%d %H:%M} UTC"),
    )
    return Reply(title=f"Account {account.number}", fields=fields)


# --- import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class ImportOutcome:
    rows: int
    made: tuple[CustomerMade, ...] = ()
    problems: tuple[tuple[int, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def reply(self) -> Reply:
        if self.problems:
            bad = len({line for line, _ in self.problems})
            return Reply(
                title=f"Nothing was imported: {bad} of {self.rows} row(s) have problems. "
                "Fix them and send the whole file again (all rows go in together, or none).",
                table=Table(
                    ("Line", "Problem"), tuple((str(n) if n else "-", p) for n, p in self.problems)
                ),
            )
        rows = tuple(
            (
                m.number,
                m.company,
                m.reseller or "-",
                m.device.username if m.device else "-",
            )
            for m in self.made
        )
        return Reply(
            title=f"Imported {len(self.made)} customer(s) in one transaction.",
            text="SIP passwords that were generated: `/c2 device password NAME` "
            "(only you see the answer).",
            table=Table(("Account", "Company", "Reseller", "SIP device"), rows),
        )


def read_csv(data: bytes) -> tuple[list[Row], list[tuple[int, str]]]:
    """The rows by key, or the header's problems (line 1)."""
    if len(data) > MAX_IMPORT_BYTES:
        return [], [(0, f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [(0, "The file is not UTF-8 text; save it as CSV (UTF-8).")]
    try:
        sample = text[:4096]
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample else csv.excel
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        return [], [(1, f"The file has no header line; the columns are: {GUIDE_HEADER}.")]
    keys: list[str] = []
    problems: list[tuple[int, str]] = []
    for cell in header:
        name = " ".join(cell.strip().lower().split())
        key = CSV_COLUMNS.get(name)
        if key is None:
            problems.append(
                (1, f"Unknown column {cell.strip()!r}; the columns are: {GUIDE_HEADER}")
            )
        elif key in keys:
            problems.append((1, f"Column {cell.strip()!r} is there twice."))
        keys.append(key or "")
    missing = [k for k in CSV_REQUIRED if k not in keys]
    if missing:
        names = ", ".join(LABELS[k] for k in missing)
        problems.append((1, f"The column {names} is needed."))
    if problems:
        return [], problems
    rows: list[Row] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(keys):
                problems.append(
                    (reader.line_num, f"{len(cells)} cells, but the header has {len(keys)}.")
                )
                continue
            values = {key: cells[i] if i < len(cells) else "" for i, key in enumerate(keys)}
            rows.append(Row(reader.line_num, values))
    except csv.Error as error:
        problems.append((reader.line_num, f"The CSV cannot be read here: {error}."))
    if len(rows) > MAX_IMPORT_ROWS:
        problems.append((0, f"At most {MAX_IMPORT_ROWS} rows a file."))
    if not rows and not problems:
        problems.append((2, "The file has a header but no customers."))
    return rows, problems


@dataclass
class _Plan:
    """One good row, ready to be written."""

    row: Row
    number: str
    generated: bool
    checked: Checked
    device: DeviceWanted | None
    username: str | None
    parent: str | None
    hashed: str | None = None


async def import_customers(ctx: Context, data: bytes) -> ImportOutcome:
    """Check the whole file first; write every row in one transaction, or none of them."""
    check_may_add_accounts(ctx)
    rows, problems = read_csv(data)
    if problems:
        return ImportOutcome(len(rows), problems=tuple(problems))
    plans: list[_Plan] = []
    numbers: dict[str, int] = {}
    usernames: dict[str, int] = {}
    for row in rows:
        plan, reasons = _plan_row(ctx, row)
        first = numbers.setdefault(plan.number.lower(), row.line)
        if first != row.line:
            reasons.insert(0, f"Account Number {plan.number} is also on line {first}")
        if plan.username:
            other = usernames.setdefault(plan.username.lower(), row.line)
            if other != row.line:
                reasons.append(f"SIP Username {plan.username} is also on line {other}")
        plans.append(plan)
        problems += [(row.line, reason) for reason in reasons]
    async with ctx.sessions() as session:
        problems += await _against_database(session, ctx, plans)
    if problems:
        ordered = sorted(problems, key=lambda problem: problem[0])  # stable: reasons in order
        return ImportOutcome(len(rows), problems=tuple(ordered))
    await _hash_all(plans)
    made: list[CustomerMade] = []
    try:
        async with ctx.sessions.begin() as session:
            for plan in plans:
                made.append(await _write(session, ctx, plan))
    except Invalid as refusal:  # a race with another change since the check: nothing written
        line = plans[len(made)].row.line if len(made) < len(plans) else 0
        return ImportOutcome(len(rows), problems=((line, refusal.message),))
    return ImportOutcome(len(rows), made=tuple(made))


def _plan_row(ctx: Context, row: Row) -> tuple[_Plan, list[str]]:
    values = dict(row.values)
    parent = values.pop("reseller", "").strip() or None
    sip_user = values.pop("sip-username", "").strip()
    sip_password = values.pop("sip-password", "").strip()
    checked = check_values(values, new=True)
    reasons = [f"{_column(k)}: {v}" for k, v in checked.errors.items()]
    given = values.get("number", "").strip()
    number = given or _generated_number(ctx, f"line {row.line}")
    device = DeviceWanted(sip_user, sip_password) if sip_user or sip_password else None
    username = None
    if device is not None:
        try:
            username = device_username(number, device)
        except Invalid as bad:
            reasons += [f"{_column(k)}: {v}" for k, v in bad.fields.items()] or [bad.message]
    plan = _Plan(row, number, not given, checked, device, username, parent)
    return plan, reasons


def _column(key: str) -> str:
    """A field by its CSV header (as the guide spells it)."""
    return next((name for name in CSV_HEADERS if CSV_COLUMNS[name.lower()] == key), LABELS[key])


async def _against_database(
    session: AsyncSession, ctx: Context, plans: Sequence[_Plan]
) -> list[tuple[int, str]]:
    """Numbers and SIP user names already taken; parents and rate groups not the importer's."""
    problems: list[tuple[int, str]] = []
    taken = {
        n.lower()
        for n in await session.scalars(
            select(Account.number).where(Account.number.in_([p.number for p in plans]))
        )
    }
    names = [p.username for p in plans if p.username]
    used = (
        {
            u.lower()
            for u in await session.scalars(
                select(SipDevice.username).where(SipDevice.username.in_(names))
            )
        }
        if names
        else set()
    )
    claimed = await _claimed_emails(session, ctx, plans)
    parents: dict[str | None, Account | Refusal | None] = {}
    groups: dict[tuple[str, str | None], Refusal | None] = {}
    for plan in plans:
        line = plan.row.line
        if plan.number.lower() in taken:
            problems.append((line, f"Account Number {plan.number} already exists"))
        email = plan.checked.columns.get("email")
        if email in claimed:
            problems.append((line, f"Email {email} already belongs to another account"))
        if plan.username and plan.username.lower() in used:
            problems.append((line, f"SIP Username {plan.username} is already a SIP device"))
        if plan.parent not in parents:
            try:
                parents[plan.parent] = await parent_for(session, ctx, plan.parent)
            except Refusal as refusal:
                parents[plan.parent] = refusal
        parent = parents[plan.parent]
        if isinstance(parent, Refusal):
            problems.append((line, f"Reseller {plan.parent}: {parent.message}"))
            continue
        name = plan.checked.rate_group
        if name:
            key = (name, parent.number if parent else None)
            if key not in groups:
                try:
                    await rate_group_for(session, name, parent)
                    groups[key] = None
                except Refusal as refusal:
                    groups[key] = refusal
            found = groups[key]
            if found is not None:
                problems.append((line, f"Rate Group: {found.message}"))
    return problems


async def _claimed_emails(session: AsyncSession, ctx: Context, plans: Sequence[_Plan]) -> set[str]:
    """Addresses that already speak for an account: only staff give them to another one
    (`accounts.check_address_is_free`)."""
    emails = {p.checked.columns["email"] for p in plans if "email" in p.checked.columns}
    if ctx.actor.is_staff or not emails:
        return set()
    contacts = await session.scalars(
        select(func.lower(Contact.email)).where(func.lower(Contact.email).in_(emails))
    )
    people = await session.scalars(
        select(func.lower(Person.email)).where(func.lower(Person.email).in_(emails))
    )
    return {*contacts, *people}


async def _hash_all(plans: Sequence[_Plan]) -> None:
    """Hash the rows' passwords (scrypt: tens of milliseconds each) off the event loop."""
    wanted = [p for p in plans if p.checked.password]
    hashes = await asyncio.gather(
        *(asyncio.to_thread(hash_password, p.checked.password or "") for p in wanted)
    )
    for plan, hashed in zip(wanted, hashes, strict=True):
        plan.hashed = hashed


async def _write(session: AsyncSession, ctx: Context, plan: _Plan) -> CustomerMade:
    columns = dict(plan.checked.columns)
    company, email = columns.pop("company"), columns.pop("email")
    timezone = columns.pop("timezone", "Europe/Amsterdam")
    account = await insert_account(
        session,
        ctx,
        NewAccount(
            number=plan.number,
            company=company,
            email=email,
            reseller=plan.parent,
            timezone=timezone,
            rate_group=plan.checked.rate_group or None,
        ),
        action="customer.import",
        password_hash=plan.hashed,
        **columns,
    )
    made = await _first_device(session, ctx, account, plan.device) if plan.device else None
    reseller = account.reseller.number if account.reseller else None
    return CustomerMade(plan.number, company, reseller, plan.generated, "customer", made)
