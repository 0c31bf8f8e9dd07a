"""Fixtures for number porting: a fixed clock (Monday 30 November 2026, 10:00 in Amsterdam),
a request that passes every check, and helpers to move one along."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from reportlab.pdfgen import canvas

from c2bot.bot.services import Services
from c2bot.handlers import portcheck, porting, portview
from c2bot.handlers.context import Actor
from c2bot.storage.models import Channel, PortState

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # a Monday; lead time 3 -> Thursday 3 December
EARLIEST = "2026-12-03"
GOOD_DATE = "2026-12-07"


class Clock:
    """services.clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(services: Services) -> Clock:
    fixed = Clock(NOW)
    services.clock = fixed
    return fixed


def good_port(**overrides: Any) -> portcheck.NewPort:
    """A request for account 1001 that passes every check."""
    request = portcheck.NewPort(
        company="Acme BV",
        contact="Jan Jansen",
        street="Dorpsstraat",
        house="12",
        addition="A",
        postcode="1234 ab",
        city="Amsterdam",
        donor="KPN",
        donor_customer="KPN-4711",
        numbers="0201234567, 0301234500-0301234599",
        desired_date=GOOD_DATE,
    )
    return replace(request, **overrides)


def signed_pdf(text: str = "Signed: Jan Jansen") -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, text)
    page.save()
    return out.getvalue()


async def made(services: Services, actor: Actor, **overrides: Any) -> portview.PortView:
    ctx = services.context(actor, Channel.SHELL)
    return (await porting.create_port(ctx, good_port(**overrides))).view


async def moved(
    services: Services, staff: Actor, number: int, *states: PortState, **extra: Any
) -> portview.PortView:
    """Sign a draft (as staff) and move it through `states`."""
    ctx = services.context(staff, Channel.SHELL)
    view = await porting.show_port(ctx, number)
    if view.state is PortState.DRAFT:
        letter = porting.SignedLetter("signed.pdf", "application/pdf", signed_pdf())
        view = await porting.sign_port(ctx, number, letter)
    for state in states:
        date = extra.get("date") if state in (PortState.SCHEDULED, PortState.DELAYED) else None
        reason = "Donor needs more time" if state is PortState.DELAYED else ""
        code = "customer-number" if state is PortState.REJECTED else None
        change = porting.StatusChange(number, state, reason=reason, code=code, new_date=date)
        view = await porting.set_status(ctx, change)
    return view
