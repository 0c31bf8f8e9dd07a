"""Commands for routing objects (filled in by the routing work)."""

from __future__ import annotations

from c2bot.bot.grammar import Command

C2_OBJECTS: tuple[Command, ...] = ()
ROUTE_OBJECTS: tuple[Command, ...] = ()
FORM_USAGE: dict[str, str] = {}
READ_ONLY_VERBS: frozenset[str] = frozenset()
