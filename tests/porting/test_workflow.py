"""The workflow: draft -> submitted -> accepted | rejected | delayed -> scheduled -> completed, or
cancelled; who may take which step, and what a completed port leaves behind."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from c2bot.bot.services import Services
from c2bot.handlers import porting
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.storage.models import (
    Account,
    AuditEntry,
    Channel,
    Did,
    PortDocument,
    PortEvent,
    PortState,
)
from tests.conftest import World
from tests.porting.conftest import Clock, good_port, made, moved, signed_pdf

LETTER = porting.SignedLetter("signed.pdf", "application/pdf", signed_pdf())


async def test_a_port_runs_from_draft_to_completed_and_leaves_dids(
    services: Services, world: World, clock: Clock
) -> None:
    """Signed, accepted, scheduled, completed: 101 DIDs on the account, forwarding unset."""
    view = await made(services, world.customer)
    assert view.state is PortState.DRAFT and view.contact_email == "jan@acme.nl"
    customer = services.context(world.customer, Channel.SLACK)
    signed = await porting.sign_port(customer, view.number, LETTER)
    assert signed.state is PortState.SUBMITTED and signed.letter_signed_at == clock.now
    staff = services.context(world.staff, Channel.SLACK)
    await porting.set_status(staff, porting.StatusChange(view.number, PortState.ACCEPTED))
    scheduled = await porting.set_status(
        staff, porting.StatusChange(view.number, PortState.SCHEDULED, new_date="2026-12-08")
    )
    assert scheduled.port_date is not None and scheduled.port_date.isoformat() == "2026-12-08"
    done = await porting.set_status(staff, porting.StatusChange(view.number, PortState.COMPLETED))
    assert done.state is PortState.COMPLETED
    async with services.sessions() as session:
        dids = list(await session.scalars(select(Did).order_by(Did.number)))
        kinds = list(
            await session.scalars(
                select(PortEvent.kind)
                .where(PortEvent.request_id == view.number)
                .order_by(PortEvent.id)
            )
        )
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        documents = list(await session.scalars(select(PortDocument)))
    assert len(dids) == 101
    assert dids[0].number == "+31201234567" and dids[-1].number == "+31301234599"
    assert {d.account.number for d in dids} == {"1001"}
    assert {(d.forward_type, d.destination) for d in dids} == {(None, None)}
    assert kinds == ["created", "signed", "accepted", "scheduled", "completed"]
    assert actions == ["port.create", "port.sign", "port.status", "port.status", "port.status"]
    assert [(d.filename, d.content_type, d.data) for d in documents] == [
        ("signed.pdf", "application/pdf", LETTER.data)
    ]
    shown = await porting.show_port(customer, view.number)
    assert "done (Opgeleverd)" in shown.history[-1].note
    assert "/route did set NUMBER TYPE DESTINATION" in shown.history[-1].note


async def test_steps_the_workflow_does_not_take_are_refused_in_words(
    services: Services, world: World, clock: Clock
) -> None:
    view = await made(services, world.customer)
    staff = services.context(world.staff, Channel.SHELL)

    async def refusal(state: PortState, **extra: str) -> str:
        with pytest.raises(Invalid) as caught:
            await porting.set_status(staff, porting.StatusChange(view.number, state, **extra))
        return caught.value.message

    assert await refusal(PortState.ACCEPTED) == (
        f"Port request #{view.number} is draft; it can become cancelled or submitted, not "
        "accepted. It waits for the signed letter of authorisation first."
    )
    await moved(services, world.staff, view.number, PortState.ACCEPTED)
    assert await refusal(PortState.COMPLETED) == (
        f"Port request #{view.number} is accepted; it can become cancelled or delayed or "
        "scheduled, not completed. Schedule it first: `port status ID scheduled "
        "date:YYYY-MM-DD`."
    )
    assert "Give the new expected date" in await refusal(PortState.DELAYED, reason="later")
    assert "Say why the current operator delays it" in await refusal(
        PortState.DELAYED, new_date="2026-12-14"
    )
    assert "is a Saturday" in await refusal(PortState.SCHEDULED, new_date="2026-12-12")
    await moved(services, world.staff, view.number, PortState.DELAYED, date="2026-12-14")
    assert "Give the rejection's reason code" in await refusal(PortState.REJECTED)
    rejected = await porting.set_status(
        staff,
        porting.StatusChange(
            view.number, PortState.REJECTED, code="customer-number", reason="KPN knows no 4711"
        ),
    )
    assert rejected.state_label() == (
        "rejected by the current operator: the customer number at the current operator does "
        "not match (KPN knows no 4711)"
    )
    assert await refusal(PortState.ACCEPTED) == (
        f"Port request #{view.number} is rejected; it does not change anymore."
    )


async def test_only_staff_record_the_donors_answer(
    services: Services, world: World, clock: Clock
) -> None:
    """A customer (or reseller) asking to accept their own request is refused, nothing moves."""
    view = await moved(services, world.staff, (await made(services, world.customer)).number)
    for actor in (world.customer, world.reseller):
        ctx = services.context(actor, Channel.SLACK)
        with pytest.raises(NotAllowed) as caught:
            await porting.set_status(ctx, porting.StatusChange(view.number, PortState.ACCEPTED))
        assert caught.value.message.startswith("Only support staff can change the state")
    staff = services.context(world.staff, Channel.SLACK)
    assert (await porting.show_port(staff, view.number)).state is PortState.SUBMITTED


async def test_a_customer_cannot_touch_another_accounts_request(
    services: Services, world: World, clock: Clock
) -> None:
    """Show, cancel, sign and the letter: another account's request does not exist for them."""
    view = await made(services, world.customer)
    stranger = services.context(world.other, Channel.SLACK)
    expected = f"There is no port request #{view.number} you may see."
    attempts = (
        porting.show_port(stranger, view.number),
        porting.cancel_port(stranger, view.number),
        porting.sign_port(stranger, view.number, LETTER),
        porting.letter_for(stranger, view.number),
    )
    for attempt in attempts:
        with pytest.raises(NotFound) as caught:
            await attempt
        assert caught.value.message == expected
    other_reseller = services.context(world.reseller2, Channel.SLACK)
    with pytest.raises(NotFound):
        await porting.show_port(other_reseller, view.number)
    reseller = services.context(world.reseller, Channel.SLACK)
    assert (await porting.show_port(reseller, view.number)).company == "Acme BV"
    listed = await porting.list_ports(stranger, porting.PortFilter())
    assert listed.title == "No port requests."


async def test_a_customer_cancels_until_it_is_scheduled(
    services: Services, world: World, clock: Clock
) -> None:
    first = await made(services, world.customer, numbers="0201234567")
    customer = services.context(world.customer, Channel.SLACK)
    cancelled = await porting.cancel_port(customer, first.number, "changed our mind")
    assert cancelled.state is PortState.CANCELLED and cancelled.reason == "changed our mind"
    second = await made(services, world.customer, numbers="0201234568")
    await moved(
        services,
        world.staff,
        second.number,
        PortState.ACCEPTED,
        PortState.SCHEDULED,
        date="2026-12-07",
    )
    with pytest.raises(NotAllowed) as caught:
        await porting.cancel_port(customer, second.number)
    assert caught.value.message == (
        f"Port request #{second.number} is scheduled with KPN for Mon 7 Dec 2026; ask support "
        "to cancel it (`/case new`)."
    )
    staff = services.context(world.staff, Channel.SLACK)
    assert (await porting.cancel_port(staff, second.number)).state is PortState.CANCELLED


async def test_completion_refuses_numbers_another_account_took_meanwhile(
    services: Services, world: World, clock: Clock
) -> None:
    view = await made(services, world.customer, numbers="0201234567")
    await moved(
        services,
        world.staff,
        view.number,
        PortState.ACCEPTED,
        PortState.SCHEDULED,
        date="2026-12-07",
    )
    async with services.sessions.begin() as session:
        other = await session.scalar(select(Account.id).where(Account.number == "2001"))
        assert other is not None
        session.add(Did(number="+31201234567", account_id=other))
    staff = services.context(world.staff, Channel.SLACK)
    with pytest.raises(Invalid) as caught:
        await porting.set_status(staff, porting.StatusChange(view.number, PortState.COMPLETED))
    assert "+31201234567 already belong to another account" in caught.value.message
    assert (await porting.show_port(staff, view.number)).state is PortState.SCHEDULED


async def test_a_step_replayed_with_the_same_reference_is_taken_once(
    services: Services, world: World, clock: Clock
) -> None:
    """A Slack modal or confirmed mail replayed after a crash changes nothing the second time."""
    customer = services.context(world.customer, Channel.SLACK)
    request = good_port(numbers="0851234567", source_ref="slack:view:V9")
    created = await porting.create_port(customer, request)
    again = await porting.create_port(customer, request)
    assert again.duplicate and again.view.number == created.view.number
    assert (
        again.reply().title == f"Port request #{created.view.number} was made already; nothing new."
    )
    await moved(services, world.staff, created.view.number)
    staff = services.context(world.staff, Channel.SLACK)
    change = porting.StatusChange(
        created.view.number, PortState.ACCEPTED, source_ref="slack:view:V10"
    )
    await porting.set_status(staff, change)
    await porting.set_status(staff, change)
    async with services.sessions() as session:
        accepted = await session.scalar(
            select(func.count()).select_from(PortEvent).where(PortEvent.kind == "accepted")
        )
    assert accepted == 1


async def test_staff_list_every_request_and_filter_by_state_and_date(
    services: Services, world: World, clock: Clock
) -> None:
    early = await made(services, world.customer, numbers="0201234567", desired_date="2026-12-07")
    late = await made(services, world.other, numbers="0101234567", desired_date="2026-12-21")
    await moved(services, world.staff, late.number)
    staff = services.context(world.staff, Channel.SHELL)
    everything = await porting.list_ports(staff, porting.PortFilter())
    assert everything.table is not None
    assert [row[0] for row in everything.table.rows] == [f"#{late.number}", f"#{early.number}"]
    submitted = await porting.list_ports(staff, porting.PortFilter(state=PortState.SUBMITTED))
    assert submitted.table is not None and [r[0] for r in submitted.table.rows] == [
        f"#{late.number}"
    ]
    window = await porting.list_ports(
        staff, porting.PortFilter(date_from="2026-12-01", date_to="2026-12-10")
    )
    assert window.table is not None and [r[0] for r in window.table.rows] == [f"#{early.number}"]
    await porting.cancel_port(staff, early.number)
    running = await porting.list_ports(staff, porting.PortFilter())
    assert running.table is not None and len(running.table.rows) == 1
    with_final = await porting.list_ports(staff, porting.PortFilter(include_final=True))
    assert with_final.table is not None and len(with_final.table.rows) == 2
    mine = await porting.list_ports(
        services.context(world.customer, Channel.SHELL), porting.PortFilter(include_final=True)
    )
    assert mine.table is not None and [r[1] for r in mine.table.rows] == ["1001"]


async def test_staff_are_reminded_of_close_dates_not_scheduled_once_a_day(
    services: Services, world: World, clock: Clock
) -> None:
    """Submitted with Thursday's date: reminded on Tuesday (2 working days), once that day."""
    view = await made(services, world.customer, desired_date="2026-12-03")
    await moved(services, world.staff, view.number)
    system = services.context(world.admin, Channel.SYSTEM)
    assert await porting.due_port_reminders(system) == 0  # Monday: 3 working days ahead
    clock.advance(days=1)
    assert await porting.due_port_reminders(system) == 1
    clock.advance(hours=3)
    assert await porting.due_port_reminders(system) == 0
    async with services.sessions() as session:
        reminder = await session.scalar(select(PortEvent).where(PortEvent.kind == "reminder"))
    assert reminder is not None and not reminder.notify_customer
    assert reminder.note == (
        f"Port request #{view.number}: the porting date Thu 3 Dec 2026 is in 2 working days and "
        "the request is still submitted, not scheduled."
    )
    await moved(services, world.staff, view.number, PortState.ACCEPTED, PortState.SCHEDULED)
    clock.advance(days=1)
    assert await porting.due_port_reminders(system) == 0  # scheduled: nothing to chase


async def test_customers_are_reminded_of_unsigned_letters_every_two_days_at_most_five_times(
    services: Services, world: World, clock: Clock
) -> None:
    view = await made(services, world.customer)
    system = services.context(world.admin, Channel.SYSTEM)
    assert await porting.due_port_reminders(system) == 0
    counts = []
    for _ in range(14):
        clock.advance(days=1)
        counts.append(await porting.due_port_reminders(system))
    assert counts == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    async with services.sessions() as session:
        notes = list(
            await session.scalars(
                select(PortEvent.note)
                .where(PortEvent.kind == "letter-reminder")
                .order_by(PortEvent.id)
            )
        )
    assert notes[0].startswith(
        f"Reminder 1 of 5: the letter of authorisation for port request #{view.number} is not "
        "signed yet"
    )
    assert notes[-1].startswith("Reminder 5 of 5")
