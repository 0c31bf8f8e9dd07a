"""`/calls`: live calls on the switch (filled in by the routing work)."""

from __future__ import annotations

from c2bot.bot.grammar import Command

CALLS = Command(name="calls", summary="live calls: list them, hang one up, listen in", verbs=())
READ_ONLY_VERBS: frozenset[str] = frozenset()
