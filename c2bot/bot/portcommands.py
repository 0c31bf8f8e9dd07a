"""`/port`: number porting (filled in by the porting work)."""

from __future__ import annotations

from c2bot.bot.grammar import Command

PORT = Command(
    name="port", summary="number porting: bring numbers over from another operator", verbs=()
)
FORM_USAGE: dict[str, str] = {}
READ_ONLY_VERBS: frozenset[str] = frozenset()
