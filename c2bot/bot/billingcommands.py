"""`/c2 order list|show` and `/c2 invoice list|show`, and `c2bot invoices generate`.

The same words in Slack, the shell and at `bot@`; `invoice show` posts the invoice's PDF and its
month of calls as CSV (Reply.files: a Slack upload, a mail attachment, a file in the shell).
"""

from __future__ import annotations

import argparse

from c2bot.bot.grammar import Command, Invocation, Param, Result, Verb
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.handlers import invoices, orders
from c2bot.handlers.context import SHELL_OPERATOR, Context
from c2bot.storage.models import Channel, OrderStatus

READ_ONLY_VERBS: frozenset[str] = frozenset()  # list and show only: read-only everywhere

ACCOUNT = Param("account", "account number (resellers: a customer's; staff: any)")
STATUSES = tuple(s.value for s in OrderStatus)
KINDS = tuple(k.value for k in orders.OrderKind)


async def _order_list(ctx: Context, inv: Invocation) -> Result:
    status, kind = inv.get("status"), inv.get("kind")
    query = orders.OrderFilter(
        account=inv.get("account"),
        status=OrderStatus(status) if status else None,
        kind=orders.OrderKind(kind) if kind else None,
    )
    return await orders.list_orders(ctx, query)


async def _order_show(ctx: Context, inv: Invocation) -> Result:
    return await orders.show_order(ctx, inv.need("reference"))


async def _invoice_list(ctx: Context, inv: Invocation) -> Result:
    query = invoices.InvoiceFilter(account=inv.get("account"), month=inv.get("month"))
    return await invoices.list_invoices(ctx, query)


async def _invoice_show(ctx: Context, inv: Invocation) -> Result:
    return await invoices.show_invoice(ctx, inv.need("number"))


ORDER = Command(
    "c2 order",
    "orders: new numbers and number ports, followed up to delivery",
    (
        Verb(
            "list",
            "orders you may see, newest first",
            _order_list,
            params=(
                ACCOUNT,
                Param("status", "only orders in this status", STATUSES),
                Param("kind", "did (new number), porting or other", KINDS),
            ),
        ),
        Verb(
            "show",
            "one order: what, status, dates, fees",
            _order_show,
            params=(
                Param(
                    "reference",
                    "the order, e.g. ORD-000012 or 12",
                    required=True,
                    positional=True,
                ),
            ),
        ),
    ),
    examples=("c2 order list status:processing", "c2 order show ORD-000012"),
)
INVOICE = Command(
    "c2 invoice",
    "monthly invoices: calls and recurring fees, with the PDF and the calls as CSV",
    (
        Verb(
            "list",
            "invoices you may see, newest month first",
            _invoice_list,
            params=(ACCOUNT, Param("month", "only this month, YYYY-MM")),
        ),
        Verb(
            "show",
            "one invoice's lines and totals; posts its PDF and CSV",
            _invoice_show,
            params=(
                Param(
                    "number",
                    "the invoice number, e.g. INV-2026-000123",
                    required=True,
                    positional=True,
                ),
            ),
        ),
    ),
    examples=("c2 invoice list month:2026-11", "c2 invoice show INV-2026-000123"),
)
C2_OBJECTS: tuple[Command, ...] = (ORDER, INVOICE)


# --- `c2bot invoices generate` ------------------------------------------------------------------


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = sub.add_parser("invoices", help="monthly invoices").add_subparsers(
        dest="action", required=True
    )
    generate = actions.add_parser(
        "generate",
        help="make the month's invoices of every account that has none yet (a second run "
        "changes nothing)",
    )
    generate.add_argument("--month", required=True, metavar="YYYY-MM")
    generate.add_argument("--account", metavar="ACCOUNT_NUMBER", help="only this account")


async def generate_from_cli(services: Services, args: argparse.Namespace) -> int:
    ctx = services.context(SHELL_OPERATOR, Channel.SHELL)
    print(reply_text(await invoices.generate(ctx, args.month, args.account)))
    return 0
