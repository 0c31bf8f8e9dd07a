"""`/route test` and `/route undo`: verbs of /route that name no object."""

from __future__ import annotations

from c2bot.bot.grammar import Command, Invocation, Param, Result, Verb
from c2bot.handlers import routetest, routing_changes
from c2bot.handlers.context import Context


async def _test(ctx: Context, inv: Invocation) -> Result:
    request = routetest.RouteTest(inv.need("number"), inv.get("at"), inv.get("from"))
    return await routetest.explain(ctx, request)


async def _undo(ctx: Context, inv: Invocation) -> Result:
    return await routing_changes.undo_last(ctx)


TEST = Verb(
    "test",
    "explain step by step what a call would do, now or at a given time",
    _test,
    params=(
        Param(
            "number",
            "a number of yours (+31201234567), or an extension with from:DEVICE",
            required=True,
            positional=True,
        ),
        Param("at", "YYYY-MM-DDTHH:MM in the account's time zone (default: now)"),
        Param("from", "the caller: a phone number, or a device (1001-100) for an internal call"),
    ),
)
UNDO = Verb(
    "undo",
    "revert your last routing change (again: the one before it)",
    _undo,
)

ROUTE_ACTIONS = Command(
    name="route",
    summary="explain what a call would do, and undo routing changes",
    verbs=(TEST, UNDO),
    examples=(
        "route test +31201234567",
        "route test +31201234567 at:2026-12-25T10:00 from:+31612345678",
        "route test 101 from:1001-100",
        "route undo",
    ),
)
READ_ONLY_VERBS: frozenset[str] = frozenset({"test"})
