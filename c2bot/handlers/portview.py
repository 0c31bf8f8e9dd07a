"""A port request as the front doors show it: reply fields, state in words, and the letter of
authorisation filled in from it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from c2bot.handlers.loa import CONTRACTS, LINE_TYPES, LetterDetails, letter_filename, letter_pdf
from c2bot.handlers.portcheck import DEFAULT_ZONE, show_day
from c2bot.handlers.portnumbers import NumberRange, international
from c2bot.handlers.replies import Reply, Table
from c2bot.storage.models import PortEvent, PortRange, PortRequest, PortState

STATE_WORDS = {
    PortState.DRAFT: "draft: waiting for the signed letter of authorisation",
    PortState.SUBMITTED: "submitted: the signed letter is in; the current operator is asked",
    PortState.ACCEPTED: "accepted by the current operator",
    PortState.REJECTED: "rejected by the current operator",
    PortState.DELAYED: "delayed by the current operator",
    PortState.SCHEDULED: "scheduled",
    PortState.COMPLETED: "completed (Opgeleverd): the numbers are yours",
    PortState.CANCELLED: "cancelled",
}
REJECT_CODES = {
    "customer-number": "the customer number at the current operator does not match",
    "subscriber": "the company name or address does not match the current operator's records",
    "numbers": "a number is not with the current operator, or not in service",
    "incomplete-range": "a range is incomplete: a whole range is ported together",
    "contract": "the contract with the current operator does not allow porting yet",
    "running": "another porting request for these numbers is running",
    "letter": "the letter of authorisation is missing, unsigned or unreadable",
    "other": "another reason (see the note)",
}


# --- views ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    kind: str
    note: str
    actor: str
    channel: str


@dataclass(frozen=True)
class PortView:
    """A request as the doors show it (replies, cards, mails)."""

    number: int
    account_number: str
    account_company: str
    zone: str
    state: PortState
    company: str
    contact_name: str
    contact_email: str
    street: str
    house: str
    postcode: str
    city: str
    donor: str
    donor_customer: str
    contract: str
    line_type: str
    desired_date: date
    port_date: date | None
    reason_code: str
    reason: str
    warnings: tuple[str, ...]
    ranges: tuple[NumberRange, ...]
    letter_signed_at: datetime | None
    created_at: datetime
    requester: str
    history: tuple[HistoryLine, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.street} {self.house}, {self.postcode} {self.city}"

    @property
    def total(self) -> int:
        return sum(r.count for r in self.ranges)

    @property
    def date_label(self) -> str:
        if self.port_date and self.state is PortState.SCHEDULED:
            return f"{show_day(self.port_date)} (scheduled)"
        if self.port_date:
            return f"{show_day(self.port_date)} (expected; asked for {show_day(self.desired_date)})"
        return f"{show_day(self.desired_date)} (asked for)"

    @property
    def numbers_label(self) -> str:
        first = self.ranges[0].label() if self.ranges else "none"
        more = len(self.ranges) - 1
        return first + (f" and {more} more" if more else "") + f" ({self.total} in all)"

    def state_label(self) -> str:
        words = STATE_WORDS[self.state]
        if self.state is PortState.REJECTED and self.reason_code:
            words += f": {REJECT_CODES.get(self.reason_code, self.reason_code)}"
        if self.state in (PortState.REJECTED, PortState.DELAYED, PortState.CANCELLED) and (
            self.reason
        ):
            words += f" ({self.reason})"
        return words

    def fields(self) -> tuple[tuple[str, str], ...]:
        signed = (
            f"signed, received {self.local(self.letter_signed_at)}"
            if self.letter_signed_at
            else "not signed yet"
        )
        return (
            ("Account", f"{self.account_number} {self.account_company}"),
            ("State", self.state_label()),
            ("Porting date", self.date_label),
            ("Numbers", self.numbers_label),
            ("Company", self.company),
            ("Contact", f"{self.contact_name} <{self.contact_email}>".replace(" <>", "")),
            ("Address", self.address),
            ("Current operator", self.donor),
            ("Customer number there", self.donor_customer or "(not given)"),
            ("Contract", CONTRACTS.get(self.contract, self.contract)),
            ("Line type", LINE_TYPES.get(self.line_type, self.line_type)),
            ("Letter of authorisation", signed),
        )

    def local(self, moment: datetime) -> str:
        return moment.astimezone(ZoneInfo(self.zone)).strftime("%Y-%m-%d %H:%M")

    def as_reply(self) -> Reply:
        rows = tuple((r.first, r.last, str(r.count)) for r in self.ranges)
        history = "\n".join(
            f"{self.local(h.at)}  {h.note} ({h.actor}, {h.channel})" for h in self.history
        )
        notes = "\n".join(f"Warning: {w}" for w in self.warnings)
        text = "\n\n".join(part for part in (notes, history and f"History:\n{history}") if part)
        return Reply(
            title=f"Port request #{self.number}: {self.company}, {self.numbers_label}",
            fields=self.fields(),
            text=text,
            table=Table(("First", "Last", "Count"), rows),
        )


def port_view(request: PortRequest, events: Iterable[PortEvent] = ()) -> PortView:
    ranges = tuple(NumberRange(_range_text(r), r.first, r.last) for r in request.ranges)
    requester = request.requester
    return PortView(
        number=request.id,
        account_number=request.account.number,
        account_company=request.account.company,
        zone=request.account.timezone or DEFAULT_ZONE,
        state=request.state,
        company=request.company,
        contact_name=request.contact_name,
        contact_email=request.contact_email,
        street=request.street,
        house=request.house_number + _addition(request.house_addition),
        postcode=request.postcode,
        city=request.city,
        donor=request.donor,
        donor_customer=request.donor_customer,
        contract=request.contract,
        line_type=request.line_type,
        desired_date=request.desired_date,
        port_date=request.port_date,
        reason_code=request.reason_code,
        reason=request.reason,
        warnings=tuple(w for w in request.warnings.split("\n") if w),
        ranges=ranges,
        letter_signed_at=request.letter_signed_at,
        created_at=request.created_at,
        requester=(requester.name or requester.email or "") if requester else "",
        history=tuple(
            HistoryLine(e.at, e.kind, e.note, e.actor_label, e.channel.value) for e in events
        ),
    )


def _addition(addition: str) -> str:
    if not addition:
        return ""
    return addition if addition[0] in "-/" else f" {addition}"


def _range_text(row: PortRange) -> str:
    return row.first if row.first == row.last else f"{row.first}-{row.last}"


def letter_details(view: PortView, made_on: date, country: str) -> LetterDetails:
    numbers = tuple(
        (
            international(r.first)
            if not r.is_range
            else f"{international(r.first)} to {international(r.last)}",
            r.count,
        )
        for r in view.ranges
    )
    return LetterDetails(
        number=view.number,
        company=view.company,
        contact_name=view.contact_name,
        street=view.street,
        house=view.house,
        postcode=view.postcode,
        city=view.city,
        donor=view.donor,
        donor_customer=view.donor_customer,
        contract=view.contract,
        line_type=view.line_type,
        numbers=numbers,
        desired_date=view.desired_date,
        made_on=made_on,
        country=country,
    )


def render_letter(view: PortView, made_on: date, country: str) -> tuple[str, bytes]:
    """(file name, PDF) of the request's letter of authorisation."""
    return letter_filename(view.number), letter_pdf(letter_details(view, made_on, country))
