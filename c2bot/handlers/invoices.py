"""Monthly invoices: rated calls and recurring fees, with a PDF and the month's CDR CSV.

Who invoices whom follows the account tree (DESIGN.md "Who is who"):
- an account with a reseller (a reseller's customer) is invoiced by its reseller: its own calls
  at `debit` (the price its reseller set), its own numbers' fees and its orders' fees. The
  invoice is the reseller's (its company and address on top, numbered in the reseller's own
  sequence, `R100-2026-000001`).
- an account without a reseller (a reseller, or the carrier's own customer) is invoiced by the
  carrier (`C2_INVOICE_ISSUER`, numbered `INV-2026-000001`): its own calls and its customers'
  calls at `carrier_debit` (what the carrier charges for them), and the fees of its own and its
  customers' numbers and orders: fees are set by the carrier's staff, so a reseller passes them
  on at the same price.

The month is the invoiced account's calendar month in its own time zone (a December invoice in
Amsterdam counts the calls from 1 December 00:00 Amsterdam time). Call totals are SQL sums over
`call_records` per destination code (the account-and-start index), never rows in Python; numbers
are billed their monthly fee for every month they exist in (no part months) and their setup fee
in the month they were added; delivered orders other than new numbers (those are billed through
the numbers themselves) bill their setup fee in the month of delivery and their monthly fee from
then on. Every line is rounded half up to cents, VAT is the rounded subtotal times
`C2_VAT_RATE` rounded half up to cents, the total their sum. An account with nothing to bill gets
no invoice. Generating a month twice changes nothing: (account, month) is unique and an invoice,
once made, is kept as it is (its PDF is what was sent; re-rating later does not change it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, func, select, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.config.settings import Settings
from c2bot.handlers import reports
from c2bot.handlers.accounts import account_by_number, scoped
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.invoicepdf import (
    InvoiceDocument,
    PdfLine,
    invoice_filename,
    invoice_pdf,
    percent,
)
from c2bot.handlers.orders import OrderKind, money
from c2bot.handlers.permissions import check_staff, may_act_on
from c2bot.handlers.replies import Reply, ReplyFile, Table
from c2bot.storage.models import (
    Account,
    CallRecord,
    Did,
    Fixed,
    Invoice,
    InvoiceLine,
    Order,
    OrderStatus,
)

CENT = Decimal("0.01")
CARRIER_PREFIX = "INV"
NUMBER_ATTEMPTS = 5
LIST_LIMIT = 200
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH.match(text.strip())
        if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 2000:
            raise Invalid(
                f"month: give a month as YYYY-MM, e.g. 2026-11 (got {text!r}).",
                {"month": "a month YYYY-MM"},
            )
        return cls(int(match[1]), int(match[2]))

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def next_first_day(self) -> date:
        return date(self.year + self.month // 12, self.month % 12 + 1, 1)

    @property
    def label(self) -> str:
        return f"{self.first_day:%B %Y}"

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) of the month in `zone`, as UTC moments."""
        start = datetime.combine(self.first_day, time(), zone).astimezone(UTC)
        end = datetime.combine(self.next_first_day, time(), zone).astimezone(UTC)
        return start, end


def zone_of(account: Account) -> ZoneInfo:
    try:
        return ZoneInfo(account.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# --- what an invoice says ---------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    kind: str  # calls | did | setup | order
    description: str
    quantity: Decimal
    unit_price: Decimal  # 0 on call lines: each call is priced by its own rate
    amount: Decimal  # cents


def fee_line(kind: str, description: str, quantity: int, unit_price: Decimal) -> Line:
    return Line(kind, description, Decimal(quantity), unit_price, cents(quantity * unit_price))


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    vat: Decimal
    total: Decimal


def totals(lines: Sequence[Line], vat_rate: Decimal) -> Totals:
    """Lines are in cents already; VAT is rounded half up to cents."""
    subtotal = sum((line.amount for line in lines), Decimal(0))
    vat = cents(subtotal * vat_rate / 100)
    return Totals(subtotal, vat, subtotal + vat)


@dataclass(frozen=True)
class Issuer:
    """Who sends the invoice: the carrier, or the invoiced account's reseller."""

    prefix: str  # of the invoice numbers: INV, or the reseller's account number
    lines: tuple[str, ...]  # name, then address
    reseller_id: int | None


def address_block(account: Account) -> tuple[str, ...]:
    """Company, attention, street, postcode and city, province, email (empty ones left out)."""
    attention = " ".join(p for p in (account.first_name, account.last_name) if p)
    place = " ".join(p for p in (account.zip_code, account.city) if p)
    lines = (
        account.company,
        f"Attn. {attention}" if attention else "",
        account.address,
        place,
        account.province,
        account.email,
    )
    return tuple(line for line in lines if line)


async def issuer_of(session: AsyncSession, settings: Settings, account: Account) -> Issuer:
    if account.reseller_id is None:
        # lines split by a newline (or the two characters \n, as typed in a .env), or ";"
        parts = re.split(r"[;\n]|\\n", settings.invoice_issuer)
        return Issuer(CARRIER_PREFIX, tuple(p.strip() for p in parts if p.strip()), None)
    reseller = await session.get(Account, account.reseller_id)
    if reseller is None:
        raise NotFound(f"Account {account.number}'s reseller no longer exists.")
    prefix = re.sub(r"[^A-Za-z0-9]", "", reseller.number).upper()[:20] or f"R{reseller.id}"
    return Issuer(prefix, address_block(reseller), reseller.id)


@dataclass(frozen=True)
class Billed:
    """The accounts whose calls and fees one invoice covers, and at which price."""

    account_ids: tuple[int, ...]
    price: Any  # CallRecord.debit or CallRecord.carrier_debit


async def billed_for(session: AsyncSession, account: Account) -> Billed:
    if account.reseller_id is not None:
        return Billed((account.id,), CallRecord.debit)
    customers = await session.scalars(
        select(Account.id).where(Account.reseller_id == account.id).order_by(Account.id)
    )
    return Billed((account.id, *customers), CallRecord.carrier_debit)


async def call_lines(
    session: AsyncSession, billed: Billed, start: datetime, end: datetime
) -> list[Line]:
    """One line per destination code: the calls' summed price (SQL), their count and time."""
    answered = func.sum(case((CallRecord.billsec > 0, 1), else_=0))
    stmt = (
        select(
            CallRecord.code,
            CallRecord.destination,
            answered,
            func.sum(CallRecord.billsec),
            type_coerce(func.sum(billed.price), Fixed),
        )
        .where(
            CallRecord.account_id.in_(billed.account_ids),
            CallRecord.started_at >= start,
            CallRecord.started_at < end,
        )
        .group_by(CallRecord.code, CallRecord.destination)
        .order_by(CallRecord.code, CallRecord.destination)
    )
    lines = []
    for code, destination, calls, seconds, amount in await session.execute(stmt):
        total = cents(amount or Decimal(0))
        if not total:
            continue
        where = f"{destination} ({code})" if destination and code else destination or code
        minutes, rest = divmod(int(seconds or 0), 60)
        description = f"Calls to {where or 'unknown destinations'}: {minutes}:{rest:02d}"
        lines.append(Line("calls", description, Decimal(int(calls or 0)), Decimal(0), total))
    return lines


async def number_lines(
    session: AsyncSession, billed: Billed, month: Month, start: datetime, end: datetime
) -> list[Line]:
    """Numbers' monthly fees (numbers there by the month's end), setup fees of those added in
    the month; numbers of the same fee share a line."""
    mine = Did.account_id.in_(billed.account_ids)
    monthly = await session.execute(
        select(Did.monthly_fee, func.count())
        .where(mine, Did.created_at < end, Did.monthly_fee != Decimal(0))
        .group_by(Did.monthly_fee)
        .order_by(Did.monthly_fee)
    )
    lines = [
        fee_line("did", f"Phone numbers, monthly fee {month.label}", count, fee)
        for fee, count in monthly
    ]
    setup = await session.execute(
        select(Did.setup_fee, func.count())
        .where(mine, Did.created_at >= start, Did.created_at < end, Did.setup_fee != Decimal(0))
        .group_by(Did.setup_fee)
        .order_by(Did.setup_fee)
    )
    lines += [
        fee_line("setup", f"Phone numbers added in {month.label}, setup fee", count, fee)
        for fee, count in setup
    ]
    return lines


async def order_lines(
    session: AsyncSession, billed: Billed, month: Month, start: datetime, end: datetime
) -> list[Line]:
    delivered = await session.scalars(
        select(Order)
        .where(
            Order.account_id.in_(billed.account_ids),
            Order.status == OrderStatus.DELIVERED,
            Order.kind != OrderKind.DID.value,
            Order.delivered_at < end,
        )
        .order_by(Order.id)
    )
    lines = []
    for order in delivered:
        what = f"Order {order.reference}: {order.description}"
        delivered_at = order.delivered_at
        if order.setup_fee and delivered_at is not None and delivered_at >= start:
            lines.append(fee_line("order", f"{what}, setup fee", 1, order.setup_fee))
        if order.monthly_fee:
            lines.append(
                fee_line("order", f"{what}, monthly fee {month.label}", 1, order.monthly_fee)
            )
    return lines


# --- making them ------------------------------------------------------------------------------


@dataclass
class Outcome:
    made: list[str]
    existing: list[str]
    running: list[str]  # accounts whose month is not over yet in their time zone
    nothing: int = 0

    def reply(self, month: Month) -> Reply:
        parts = []
        if self.made:
            parts.append(f"{len(self.made)} made")
        if self.existing:
            parts.append(f"{len(self.existing)} made before, left as they are")
        if self.nothing:
            parts.append(f"{self.nothing} account(s) had nothing to invoice")
        if self.running:
            parts.append(f"{len(self.running)} account(s) are still in that month")
        summary = "; ".join(parts) or "no accounts"
        if not self.made:
            return Reply(
                title=f"Invoices {month.key}: nothing changed ({summary}).",
                text=_names(self),
            )
        return Reply(title=f"Invoices {month.key}: {summary}.", text=_names(self))


def _names(outcome: Outcome) -> str:
    lines = []
    if outcome.made:
        lines.append("Made: " + ", ".join(outcome.made))
    if outcome.running:
        lines.append("Not over yet for account(s): " + ", ".join(outcome.running))
    return "\n".join(lines)


async def generate(ctx: Context, month_text: str, account_number: str | None = None) -> Reply:
    """`c2bot invoices generate --month YYYY-MM [--account N]`: every account's invoice of the
    month that has none yet (staff). Each account is its own transaction."""
    check_staff(ctx.actor, "make invoices")
    month = Month.parse(month_text)
    async with ctx.sessions() as session:
        if account_number:
            ids = [(await account_by_number(session, account_number)).id]
        else:
            ids = list(await session.scalars(select(Account.id).order_by(Account.number)))
    outcome = Outcome([], [], [])
    for account_id in ids:
        kind, label = await invoice_account(ctx, account_id, month)
        if kind == "made":
            outcome.made.append(label)
        elif kind == "existing":
            outcome.existing.append(label)
        elif kind == "running":
            outcome.running.append(label)
        else:
            outcome.nothing += 1
    return outcome.reply(month)


async def invoice_account(ctx: Context, account_id: int, month: Month) -> tuple[str, str]:
    """("made", number) | ("existing", number) | ("running", account) | ("nothing", account).

    The number is the issuer's next; two runs at once collide on the unique number or on
    (account, month): the loser looks again and finds the invoice, or takes the next number."""
    for _ in range(NUMBER_ATTEMPTS):
        try:
            return await _invoice_once(ctx, account_id, month)
        except IntegrityError:
            async with ctx.sessions() as session:
                number = await _existing(session, account_id, month)
            if number is not None:
                return "existing", number
    raise Invalid(f"Could not number the invoice of account id {account_id}; run it again.")


async def _existing(session: AsyncSession, account_id: int, month: Month) -> str | None:
    return await session.scalar(
        select(Invoice.number).where(Invoice.account_id == account_id, Invoice.month == month.key)
    )


async def _invoice_once(ctx: Context, account_id: int, month: Month) -> tuple[str, str]:
    async with ctx.sessions.begin() as session:
        account = await session.get(Account, account_id)
        if account is None:
            raise NotFound(f"There is no account id {account_id}.")
        number = await _existing(session, account_id, month)
        if number is not None:
            return "existing", number
        zone = zone_of(account)
        start, end = month.bounds(zone)
        if end > ctx.clock():
            return "running", account.number
        billed = await billed_for(session, account)
        lines = [
            *await call_lines(session, billed, start, end),
            *await number_lines(session, billed, month, start, end),
            *await order_lines(session, billed, month, start, end),
        ]
        if not lines:
            return "nothing", account.number
        issuer = await issuer_of(session, ctx.settings, account)
        issued_on = ctx.clock().astimezone(zone).date()
        number = await next_number(session, issuer.prefix, issued_on.year)
        figures = totals(lines, ctx.settings.vat_rate)
        view = reports.View.CARRIER if issuer.reseller_id is None else reports.View.CUSTOMER
        calls_csv = await reports.cdr_csv(session, billed.account_ids, start, end, zone.key, view)
        last_day = month.next_first_day.toordinal() - 1
        period = (
            f"{month.label} ({month.first_day:%Y-%m-%d} to "
            f"{date.fromordinal(last_day):%Y-%m-%d}, {zone.key})"
        )
        currency = ctx.settings.currency
        document = InvoiceDocument(
            number=number,
            issued_on=issued_on,
            period=period,
            account_number=account.number,
            issuer=issuer.lines,
            customer=address_block(account),
            lines=tuple(_pdf_line(line, currency) for line in lines),
            subtotal=money(figures.subtotal, currency),
            vat_label=f"VAT {percent(ctx.settings.vat_rate)}%",
            vat=money(figures.vat, currency),
            total=money(figures.total, currency),
        )
        pdf = await asyncio.to_thread(invoice_pdf, document)
        invoice = Invoice(
            number=number,
            account_id=account.id,
            month=month.key,
            issued_on=issued_on,
            currency=currency,
            subtotal=figures.subtotal,
            vat_rate=ctx.settings.vat_rate,
            vat=figures.vat,
            total=figures.total,
            pdf=pdf,
            cdr_csv=calls_csv,
            created_at=ctx.clock(),
        )
        invoice.lines = [
            InvoiceLine(
                position=i,
                kind=line.kind,
                description=line.description[:300],
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
            )
            for i, line in enumerate(lines)
        ]
        session.add(invoice)
        await session.flush()
        return "made", number


async def next_number(session: AsyncSession, prefix: str, year: int) -> str:
    """The issuer's next number of the year: `INV-2026-000124` after `INV-2026-000123`."""
    start = f"{prefix}-{year}-"
    last = await session.scalar(
        select(Invoice.number)
        .where(Invoice.number.like(f"{start}%"))
        .order_by(Invoice.number.desc())
        .limit(1)
    )
    sequence = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{start}{sequence:06d}"


def _pdf_line(line: Line, currency: str) -> PdfLine:
    return PdfLine(
        description=line.description,
        quantity=quantity_text(line),
        unit_price="" if line.kind == "calls" else money(line.unit_price, currency),
        amount=money(line.amount, currency),
    )


def quantity_text(line: Line) -> str:
    text = f"{line.quantity.normalize():f}"
    return f"{text} call(s)" if line.kind == "calls" else text


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceFilter:
    account: str | None = None
    month: str | None = None


async def list_invoices(ctx: Context, query: InvoiceFilter) -> Reply:
    """Invoices the actor may see, newest first: customers their own, resellers theirs and the
    ones they sent their customers, staff all."""
    month = Month.parse(query.month) if query.month else None
    async with ctx.sessions() as session:
        stmt = select(Invoice).order_by(Invoice.month.desc(), Invoice.id.desc()).limit(LIST_LIMIT)
        stmt = await scoped(session, ctx, stmt, Invoice.account_id, query.account)
        if month is not None:
            stmt = stmt.where(Invoice.month == month.key)
        found = list(await session.scalars(stmt))
        issuers = {i.id: await _issuer_name(session, ctx.settings, i.account) for i in found}
    if not found:
        return Reply(title="No invoices.")
    rows = tuple(
        (
            i.number,
            i.account.number,
            i.account.company,
            i.month,
            f"{i.issued_on:%Y-%m-%d}",
            money(i.total, i.currency),
            issuers[i.id],
        )
        for i in found
    )
    columns = ("Invoice", "Account", "Company", "Month", "Date", "Total", "From")
    more = f" (the newest {LIST_LIMIT})" if len(rows) == LIST_LIMIT else ""
    return Reply(title=f"{len(rows)} invoice(s){more}", table=Table(columns, rows))


async def _issuer_name(session: AsyncSession, settings: Settings, account: Account) -> str:
    issuer = await issuer_of(session, settings, account)
    return issuer.lines[0] if issuer.lines else issuer.prefix


async def show_invoice(ctx: Context, number: str) -> Reply:
    """The invoice's figures and lines, with its PDF and the month's calls as CSV."""
    wanted = number.strip()
    async with ctx.sessions() as session:
        invoice = await session.scalar(select(Invoice).where(Invoice.number == wanted))
        if invoice is None and wanted.upper() != wanted:
            invoice = await session.scalar(select(Invoice).where(Invoice.number == wanted.upper()))
        if invoice is None or not await may_act_on(session, ctx.actor, invoice.account_id):
            raise NotFound(f"There is no invoice {wanted} you may see.")
        issuer = await _issuer_name(session, ctx.settings, invoice.account)
    currency = invoice.currency
    fields = (
        ("Account", f"{invoice.account.number} {invoice.account.company}"),
        ("Month", invoice.month),
        ("Date", f"{invoice.issued_on:%Y-%m-%d}"),
        ("From", issuer),
        ("Subtotal", money(invoice.subtotal, currency)),
        (f"VAT {percent(invoice.vat_rate)}%", money(invoice.vat, currency)),
        ("Total", money(invoice.total, currency)),
    )
    rows = tuple(
        (
            line.description,
            quantity_text(
                Line(line.kind, line.description, line.quantity, line.unit_price, line.amount)
            ),
            "" if line.kind == "calls" else money(line.unit_price, currency),
            money(line.amount, currency),
        )
        for line in invoice.lines
    )
    files = (
        ReplyFile(
            invoice_filename(invoice.number),
            "application/pdf",
            invoice.pdf,
            f"Invoice {invoice.number}",
        ),
        ReplyFile(
            f"invoice-{invoice.number}-calls.csv",
            "text/csv",
            invoice.cdr_csv,
            f"Calls of invoice {invoice.number} ({invoice.month})",
        ),
    )
    return Reply(
        title=f"Invoice {invoice.number}: {money(invoice.total, currency)} for {invoice.month}",
        fields=fields,
        table=Table(("Description", "Quantity", "Unit price", "Amount"), rows),
        files=files,
    )
