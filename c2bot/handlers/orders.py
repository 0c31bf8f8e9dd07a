"""Orders: what an account ordered (new numbers, a number port), followed up to delivery.

An order is made where the thing is asked for, in the same transaction:
- a port request makes its order when it is made (`follow_port`), and every step of the request
  moves the order's status with it (stored, not derived, so invoices and lists read one column):
  draft -> new; submitted, accepted, delayed, scheduled -> processing; completed -> delivered;
  rejected, cancelled -> cancelled. A request made before orders existed gets its order at its
  next step.
- staff adding a number to an account (`/c2 did add`) makes a delivered "new number" order that
  carries the number's fees (`did_added`). The fees of such an order are for reading: the
  invoice bills numbers from the numbers themselves (a removed number stops being billed).
Orders of other kinds bill their setup fee in the month they are delivered and their monthly
fee every month from then on (see c2bot.handlers.invoices).
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from c2bot.handlers.accounts import scoped
from c2bot.handlers.context import Context
from c2bot.handlers.errors import Invalid, NotFound
from c2bot.handlers.permissions import may_act_on
from c2bot.handlers.replies import Reply, Table
from c2bot.storage.models import Did, Order, OrderStatus, PortRequest, PortState

LIST_LIMIT = 200
CENT = Decimal("0.01")


class OrderKind(enum.StrEnum):
    DID = "did"  # a new number from the carrier
    PORTING = "porting"  # numbers brought over from another operator
    OTHER = "other"


KIND_WORDS = {
    OrderKind.DID: "new number",
    OrderKind.PORTING: "number porting",
    OrderKind.OTHER: "other",
}
PORT_STATUS: dict[PortState, OrderStatus] = {
    PortState.DRAFT: OrderStatus.NEW,
    PortState.SUBMITTED: OrderStatus.PROCESSING,
    PortState.ACCEPTED: OrderStatus.PROCESSING,
    PortState.DELAYED: OrderStatus.PROCESSING,
    PortState.SCHEDULED: OrderStatus.PROCESSING,
    PortState.COMPLETED: OrderStatus.DELIVERED,
    PortState.REJECTED: OrderStatus.CANCELLED,
    PortState.CANCELLED: OrderStatus.CANCELLED,
}
_REFERENCE = re.compile(r"^(?:ORD-?)?0*(\d{1,9})$", re.IGNORECASE)


def money(amount: Decimal, currency: str) -> str:
    """`EUR 12.50`: cents, or more places when the amount has them (a rate-like fee)."""
    shown = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if shown != amount:
        shown = amount.normalize()
    return f"{currency} {shown:,.{max(2, -int(shown.as_tuple().exponent))}f}"


def reference_of(order_id: int) -> str:
    return f"ORD-{order_id:06d}"


async def _new_order(
    session: AsyncSession,
    *,
    account_id: int,
    kind: OrderKind,
    description: str,
    status: OrderStatus,
    created_by: str,
    ctx: Context,
    port_request_id: int | None = None,
    setup_fee: Decimal = Decimal(0),
    monthly_fee: Decimal = Decimal(0),
) -> Order:
    """An order with its reference `ORD-000042` (the row's id, so references never collide)."""
    now = ctx.clock()
    order = Order(
        reference=f"new-{secrets.token_hex(8)}",
        account_id=account_id,
        kind=kind.value,
        description=description[:500],
        status=status,
        port_request_id=port_request_id,
        setup_fee=setup_fee,
        monthly_fee=monthly_fee,
        created_by=created_by[:300],
        created_at=now,
        updated_at=now,
        delivered_at=now if status is OrderStatus.DELIVERED else None,
    )
    session.add(order)
    await session.flush()
    order.reference = reference_of(order.id)
    await session.flush()
    return order


# --- made where things are asked for ------------------------------------------------------------


def port_description(port: PortRequest) -> str:
    total = sum(row.count for row in port.ranges)
    first = port.ranges[0].first if port.ranges else ""
    more = f" ({first}{' and more' if total > 1 else ''})" if first else ""
    return f"Number porting, port request #{port.id}: {total} number(s) from {port.donor}{more}"


async def follow_port(session: AsyncSession, ctx: Context, port: PortRequest) -> Order:
    """The port request's order, made with the request and moved with it (call after every
    change of `port.state`, in the same transaction)."""
    order = await session.scalar(select(Order).where(Order.port_request_id == port.id))
    status = PORT_STATUS[port.state]
    if order is None:
        return await _new_order(
            session,
            account_id=port.account_id,
            kind=OrderKind.PORTING,
            description=port_description(port),
            status=status,
            created_by=ctx.actor.label,
            ctx=ctx,
            port_request_id=port.id,
        )
    if order.status is not status:
        order.status, order.updated_at = status, ctx.clock()
        if status is OrderStatus.DELIVERED:
            order.delivered_at = port.completed_at or ctx.clock()
    return order


async def did_added(session: AsyncSession, ctx: Context, did: Did, account_id: int) -> Order:
    """Staff gave a number to an account: a delivered "new number" order with its fees."""
    return await _new_order(
        session,
        account_id=account_id,
        kind=OrderKind.DID,
        description=f"New number {did.number}",
        status=OrderStatus.DELIVERED,
        created_by=ctx.actor.label,
        ctx=ctx,
        setup_fee=did.setup_fee or Decimal(0),
        monthly_fee=did.monthly_fee or Decimal(0),
    )


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilter:
    account: str | None = None
    status: OrderStatus | None = None
    kind: OrderKind | None = None


async def list_orders(ctx: Context, query: OrderFilter) -> Reply:
    """Orders the actor may see, newest first: customers their own, resellers theirs and their
    customers', staff all."""
    async with ctx.sessions() as session:
        stmt = select(Order).order_by(Order.id.desc()).limit(LIST_LIMIT)
        stmt = await scoped(session, ctx, stmt, Order.account_id, query.account)
        if query.status is not None:
            stmt = stmt.where(Order.status == query.status)
        if query.kind is not None:
            stmt = stmt.where(Order.kind == query.kind.value)
        found = list(await session.scalars(stmt))
    if not found:
        return Reply(title="No orders.")
    currency = ctx.settings.currency
    rows = tuple(
        (
            o.reference,
            o.account.number,
            o.description,
            o.status.value,
            f"{o.created_at:%Y-%m-%d}",
            f"{o.delivered_at:%Y-%m-%d}" if o.delivered_at else "",
            money(o.setup_fee, currency),
            money(o.monthly_fee, currency),
        )
        for o in found
    )
    columns = ("Order", "Account", "What", "Status", "Ordered", "Delivered", "Setup", "Monthly")
    more = f" (the newest {LIST_LIMIT})" if len(rows) == LIST_LIMIT else ""
    return Reply(title=f"{len(rows)} order(s){more}", table=Table(columns, rows))


def order_id(text: str) -> int:
    """`ORD-000042`, `ord-42`, `#42` or `42` -> 42."""
    match = _REFERENCE.match(text.strip().lstrip("#"))
    if match is None:
        raise Invalid(
            f"{text!r} is not an order reference; they look like ORD-000042.",
            {"reference": "not an order reference"},
        )
    return int(match[1])


async def show_order(ctx: Context, reference: str) -> Reply:
    number = order_id(reference)
    async with ctx.sessions() as session:
        wanted = reference_of(number)
        order = await session.scalar(select(Order).where(Order.reference == wanted))
        if order is None or not await may_act_on(session, ctx.actor, order.account_id):
            raise NotFound(f"There is no order {wanted} you may see.")
        port = (
            await session.get(PortRequest, order.port_request_id)
            if order.port_request_id is not None
            else None
        )
    currency = ctx.settings.currency
    fields = [
        ("Account", f"{order.account.number} {order.account.company}"),
        ("What", order.description),
        ("Kind", KIND_WORDS.get(OrderKind(order.kind), order.kind)),
        ("Status", order.status.value),
        ("Ordered", f"{order.created_at:%Y-%m-%d %H:%M} UTC by {order.created_by or 'support'}"),
        ("Changed", f"{order.updated_at:%Y-%m-%d %H:%M} UTC"),
    ]
    if order.delivered_at is not None:
        fields.append(("Delivered", f"{order.delivered_at:%Y-%m-%d %H:%M} UTC"))
    fields += [
        ("Setup fee", money(order.setup_fee, currency)),
        ("Monthly fee", money(order.monthly_fee, currency)),
    ]
    text = ""
    if port is not None:
        fields.append(("Port request", f"#{port.id}, {port.state.value}"))
        text = f"Its steps: `/port show {port.id}`."
    return Reply(
        title=f"Order {order.reference}: {order.description}", fields=tuple(fields), text=text
    )
