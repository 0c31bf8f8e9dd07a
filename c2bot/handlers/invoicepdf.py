"""An invoice as PDF: drawn with reportlab (as the letter of authorisation is) as real text, so
it can be searched, read by a screen reader and checked by a test with pypdf."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle, PropertySet, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from c2bot.handlers.loa import a4_pdf


@dataclass(frozen=True)
class PdfLine:
    description: str
    quantity: str
    unit_price: str  # "" where there is no one price (calls, each priced by its rate)
    amount: str


@dataclass(frozen=True)
class InvoiceDocument:
    """What the PDF says, every amount already written out (`EUR 12.50`)."""

    number: str
    issued_on: date
    period: str  # "November 2026 (1 to 30 November, Europe/Amsterdam)"
    account_number: str
    issuer: tuple[str, ...]  # name, then address lines
    customer: tuple[str, ...]  # company, then attention and address lines
    lines: tuple[PdfLine, ...]
    subtotal: str
    vat_label: str  # "VAT 21%"
    vat: str
    total: str


def invoice_filename(number: str) -> str:
    return f"invoice-{number}.pdf"


def percent(rate: Decimal) -> str:
    """21.000000 -> 21, 9.5 -> 9.5."""
    text = f"{rate.normalize():f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def invoice_pdf(document: InvoiceDocument) -> bytes:
    return a4_pdf(
        _story(document),
        title=f"Invoice {document.number}",
        author=document.issuer[0] if document.issuer else "c2bot",
        subject=f"Invoice {document.number} for {document.period}",
    )


def _story(document: InvoiceDocument) -> list[Flowable]:
    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    right = ParagraphStyle("right", parent=body, alignment=2)
    return [
        _block(document.issuer, body),
        Spacer(1, 8 * mm),
        Paragraph(f"Invoice {escape(document.number)}", styles["Title"]),
        _pairs(
            [
                ("Invoice number", document.number),
                ("Invoice date", f"{document.issued_on:%Y-%m-%d}"),
                ("Period", document.period),
                ("Account", document.account_number),
            ],
            body,
        ),
        Spacer(1, 6 * mm),
        Paragraph("<b>Invoice to</b>", body),
        _block(document.customer, body),
        Spacer(1, 6 * mm),
        _lines(document, body, right),
    ]


def _block(lines: tuple[str, ...], style: PropertySet) -> Paragraph:
    """An address: the name in bold, then the other lines."""
    shown = [escape(line) for line in lines if line]
    if shown:
        shown[0] = f"<b>{shown[0]}</b>"
    return Paragraph("<br/>".join(shown) or "&nbsp;", style)


def _pairs(rows: list[tuple[str, str]], style: PropertySet) -> Table:
    cells = [
        [Paragraph(f"<b>{escape(k)}</b>", style), Paragraph(escape(v), style)] for k, v in rows
    ]
    table = Table(cells, colWidths=[40 * mm, 130 * mm])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _lines(document: InvoiceDocument, style: PropertySet, right: PropertySet) -> Table:
    def cell(text: str, align: PropertySet = style, bold: bool = False) -> Paragraph:
        shown = escape(text)
        return Paragraph(f"<b>{shown}</b>" if bold else shown, align)

    rows: list[list[Paragraph | str]] = [
        [
            cell("Description", bold=True),
            cell("Quantity", right, True),
            cell("Unit price", right, True),
            cell("Amount", right, True),
        ]
    ]
    rows += [
        [
            cell(line.description),
            cell(line.quantity, right),
            cell(line.unit_price, right),
            cell(line.amount, right),
        ]
        for line in document.lines
    ]
    first_total = len(rows)
    rows += [
        ["", "", cell("Subtotal", right), cell(document.subtotal, right)],
        ["", "", cell(document.vat_label, right), cell(document.vat, right)],
        ["", "", cell("Total", right, True), cell(document.total, right, True)],
    ]
    table = Table(rows, colWidths=[88 * mm, 22 * mm, 30 * mm, 30 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                ("LINEABOVE", (2, first_total), (-1, first_total), 0.5, colors.black),
                ("LINEABOVE", (2, -1), (-1, -1), 0.5, colors.black),
            ]
        )
    )
    return table
