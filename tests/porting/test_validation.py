"""A new port request is checked in full: every problem told at once, per field and per number."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.config.settings import SettingsError, load_settings
from c2bot.handlers import portcheck, porting
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid
from c2bot.storage.models import Account, Channel, Did, PortState
from tests.conftest import World
from tests.porting.conftest import EARLIEST, Clock, good_port, made


async def porting_checks(ctx: Context, **overrides: object) -> portcheck.CheckedPort:
    return await portcheck.check_new_port(ctx, good_port(**overrides))  # type: ignore[arg-type]


async def refused(services: Services, world: World, **overrides: object) -> Invalid:
    ctx = services.context(world.customer, Channel.SHELL)
    with pytest.raises(Invalid) as caught:
        await portcheck.check_new_port(ctx, good_port(**overrides))  # type: ignore[arg-type]
    return caught.value


async def test_a_good_request_passes_with_its_numbers_read(
    services: Services, world: World, clock: Clock
) -> None:
    """The customer's own account, two ranges in E.164, the postcode tidied, no warnings."""
    ctx = services.context(world.customer, Channel.SHELL)
    checked = await portcheck.check_new_port(ctx, good_port())
    assert checked.account_number == "1001"
    assert [(r.first, r.last) for r in checked.ranges] == [
        ("+31201234567", "+31201234567"),
        ("+31301234500", "+31301234599"),
    ]
    assert checked.postcode == "1234AB" and checked.line_type == "range"
    assert checked.contract == "terminate" and checked.warnings == ()
    invalid = await refused(services, world, email="jan at acme", contract="keep", line_type="fax")
    assert set(invalid.fields) == {"email", "contract", "line"}
    assert invalid.fields["contract"] == "contract must be one of terminate, continue (got 'keep')."


async def test_every_problem_is_told_at_once(
    services: Services, world: World, clock: Clock
) -> None:
    """Missing fields, bad numbers, a bad postcode and a weekend date: one refusal says all."""
    invalid = await refused(
        services,
        world,
        company="",
        street=" ",
        house="twelve",
        postcode="12345",
        numbers="0201234567, 020, +32 2 555 12 34, 0301234599-0301234500",
        desired_date="2026-12-05",
    )
    assert invalid.message.startswith("The port request has 8 problems:")
    assert set(invalid.fields) == {"company", "street", "house", "postcode", "numbers", "date"}
    assert invalid.fields["company"] == "Give the company name."
    assert invalid.fields["numbers"] == (
        "3 problems: 020 is not a valid NL number; +32 2 555 12 34 is a number in Belgium, not "
        "NL: only NL numbers are ported here; 0301234599-0301234500: the end comes before the "
        "start"
    )
    assert invalid.fields["date"] == "2026-12-05 is a Saturday: porting happens on working days."
    assert "- The postcode must look like 1234AB (got '12345')." in invalid.message


@pytest.mark.parametrize(
    ("day", "problem"),
    [
        (date(2026, 11, 27), "2026-11-27 is in the past."),
        (date(2026, 12, 6), "2026-12-06 is a Sunday: porting happens on working days."),
        (
            date(2026, 12, 25),
            "2026-12-25 is a public holiday (Christmas Day): pick a working day.",
        ),
        (
            date(2026, 12, 2),
            "2026-12-02 is too soon: porting needs 3 working days, so the earliest date is "
            "2026-12-03 (Thu 3 Dec 2026).",
        ),
        (date(2026, 12, 3), None),
    ],
)
def test_the_date_is_a_working_day_far_enough_ahead(day: date, problem: str | None) -> None:
    """Past, weekend, public holiday and too soon are refused; the earliest working day is fine."""
    assert portcheck.date_problem(day, date(2026, 11, 30), 3, "NL") == problem


def test_working_days_skip_weekends_and_public_holidays() -> None:
    """From Wednesday 23 December, three working days skip Christmas and the weekend:
    Thursday 24, Monday 28, Tuesday 29."""
    assert portcheck.add_working_days(date(2026, 12, 23), 3, "NL") == date(2026, 12, 29)
    assert portcheck.working_days_until(date(2026, 12, 23), date(2026, 12, 29), "NL") == 3
    assert portcheck.is_working_day(date(2026, 4, 27), "NL") is False  # King's Day
    assert portcheck.is_working_day(date(2026, 4, 27), "BE") is True


async def test_the_lead_time_counts_working_days_and_the_earliest_passes(
    services: Services, world: World, clock: Clock
) -> None:
    """Three working days from a Friday is the Wednesday after: the weekend does not count.
    C2_PORT_LEAD_DAYS and C2_PORT_COUNTRY change the rules."""
    ctx = services.context(world.customer, Channel.SHELL)
    assert (await portcheck.check_new_port(ctx, good_port(desired_date=EARLIEST))).desired_date
    later = replace(ctx, settings=load_settings(C2_PORT_LEAD_DAYS="5", C2_PORT_COUNTRY="BE"))
    with pytest.raises(Invalid) as caught:
        await porting_checks(later, desired_date=EARLIEST, numbers="+31 20 123 4567")
    assert "the earliest date is 2026-12-07" in caught.value.fields["date"]
    assert caught.value.fields["numbers"] == (
        "+31 20 123 4567 is a number in Netherlands, not BE: only BE numbers are ported here"
    )
    with pytest.raises(SettingsError):
        load_settings(C2_PORT_COUNTRY="nl")
    clock.advance(days=4)  # Friday 4 December
    invalid = await refused(services, world, desired_date="2026-12-08", numbers="02012345")
    assert "the earliest date is 2026-12-09" in invalid.fields["date"]
    assert invalid.fields["numbers"] == "02012345 is not a valid NL number"


async def test_numbers_in_this_or_a_running_request_are_refused_until_it_ends(
    services: Services, world: World, clock: Clock
) -> None:
    """Overlap inside the request; a running request of this account (named) or of another
    (not named) holds its numbers; a cancelled one gives them back."""
    inside = await refused(services, world, numbers="0301234500-0301234599, 0301234550")
    assert inside.fields == {"numbers": "0301234550 overlaps 0301234500-0301234599 in this request"}
    first = await made(services, world.customer, numbers="0301234500-0301234599")
    await made(services, world.other, numbers="0101234567", company="Other BV")
    invalid = await refused(services, world, numbers="0301234590+20, 0101234567")
    assert invalid.fields["numbers"] == (
        f"2 problems: 0301234590+20 is already in port request #{first.number} "
        "(+31301234500 to +31301234599); 0101234567 is already in another running port request"
    )
    ctx = services.context(world.customer, Channel.SHELL)
    await porting.cancel_port(ctx, first.number, "wrong numbers")
    await portcheck.check_new_port(ctx, good_port(numbers="0301234590+20"))


async def test_numbers_already_ported_are_refused(
    services: Services, world: World, clock: Clock
) -> None:
    """A number that is a DID already (ours, or another account's) cannot be ported again."""
    async with services.sessions.begin() as session:
        acme = await session.scalar(select(Account.id).where(Account.number == "1001"))
        other = await session.scalar(select(Account.id).where(Account.number == "2001"))
        assert acme is not None and other is not None
        session.add_all(
            [
                Did(number="+31301234550", account_id=acme),
                Did(number="+31201234567", account_id=other),
            ]
        )
    invalid = await refused(services, world)
    assert invalid.fields["numbers"] == (
        "2 problems: +31201234567 is already ported: it is in use on this platform; "
        "+31301234550 is already one of this account's numbers"
    )


async def test_who_may_ask_for_which_account(
    services: Services, world: World, clock: Clock
) -> None:
    """A customer for itself only, a reseller for its customers, staff name the account."""
    invalid = await refused(services, world, account="2001")
    assert invalid.fields["account"] == (
        "You may not act on that account: it is not yours or your customer's."
    )
    reseller = services.context(world.reseller, Channel.SHELL)
    checked = await portcheck.check_new_port(reseller, good_port(account="1002"))
    assert checked.account_number == "1002"
    staff = services.context(world.staff, Channel.SHELL)
    with pytest.raises(Invalid) as caught:
        await portcheck.check_new_port(staff, good_port())
    assert caught.value.fields == {
        "account": "Name the account the port request is for: account:NUMBER."
    }


async def test_an_unaligned_range_is_made_with_a_warning(
    services: Services, world: World, clock: Clock
) -> None:
    view = await made(services, world.customer, numbers="0301234505-0301234524")
    assert view.state is PortState.DRAFT
    assert view.warnings == (
        "0301234505-0301234524 is not aligned to a block of 10 (a block runs from …0 to …9): "
        "check that it is the whole range your current operator gave you.",
    )
