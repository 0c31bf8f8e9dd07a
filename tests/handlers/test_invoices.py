"""Monthly invoices from rated calls and recurring fees: who invoices whom, the month in the
account's time zone, totals computed by hand (lines and VAT rounded half up to cents), a second
run that changes nothing, the PDF read back with pypdf, the calls' CSV parsed back, and who may
see which invoice."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pypdf
import pytest
from sqlalchemy import func, select

from c2bot.bot.services import Services
from c2bot.handlers import invoices
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.storage.models import (
    Account,
    CallRecord,
    Channel,
    Did,
    Invoice,
    Order,
    OrderStatus,
)
from tests.conftest import World

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
_CALLS = itertools.count(1)


def ctx(services: Services, actor: Actor, now: datetime = NOW) -> Context:
    return replace(services.context(actor, Channel.SHELL), clock=lambda: now)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def ids(services: Services) -> dict[str, int]:
    async with services.sessions() as session:
        return {n: i for n, i in await session.execute(select(Account.number, Account.id))}


def call(
    account: int,
    reseller: int | None,
    started: str,
    code: str,
    destination: str,
    billsec: int,
    debit: str,
    carrier_debit: str,
) -> CallRecord:
    n = next(_CALLS)
    return CallRecord(
        uuid=f"call-{n}",
        account_id=account,
        reseller_id=reseller,
        started_at=at(started),
        called_number=f"+{code}55501{n:02d}",
        direction="outbound",
        call_type="STANDARD",
        duration=billsec + 5,
        billsec=billsec,
        hangup_cause="NORMAL_CLEARING" if billsec else "NO_ANSWER",
        hangup_cause_q850=16 if billsec else 19,
        code=code,
        destination=destination,
        debit=Decimal(debit),
        cost=Decimal(carrier_debit),
        carrier_debit=Decimal(carrier_debit),
        carrier_cost=Decimal("0.01"),
    )


AMS = "Netherlands Amsterdam"


async def november(services: Services) -> dict[str, int]:
    """Calls, numbers and an order around November 2026 (Amsterdam: 31 Oct 23:00 UTC to
    30 Nov 23:00 UTC)."""
    a = await ids(services)
    r100, r200, acme, other = a["R100"], a["R200"], a["1001"], a["2001"]
    async with services.sessions.begin() as session:
        session.add_all(
            [
                # 1001 (R100's customer): in the month
                call(acme, r100, "2026-11-10T10:00:00", "3120", AMS, 125, "0.123456", "0.100000"),
                call(acme, r100, "2026-11-15T10:00:00", "3120", AMS, 60, "0.200000", "0.150000"),
                call(acme, r100, "2026-10-31T23:30:00", "3120", AMS, 10, "0.500000", "0.400000"),
                call(
                    acme,
                    r100,
                    "2026-11-20T08:00:00",
                    "316",
                    "Netherlands mobile",
                    30,
                    "1.175000",
                    "0.800000",
                ),
                call(acme, r100, "2026-11-20T09:00:00", "316", "Netherlands mobile", 0, "0", "0"),
                # 1 December 00:30 in Amsterdam: December's
                call(acme, r100, "2026-11-30T23:30:00", "3120", AMS, 600, "9.000000", "8.000000"),
                # 31 October 23:59 in Amsterdam: October's
                call(acme, r100, "2026-10-31T22:59:00", "3120", AMS, 600, "7.000000", "6.000000"),
                # R100's own call
                call(r100, None, "2026-11-12T12:00:00", "3120", AMS, 40, "0.300000", "0.300000"),
                # 2001 (R200's customer)
                call(
                    other, r200, "2026-11-03T12:00:00", "32", "Belgium", 90, "2.000000", "1.500000"
                ),
            ]
        )
        session.add_all(
            [
                Did(
                    number="+31201234567",
                    account_id=acme,
                    created_at=at("2026-11-05T12:00:00"),
                    setup_fee=Decimal("10.00"),
                    monthly_fee=Decimal("1.25"),
                ),
                Did(
                    number="+31201234568",
                    account_id=acme,
                    created_at=at("2026-10-01T12:00:00"),
                    setup_fee=Decimal("10.00"),
                    monthly_fee=Decimal("1.25"),
                ),
                # added after the month: not billed for November
                Did(
                    number="+31201234569",
                    account_id=acme,
                    created_at=at("2026-12-01T12:00:00"),
                    setup_fee=Decimal("10.00"),
                    monthly_fee=Decimal("1.25"),
                ),
                Order(
                    reference="ORD-900001",
                    account_id=other,
                    kind="other",
                    description="Fax line installation",
                    status=OrderStatus.DELIVERED,
                    setup_fee=Decimal("25.00"),
                    monthly_fee=Decimal("5.00"),
                    created_at=at("2026-11-18T09:00:00"),
                    delivered_at=at("2026-11-20T09:00:00"),
                ),
                Order(
                    reference="ORD-900002",
                    account_id=other,
                    kind="other",
                    description="Never delivered",
                    status=OrderStatus.CANCELLED,
                    setup_fee=Decimal("99.00"),
                    monthly_fee=Decimal("99.00"),
                ),
            ]
        )
        acme_account = await session.get(Account, acme)
        assert acme_account is not None
        acme_account.first_name, acme_account.last_name = "Jan", "Jansen"
        acme_account.address, acme_account.zip_code = "Dorpsstraat 12", "1234 AB"
        acme_account.city = "Amsterdam"
        reseller = await session.get(Account, r100)
        assert reseller is not None
        reseller.address, reseller.zip_code, reseller.city = "Resellerweg 1", "3511 AA", "Utrecht"
    return a


async def invoice_of(services: Services, number: str) -> Invoice:
    async with services.sessions() as session:
        found = await session.scalar(select(Invoice).where(Invoice.number == number))
        assert found is not None, number
        return found


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


async def test_a_month_is_invoiced_along_the_account_tree(services: Services, world: World) -> None:
    await november(services)
    reply = await invoices.generate(ctx(services, world.staff), "2026-11")
    assert reply.title == "Invoices 2026-11: 4 made; 1 account(s) had nothing to invoice."
    # made in account-number order; each issuer numbers its own invoices
    assert "Made: R100-2026-000001, R200-2026-000001, INV-2026-000001, INV-2026-000002" in (
        reply.text
    )

    acme = await invoice_of(services, "R100-2026-000001")  # R100 invoices its customer 1001
    lines = [
        (line.kind, line.description, line.quantity, line.unit_price, line.amount)
        for line in acme.lines
    ]
    assert lines == [
        # 0.123456 + 0.2 + 0.5 (1 Nov 00:30 in Amsterdam) = 0.823456 -> 0.82
        ("calls", f"Calls to {AMS} (3120): 3:15", Decimal(3), Decimal(0), Decimal("0.82")),
        # the unanswered call costs nothing and is not counted
        (
            "calls",
            "Calls to Netherlands mobile (316): 0:30",
            Decimal(1),
            Decimal(0),
            Decimal("1.18"),
        ),
        (
            "did",
            "Phone numbers, monthly fee November 2026",
            Decimal(2),
            Decimal("1.25"),
            Decimal("2.50"),
        ),
        (
            "setup",
            "Phone numbers added in November 2026, setup fee",
            Decimal(1),
            Decimal("10.00"),
            Decimal("10.00"),
        ),
    ]
    # 14.50 x 21% = 3.045: half up to 3.05 (half even would give 3.04)
    assert (acme.subtotal, acme.vat, acme.total) == (
        Decimal("14.50"),
        Decimal("3.05"),
        Decimal("17.55"),
    )
    assert (acme.month, acme.currency, acme.vat_rate) == ("2026-11", "EUR", Decimal(21))
    assert acme.issued_on.isoformat() == "2026-12-06"

    # the carrier invoices R100 at carrier_debit: its own call and its customers'
    r100 = await invoice_of(services, "INV-2026-000001")
    assert [(line.description, line.amount) for line in r100.lines] == [
        (f"Calls to {AMS} (3120): 3:55", Decimal("0.95")),  # 0.1 + 0.15 + 0.4 + 0.3
        ("Calls to Netherlands mobile (316): 0:30", Decimal("0.80")),
        ("Phone numbers, monthly fee November 2026", Decimal("2.50")),
        ("Phone numbers added in November 2026, setup fee", Decimal("10.00")),
    ]
    # 14.25 x 21% = 2.9925 -> 2.99
    assert (r100.subtotal, r100.vat, r100.total) == (
        Decimal("14.25"),
        Decimal("2.99"),
        Decimal("17.24"),
    )

    # R200's customer: its call at debit and a delivered order's fees (the cancelled one: none)
    other = await invoice_of(services, "R200-2026-000001")
    assert [(line.kind, line.amount) for line in other.lines] == [
        ("calls", Decimal("2.00")),
        ("order", Decimal("25.00")),
        ("order", Decimal("5.00")),
    ]
    assert other.lines[1].description == ("Order ORD-900001: Fax line installation, setup fee")
    assert (other.subtotal, other.vat, other.total) == (
        Decimal("32.00"),
        Decimal("6.72"),
        Decimal("38.72"),
    )
    r200 = await invoice_of(services, "INV-2026-000002")
    # 31.50 x 21% = 6.615 -> 6.62
    assert (r200.subtotal, r200.vat, r200.total) == (
        Decimal("31.50"),
        Decimal("6.62"),
        Decimal("38.12"),
    )

    async with services.sessions() as session:
        beta = await session.scalar(
            select(func.count()).select_from(Invoice).join(Account).where(Account.number == "1002")
        )
    assert beta == 0  # 1002 had nothing to invoice


async def test_a_second_run_changes_nothing(services: Services, world: World) -> None:
    await november(services)
    await invoices.generate(ctx(services, world.staff), "2026-11")
    async with services.sessions() as session:
        before = [
            (i.number, i.total, i.pdf, i.cdr_csv)
            for i in await session.scalars(select(Invoice).order_by(Invoice.id))
        ]
    later = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)
    again = await invoices.generate(ctx(services, world.staff, later), "2026-11")
    assert again.title == (
        "Invoices 2026-11: nothing changed (4 made before, left as they are; "
        "1 account(s) had nothing to invoice)."
    )
    async with services.sessions() as session:
        after = [
            (i.number, i.total, i.pdf, i.cdr_csv)
            for i in await session.scalars(select(Invoice).order_by(Invoice.id))
        ]
    assert after == before
    # one account, the next month: the next number of the issuer's new year
    one = await invoices.generate(ctx(services, world.staff, later), "2026-12", "1001")
    assert one.title == "Invoices 2026-12: 1 made.", one.title
    december = await invoice_of(services, "R100-2027-000001")
    # 9.00 (the call of 1 December 00:30 Amsterdam), 3 numbers' monthly fees, 1 setup fee
    assert december.subtotal == Decimal("9.00") + Decimal("3.75") + Decimal("10.00")


async def test_a_month_not_over_and_bad_words(services: Services, world: World) -> None:
    await november(services)
    running = await invoices.generate(ctx(services, world.staff), "2026-12")
    assert running.title.startswith("Invoices 2026-12: nothing changed (")
    assert "5 account(s) are still in that month" in running.title
    with pytest.raises(Invalid, match="YYYY-MM"):
        await invoices.generate(ctx(services, world.staff), "2026-13")
    with pytest.raises(NotAllowed, match="Only support staff can make invoices"):
        await invoices.generate(ctx(services, world.reseller), "2026-11")
    with pytest.raises(NotFound, match="no account 9999"):
        await invoices.generate(ctx(services, world.staff), "2026-11", "9999")
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Invoice)) == 0


async def test_the_pdf_and_the_csv(services: Services, world: World) -> None:
    await november(services)
    await invoices.generate(ctx(services, world.staff), "2026-11")
    shown = await invoices.show_invoice(ctx(services, world.customer), "R100-2026-000001")
    pdf, calls = shown.files
    assert (pdf.filename, pdf.content_type) == ("invoice-R100-2026-000001.pdf", "application/pdf")
    assert (calls.filename, calls.content_type) == (
        "invoice-R100-2026-000001-calls.csv",
        "text/csv",
    )
    text = pdf_text(pdf.data)
    for expected in (
        "Invoice R100-2026-000001",
        "Invoice date",
        "2026-12-06",
        "November 2026 (2026-11-01 to 2026-11-30, Europe/Amsterdam)",
        "Resell BV",  # the issuer: the reseller
        "Resellerweg 1",
        "Acme BV",  # the customer's address block
        "Attn. Jan Jansen",
        "Dorpsstraat 12",
        "1234 AB Amsterdam",
        f"Calls to {AMS} (3120): 3:15",
        "Phone numbers, monthly fee November 2026",
        "EUR 1.25",
        "EUR 10.00",
        "Subtotal",
        "EUR 14.50",
        "VAT 21%",
        "EUR 3.05",
        "Total",
        "EUR 17.55",
    ):
        assert expected in text, f"{expected!r} is not in the invoice:\n{text}"
    assert "c2bot carrier" not in text
    metadata = pypdf.PdfReader(io.BytesIO(pdf.data)).metadata
    assert metadata is not None and metadata.title == "Invoice R100-2026-000001"

    rows = list(csv.reader(io.StringIO(calls.data.decode())))
    header, body, total = rows[0], rows[1:-1], rows[-1]
    assert header[:3] == ["Date", "Caller ID", "Called Number"] and "Debit" in header
    debit = header.index("Debit")
    # the month's five calls of 1001 in Amsterdam time, none of October's or December's
    assert len(body) == 5
    assert sorted(r[0] for r in body)[0] == "2026-11-01 00:30:00"
    assert sum(Decimal(r[debit]) for r in body) == Decimal("1.998456")
    assert total[0] == "Total" and Decimal(total[debit]) == Decimal("1.998456")

    carrier = await invoices.show_invoice(ctx(services, world.staff), "INV-2026-000001")
    carrier_text = pdf_text(carrier.files[0].data)
    assert "c2bot carrier" in carrier_text and "EUR 17.24" in carrier_text


async def test_who_sees_which_invoice(services: Services, world: World) -> None:
    await november(services)
    await invoices.generate(ctx(services, world.staff), "2026-11")

    def numbers(reply_rows: tuple[tuple[str, ...], ...]) -> set[str]:
        return {row[0] for row in reply_rows}

    async def listed(actor: Actor, **query: str) -> set[str]:
        reply = await invoices.list_invoices(ctx(services, actor), invoices.InvoiceFilter(**query))
        return numbers(reply.table.rows) if reply.table else set()

    assert await listed(world.customer) == {"R100-2026-000001"}
    assert await listed(world.reseller) == {"R100-2026-000001", "INV-2026-000001"}
    assert await listed(world.other) == {"R200-2026-000001"}
    assert len(await listed(world.staff)) == 4
    assert await listed(world.staff, account="R200") == {"INV-2026-000002"}
    assert await listed(world.staff, month="2026-10") == set()
    with pytest.raises(NotAllowed):
        await listed(world.customer, account="2001")
    with pytest.raises(NotAllowed):
        await listed(world.reseller, account="2001")

    for actor in (world.other, world.reseller2):
        with pytest.raises(NotFound, match="There is no invoice R100-2026-000001 you may see"):
            await invoices.show_invoice(ctx(services, actor), "R100-2026-000001")
    with pytest.raises(NotFound):
        await invoices.show_invoice(ctx(services, world.customer), "INV-2026-000001")
    seen = await invoices.show_invoice(ctx(services, world.reseller), "r100-2026-000001")
    assert seen.title == "Invoice R100-2026-000001: EUR 17.55 for 2026-11"
    assert ("From", "Resell BV") in seen.fields and ("VAT 21%", "EUR 3.05") in seen.fields
    assert seen.table is not None and seen.table.rows[0] == (
        f"Calls to {AMS} (3120): 3:15",
        "3 call(s)",
        "",
        "EUR 0.82",
    )


async def test_vat_rate_and_currency_from_settings(services: Services, world: World) -> None:
    await november(services)
    services.settings = services.settings.model_copy(
        update={
            "vat_rate": Decimal("9.5"),
            "currency": "USD",
            "invoice_issuer": "Carrier Inc\\n1 Main St;3511 AA Utrecht",
        }
    )
    await invoices.generate(ctx(services, world.staff), "2026-11", "R100")
    r100 = await invoice_of(services, "INV-2026-000001")
    # 14.25 x 9.5% = 1.35375 -> 1.35
    assert (r100.vat_rate, r100.vat, r100.total, r100.currency) == (
        Decimal("9.5"),
        Decimal("1.35"),
        Decimal("15.60"),
        "USD",
    )
    text = pdf_text(r100.pdf)
    assert "VAT 9.5%" in text and "USD 15.60" in text
    assert "Carrier Inc\n1 Main St\n3511 AA Utrecht" in text


async def test_two_runs_at_once_make_each_invoice_once(services: Services, world: World) -> None:
    await november(services)
    first, second = await asyncio.gather(
        invoices.generate(ctx(services, world.staff), "2026-11"),
        invoices.generate(ctx(services, world.staff), "2026-11"),
    )
    made = [n for reply in (first, second) for n in reply.text.partition("Made: ")[2].split(", ")]
    assert sorted(n for n in made if n) == sorted(
        ["R100-2026-000001", "R200-2026-000001", "INV-2026-000001", "INV-2026-000002"]
    )
    async with services.sessions() as session:
        numbers = sorted(await session.scalars(select(Invoice.number)))
    assert numbers == sorted(n for n in made if n)
