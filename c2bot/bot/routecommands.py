"""`/route test` and `/route undo`: verbs of /route that name no object."""

from __future__ import annotations

from c2bot.bot.grammar import Command, Invocation, Result, Verb
from c2bot.handlers import routing_changes
from c2bot.handlers.context import Context


async def _undo(ctx: Context, inv: Invocation) -> Result:
    return await routing_changes.undo_last(ctx)


UNDO = Verb(
    "undo",
    "revert your last routing change (again: the one before it)",
    _undo,
)

ROUTE_ACTIONS = Command(
    name="route",
    summary="explain what a call would do, and undo routing changes",
    verbs=(UNDO,),
    examples=("route undo",),
)
READ_ONLY_VERBS: frozenset[str] = frozenset({"test"})
