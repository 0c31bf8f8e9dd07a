"""Orders: a port request is an order from the moment it is made and its status follows the
request; staff adding a number makes a delivered "new number" order; who sees which order."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from c2bot.bot.services import Services
from c2bot.handlers import dids, invoices, orders, porting
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import Invalid, NotAllowed, NotFound
from c2bot.storage.models import Channel, Did, Order, OrderStatus, PortState
from tests.conftest import World
from tests.porting.conftest import GOOD_DATE, NOW, Clock, made, moved


@pytest.fixture
def clock(services: Services) -> Clock:
    fixed = Clock(NOW)
    services.clock = fixed
    return fixed


def ctx(services: Services, actor: Actor) -> Context:
    return services.context(actor, Channel.SHELL)


async def order_of_port(services: Services, number: int) -> Order:
    async with services.sessions() as session:
        found = await session.scalar(select(Order).where(Order.port_request_id == number))
        assert found is not None
        return found


async def test_a_port_request_is_an_order_that_follows_it(
    services: Services, world: World, clock: Clock
) -> None:
    view = await made(services, world.customer)
    order = await order_of_port(services, view.number)
    assert order.reference == orders.reference_of(order.id)
    assert (order.kind, order.status, order.delivered_at) == ("porting", OrderStatus.NEW, None)
    assert order.description == (
        f"Number porting, port request #{view.number}: 101 number(s) from KPN "
        "(+31201234567 and more)"
    )
    assert order.created_by == "Jan Jansen"

    listed = await orders.list_orders(ctx(services, world.customer), orders.OrderFilter())
    assert listed.table is not None
    assert listed.table.rows[0][:4] == (order.reference, "1001", order.description, "new")

    steps = [
        (PortState.SUBMITTED, OrderStatus.PROCESSING),
        (PortState.ACCEPTED, OrderStatus.PROCESSING),
        (PortState.SCHEDULED, OrderStatus.PROCESSING),
    ]
    await moved(services, world.staff, view.number)  # signed: submitted
    assert (await order_of_port(services, view.number)).status is steps[0][1]
    await moved(services, world.staff, view.number, PortState.ACCEPTED)
    assert (await order_of_port(services, view.number)).status is steps[1][1]
    clock.advance(days=1)
    await moved(services, world.staff, view.number, PortState.SCHEDULED, date=GOOD_DATE)
    scheduled = await order_of_port(services, view.number)
    assert scheduled.status is OrderStatus.PROCESSING and scheduled.delivered_at is None
    clock.advance(days=7)
    await moved(services, world.staff, view.number, PortState.COMPLETED)
    done = await order_of_port(services, view.number)
    assert done.status is OrderStatus.DELIVERED
    assert done.delivered_at == clock.now and done.updated_at == clock.now
    # the ported numbers are DIDs now; porting them made no "new number" orders
    async with services.sessions() as session:
        kinds = list(await session.scalars(select(Order.kind)))
    assert kinds == ["porting"]

    shown = await orders.show_order(ctx(services, world.customer), done.reference.lower())
    assert shown.title == f"Order {done.reference}: {done.description}"
    fields = dict(shown.fields)
    assert fields["Status"] == "delivered" and fields["Kind"] == "number porting"
    assert fields["Port request"] == f"#{view.number}, completed"
    assert fields["Delivered"] == f"{clock.now:%Y-%m-%d %H:%M} UTC"
    assert fields["Setup fee"] == "EUR 0.00"
    assert f"/port show {view.number}" in shown.text


async def test_rejected_and_cancelled_ports_cancel_their_orders(
    services: Services, world: World, clock: Clock
) -> None:
    rejected = await made(services, world.customer)
    await moved(services, world.staff, rejected.number, PortState.REJECTED)
    assert (await order_of_port(services, rejected.number)).status is OrderStatus.CANCELLED

    cancelled = await made(services, world.reseller, numbers="0401234567", account="1002")
    await porting.cancel_port(ctx(services, world.reseller), cancelled.number, "changed my mind")
    order = await order_of_port(services, cancelled.number)
    assert (order.status, order.account.number) == (OrderStatus.CANCELLED, "1002")

    only_cancelled = await orders.list_orders(
        ctx(services, world.staff), orders.OrderFilter(status=OrderStatus.CANCELLED)
    )
    assert only_cancelled.table is not None and len(only_cancelled.table.rows) == 2
    nothing = await orders.list_orders(
        ctx(services, world.staff), orders.OrderFilter(status=OrderStatus.DELIVERED)
    )
    assert nothing.title == "No orders." and nothing.table is None


async def test_a_number_added_by_staff_is_a_delivered_order(
    services: Services, world: World, clock: Clock
) -> None:
    await dids.add_did(ctx(services, world.staff), "020 765 4321", "1001")
    async with services.sessions() as session:
        order = await session.scalar(select(Order).where(Order.kind == "did"))
    assert order is not None
    assert (order.description, order.status) == ("New number +31207654321", OrderStatus.DELIVERED)
    assert order.delivered_at == NOW and order.account.number == "1001"
    # the same number again changes nothing, so no second order
    await dids.add_did(ctx(services, world.staff), "+31207654321", "1001")
    # staff forwarding a number nobody has yet adds it, with its order
    await dids.set_forwarding(
        ctx(services, world.staff),
        "+31207654322",
        dids.Forwarding("pstn", "+31612345678"),
        "1002",
    )
    async with services.sessions() as session:
        made_orders = list(await session.scalars(select(Order).order_by(Order.id)))
        did = await session.scalar(select(Did).where(Did.number == "+31207654322"))
    assert [o.description for o in made_orders] == [
        "New number +31207654321",
        "New number +31207654322",
    ]
    assert did is not None and made_orders[1].account_id == did.account_id
    # "new number" orders are not billed themselves: their numbers are (here: no fees)
    async with services.sessions.begin() as session:
        first = await session.get(Order, made_orders[0].id)
        assert first is not None
        first.setup_fee = Decimal(50)
    clock.advance(days=2)
    outcome = await invoices.generate(ctx(services, world.staff), "2026-11", "1001")
    assert (
        outcome.title == "Invoices 2026-11: nothing changed (1 account(s) had nothing to invoice)."
    )


async def test_who_sees_which_order(services: Services, world: World, clock: Clock) -> None:
    view = await made(services, world.customer)
    reference = (await order_of_port(services, view.number)).reference
    await dids.add_did(ctx(services, world.staff), "+31307654321", "2001")

    async def listed(actor: Actor, account: str | None = None) -> list[str]:
        reply = await orders.list_orders(ctx(services, actor), orders.OrderFilter(account=account))
        return [row[1] for row in reply.table.rows] if reply.table else []

    assert await listed(world.customer) == ["1001"]
    assert await listed(world.reseller) == ["1001"]
    assert await listed(world.other) == ["2001"]
    assert sorted(await listed(world.staff)) == ["1001", "2001"]
    assert await listed(world.staff, "2001") == ["2001"]
    with pytest.raises(NotAllowed):
        await listed(world.customer, "2001")
    for actor in (world.other, world.reseller2):
        with pytest.raises(NotFound, match=f"There is no order {reference} you may see"):
            await orders.show_order(ctx(services, actor), reference)
    shown = await orders.show_order(ctx(services, world.reseller), f"#{int(reference[4:])}")
    assert shown.title.startswith(f"Order {reference}:")
    with pytest.raises(Invalid, match="not an order reference"):
        await orders.show_order(ctx(services, world.staff), "INV-2026-000001")
    with pytest.raises(NotFound, match="There is no order ORD-000999 you may see"):
        await orders.show_order(ctx(services, world.staff), "ORD-000999")


def test_money_is_shown_in_cents_or_more_places() -> None:
    assert orders.money(Decimal("12.500000"), "EUR") == "EUR 12.50"
    assert orders.money(Decimal("1234.5"), "EUR") == "EUR 1,234.50"
    assert orders.money(Decimal("0.012345"), "USD") == "USD 0.012345"
    assert orders.money(Decimal("100"), "EUR") == "EUR 100.00"
