"""Number and caller-id translation in the platform's `match/replace` syntax.

A translation is a comma-separated list of rules, each `match/replace` and optionally in double
quotes, as the platform's portal writes them: `"0031/0","00/+"`. A rule applies when the number
starts with `match`; that prefix is replaced by `replace` (which may be empty: `00/` strips the
`00`). The first rule that applies wins, so list the longer prefixes first. `*` as the match
applies to every number (`*/+31` puts `+31` before it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIALABLE = re.compile(r"^[0-9+*#]*$")
MAX_RULES = 20


class TranslationError(ValueError):
    """A translation that does not parse; the message says which rule and why."""


@dataclass(frozen=True)
class Rule:
    match: str
    replace: str

    def applies(self, number: str) -> bool:
        return self.match == "*" or number.startswith(self.match)

    def apply(self, number: str) -> str:
        if self.match == "*":
            return self.replace + number
        return self.replace + number[len(self.match) :]

    def __str__(self) -> str:
        return f'"{self.match}/{self.replace}"'


def parse_rules(text: str) -> tuple[Rule, ...]:
    """The rules in `text` (empty text: none), or TranslationError naming the bad rule."""
    rules: list[Rule] = []
    for position, raw in enumerate((part.strip() for part in text.split(",")), start=1):
        if not raw:
            if text.strip():
                raise TranslationError(f"Rule {position} is empty (two commas in a row?).")
            continue
        rule = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
        match, slash, replace = rule.partition("/")
        if not slash:
            raise TranslationError(
                f"Rule {position} ({raw}) has no `/`: write it as match/replace, e.g. 0031/0."
            )
        if not match:
            raise TranslationError(
                f"Rule {position} ({raw}) matches nothing: give the prefix to replace, "
                "or * for every number."
            )
        if "/" in replace:
            raise TranslationError(f"Rule {position} ({raw}) has more than one `/`.")
        if (match != "*" and not _DIALABLE.match(match)) or not _DIALABLE.match(replace):
            raise TranslationError(f"Rule {position} ({raw}) may hold only digits, +, * and #.")
        rules.append(Rule(match, replace))
    if len(rules) > MAX_RULES:
        raise TranslationError(f"At most {MAX_RULES} rules, not {len(rules)}.")
    return tuple(rules)


def translate(rules: tuple[Rule, ...], number: str) -> str:
    """`number` after the first rule that applies (unchanged when none does)."""
    for rule in rules:
        if rule.applies(number):
            return rule.apply(number)
    return number


def render(rules: tuple[Rule, ...]) -> str:
    """Rules back in the platform's syntax (what parse_rules reads)."""
    return ",".join(str(rule) for rule in rules)
