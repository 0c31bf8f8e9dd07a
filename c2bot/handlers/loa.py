"""The letter of authorisation: a PDF filled with a port request's details, for the customer to
sign and send back.

Drawn with reportlab (BSD) as real text, so the letter can be read by a screen reader, searched,
and checked by a test with pypdf.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from io import BytesIO
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, PropertySet, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

CONTRACTS = {
    "terminate": "terminate: the contract with the current operator ends for these numbers",
    "continue": "continue: other services of the contract with the current operator go on",
}
LINE_TYPES = {
    "single": "single line",
    "multi": "several lines",
    "isdn2": "ISDN2 (basic rate)",
    "isdn30": "ISDN30 (primary rate)",
    "range": "number range",
    "voip": "VoIP",
    "other": "other",
}


@dataclass(frozen=True)
class LetterDetails:
    """What the letter says: the request as the customer gave it."""

    number: int
    company: str
    contact_name: str
    street: str
    house: str
    postcode: str
    city: str
    donor: str
    donor_customer: str
    contract: str
    line_type: str
    numbers: tuple[tuple[str, int], ...]  # (number or "first to last", count)
    desired_date: date
    made_on: date
    country: str


def letter_filename(number: int) -> str:
    return f"letter-of-authorisation-port-{number}.pdf"


def a4_pdf(story: list[Flowable], *, title: str, author: str, subject: str) -> bytes:
    """A document of ours as PDF bytes: A4 with the margins every letter and invoice has."""
    out = BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        author=author,
        subject=subject,
    )
    document.build(story)
    return out.getvalue()


def letter_pdf(details: LetterDetails) -> bytes:
    """The letter as PDF bytes (A4, one page for most requests)."""
    return a4_pdf(
        _story(details),
        title=f"Letter of authorisation, port request #{details.number}",
        author="c2bot",
        subject="Number porting",
    )


def _story(details: LetterDetails) -> list[Flowable]:
    styles = getSampleStyleSheet()
    body, heading = styles["BodyText"], styles["Heading2"]
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10, textColor=colors.grey)
    subtitle = " (machtiging nummerbehoud)" if details.country == "NL" else ""
    story: list[Flowable] = [
        Paragraph(f"Letter of authorisation for number porting{subtitle}", styles["Title"]),
        Paragraph(
            f"Port request #{details.number}, made on {_day(details.made_on)}", styles["Heading4"]
        ),
        Paragraph("Subscriber", heading),
        _pairs(_subscriber(details), body),
        Paragraph("Current operator", heading),
        _pairs(_donor(details), body),
        Paragraph("Numbers to port", heading),
        _numbers(details, body),
        Spacer(1, 3 * mm),
        Paragraph(f"<b>Desired porting date:</b> {_day(details.desired_date)}", body),
        Paragraph("Authorisation", heading),
        Paragraph(_authorisation(details), body),
        Spacer(1, 6 * mm),
        _signature(body),
        Spacer(1, 8 * mm),
        Paragraph(
            f"Send the signed letter back: reply to the mail it came with and attach it (a PDF "
            f"or a photo), or upload it in Slack with <b>/port sign {details.number}</b>.",
            small,
        ),
    ]
    return story


def _subscriber(details: LetterDetails) -> list[tuple[str, str]]:
    return [
        ("Company", details.company),
        ("Contact person", details.contact_name),
        ("Address", f"{details.street} {details.house}"),
        ("Postcode and city", f"{details.postcode} {details.city}"),
    ]


def _donor(details: LetterDetails) -> list[tuple[str, str]]:
    return [
        ("Operator", details.donor),
        ("Customer number", details.donor_customer or "(not given)"),
        ("Contract", CONTRACTS.get(details.contract, details.contract)),
        ("Line type", LINE_TYPES.get(details.line_type, details.line_type)),
    ]


def _pairs(rows: list[tuple[str, str]], style: PropertySet) -> Table:
    cells = [
        [Paragraph(f"<b>{escape(k)}</b>", style), Paragraph(escape(v), style)] for k, v in rows
    ]
    table = Table(cells, colWidths=[45 * mm, 125 * mm])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def _numbers(details: LetterDetails, style: PropertySet) -> Table:
    rows = [["Number or range", "Numbers"]]
    rows += [[text, str(count)] for text, count in details.numbers]
    total = sum(count for _, count in details.numbers)
    rows.append(["Total", str(total)])
    table = Table(rows, colWidths=[130 * mm, 40 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
            ]
        )
    )
    return table


def _authorisation(details: LetterDetails) -> str:
    company = escape(details.company)
    donor = escape(details.donor)
    return (
        f"The undersigned, authorised to act for {company}, asks to bring the numbers above to "
        f"the new operator and authorises the new operator to request their porting from "
        f"{donor} on behalf of {company}. Calls to these numbers will reach the new operator "
        f"from the porting date on; the services of {donor} on these numbers end on that date."
    )


def _signature(style: PropertySet) -> Table:
    line = "_" * 38
    rows = [
        [Paragraph("<b>Name</b>", style), line],
        [Paragraph("<b>Position</b>", style), line],
        [Paragraph("<b>Place and date</b>", style), line],
        [Paragraph("<b>Signature</b>", style), line],
    ]
    table = Table(rows, colWidths=[45 * mm, 125 * mm], rowHeights=[11 * mm] * 4)
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "BOTTOM")]))
    return table


def _day(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"
