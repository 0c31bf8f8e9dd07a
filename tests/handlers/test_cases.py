"""Cases in the domain layer: permissions along the account tree, life cycle, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.handlers import accounts, cases
from c2bot.handlers.context import Actor
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.storage.models import AuditEntry, CaseStatus, CaseType, Channel, Priority
from tests.conftest import World


def new_case(**overrides: object) -> cases.NewCase:
    values: dict[str, object] = {
        "type": CaseType.TECHNICAL,
        "priority": Priority.HIGH,
        "subject": "Calls drop",
        "description": "Since 10:00 every call drops after 30 s",
    }
    values.update(overrides)
    return cases.NewCase(**values)  # type: ignore[arg-type]


async def open_as(services: Services, actor: Actor, **overrides: object) -> cases.CaseView:
    return await cases.open_case(services.context(actor, Channel.SHELL), new_case(**overrides))


async def test_customer_opens_case_on_own_account(services: Services, world: World) -> None:
    """A customer's case lands on its own account with the requester as contact and an audit row."""
    view = await open_as(services, world.customer)
    assert view.account_number == "1001"
    assert view.contact == "Jan Jansen <jan@acme.nl>"
    assert view.status is CaseStatus.OPEN
    async with services.sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "case.open"))
    assert entry is not None and entry.object_id == str(view.number)
    assert entry.actor_label == "Jan Jansen" and entry.channel is Channel.SHELL


async def test_reseller_acts_for_its_customer_but_not_another_resellers(
    services: Services, world: World
) -> None:
    """A reseller opens a case for its customer 1001 and is refused on R200's customer 2001."""
    view = await open_as(services, world.reseller, account="1001", contact="boss@acme.nl")
    assert view.account_number == "1001" and view.contact == "Boss Acme <boss@acme.nl>"
    with pytest.raises(NotAllowed):
        await open_as(services, world.reseller, account="2001")
    theirs = await open_as(services, world.other)
    with pytest.raises(NotFound, match="among the cases you may see"):
        await cases.show_case(services.context(world.reseller, Channel.SHELL), theirs.number)


async def test_customer_cannot_touch_another_accounts_case(
    services: Services, world: World
) -> None:
    """A customer sees neither another account's case nor can close it; lists stay separate."""
    theirs = await open_as(services, world.other)
    mine = await open_as(services, world.customer)
    ctx = services.context(world.customer, Channel.SHELL)
    with pytest.raises(NotFound):
        await cases.close_case(ctx, theirs.number)
    listing = await cases.list_cases(ctx, cases.CaseFilter())
    assert listing.table is not None
    assert [row[0] for row in listing.table.rows] == [f"#{mine.number}"]
    staff_list = await cases.list_cases(
        services.context(world.staff, Channel.SHELL), cases.CaseFilter()
    )
    assert staff_list.table is not None and len(staff_list.table.rows) == 2


async def test_validation_names_each_field(services: Services, world: World) -> None:
    """Empty subject and description are refused with one message per field."""
    with pytest.raises(Invalid) as refused:
        await open_as(services, world.customer, subject=" ", description="")
    assert set(refused.value.fields) == {"subject", "description"}


async def test_unknown_contact_lists_the_accounts_contacts(
    services: Services, world: World
) -> None:
    """A contact that is not the account's is refused, naming the contacts there are."""
    with pytest.raises(Invalid, match=r"boss@acme\.nl"):
        await open_as(services, world.customer, contact="someone@else.nl")


async def test_life_cycle_and_staff_only_steps(services: Services, world: World) -> None:
    """Close, reopen, pending, priority and assign follow the rules of who may do what."""
    view = await open_as(services, world.customer)
    staff = services.context(world.staff, Channel.SHELL)
    customer = services.context(world.customer, Channel.SHELL)
    with pytest.raises(NotAllowed):
        await cases.set_priority(customer, view.number, Priority.HIGHEST)
    assert (await cases.set_priority(staff, view.number, Priority.HIGHEST)).priority is (
        Priority.HIGHEST
    )
    assert (await cases.assign_to_me(staff, view.number)).assignee == "Sam Staff"
    assert (await cases.set_pending(staff, view.number)).status is CaseStatus.PENDING
    await cases.customer_reply(customer, cases.CaseMessageIn(view.number, "Here is the info"))
    assert (await cases.show_case(customer, view.number)).status is CaseStatus.OPEN
    assert (await cases.close_case(customer, view.number)).status is CaseStatus.CLOSED
    with pytest.raises(Invalid, match="already closed"):
        await cases.close_case(staff, view.number)
    assert (await cases.reopen_case(customer, view.number)).status is CaseStatus.OPEN
    with pytest.raises(NotFound):
        await cases.show_case(staff, 9999)


async def test_notes_stay_on_the_staff_side(services: Services, world: World) -> None:
    """An internal note shows to staff and never in the customer's view of the case."""
    view = await open_as(services, world.customer)
    staff = services.context(world.staff, Channel.SHELL)
    await cases.add_note(staff, cases.CaseMessageIn(view.number, "customer is on old firmware"))
    await cases.staff_reply(staff, cases.CaseMessageIn(view.number, "Please update firmware"))
    staff_view = await cases.show_case(staff, view.number)
    customer_view = await cases.show_case(
        services.context(world.customer, Channel.SHELL), view.number
    )
    assert [line.body for line in staff_view.lines] == [
        "customer is on old firmware",
        "Please update firmware",
    ]
    assert [line.body for line in customer_view.lines] == ["Please update firmware"]
    assert staff_view.first_response_at is not None
    with pytest.raises(NotAllowed):
        await cases.add_note(
            services.context(world.customer, Channel.SHELL),
            cases.CaseMessageIn(view.number, "sneaky"),
        )


async def test_deadlines_and_reminders(services: Services, world: World) -> None:
    """Highest is due in 30 min wall-clock, Normal one business day later; reminders fire once."""
    friday_evening = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # 17:00 in Amsterdam
    services.clock = lambda: friday_evening
    urgent = await open_as(services, world.customer, priority=Priority.HIGHEST)
    normal = await open_as(services, world.customer, priority=Priority.NORMAL)
    assert urgent.first_response_due == datetime(2026, 11, 27, 16, 30, tzinfo=UTC)
    assert normal.first_response_due == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    services.clock = lambda: datetime(2026, 11, 27, 16, 20, tzinfo=UTC)
    ctx = services.context(world.staff, Channel.SYSTEM)
    assert await cases.due_reminders(ctx) == [urgent.number]
    assert await cases.due_reminders(ctx) == []


async def test_customer_cannot_claim_another_accounts_address(
    services: Services, world: World
) -> None:
    """A customer may not add an address that already speaks for another account; staff may."""
    ctx = services.context(world.customer, Channel.SLACK)
    with pytest.raises(NotAllowed, match="already belongs to another account"):
        await accounts.add_contact(ctx, accounts.NewContact("1001", "Piet", "piet@other.nl"))
    staff = services.context(world.staff, Channel.SLACK)
    reply = await accounts.add_contact(staff, accounts.NewContact("1001", "Piet", "piet@other.nl"))
    assert "saved on account 1001" in reply.title


async def test_reseller_adds_customers_under_itself_only(services: Services, world: World) -> None:
    """A reseller's new account lands under it; another reseller's tree and customers refuse."""
    reseller = services.context(world.reseller, Channel.SLACK)
    reply = await accounts.add_account(
        reseller, accounts.NewAccount("1003", "Gamma BV", "office@gamma.nl")
    )
    assert reply.title == "Account 1003 (Gamma BV) added under reseller R100."
    with pytest.raises(NotAllowed):
        await accounts.add_account(
            reseller, accounts.NewAccount("2002", "Delta BV", "d@delta.nl", reseller="R200")
        )
    with pytest.raises(NotAllowed):
        await accounts.add_account(
            services.context(world.customer, Channel.SLACK),
            accounts.NewAccount("1004", "Eps BV", "e@eps.nl"),
        )
    listing = await accounts.list_accounts(reseller)
    assert listing.table is not None
    assert sorted(row[0] for row in listing.table.rows) == ["1001", "1002", "1003", "R100"]
