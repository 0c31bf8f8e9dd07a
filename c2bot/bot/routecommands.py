"""`/route test` and `/route undo`: verbs of /route that name no object."""

from __future__ import annotations

from c2bot.bot.grammar import Command

ROUTE_ACTIONS = Command(name="route", summary="explain and undo routing", verbs=())
READ_ONLY_VERBS: frozenset[str] = frozenset({"test"})
