"""The command grammar shared by Slack, the shell and email.

`<command> <verb> [positional ...] [key:value ...] [flag ...]`, values with spaces in double
quotes. Each command declares its verbs and their parameters; parsing checks the words against
that declaration and says, in words, what it expected when they do not fit.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from c2bot.handlers.context import Context
from c2bot.handlers.errors import Refusal
from c2bot.handlers.replies import OpenForm, Reply

KEY = re.compile(r"^([a-z][a-z_-]*):(.*)$", re.DOTALL)
SECRET_KEYS = ("password",)
_SECRET_VALUE = re.compile(r"\b(" + "|".join(SECRET_KEYS) + r'):("[^"]*"|\S+)', re.IGNORECASE)


def has_secret(line: str) -> bool:
    """Whether a command line carries a secret value (e.g. `password:...`)."""
    return _SECRET_VALUE.search(line) is not None


def redact(line: str) -> str:
    """The line with secret values replaced, for logs, records and quoting it back."""
    return _SECRET_VALUE.sub(lambda m: f"{m.group(1)}:[hidden]", line)


class UsageError(Refusal):
    """The words do not fit the grammar; the message says what was expected."""


@dataclass(frozen=True)
class Param:
    name: str
    help: str
    choices: tuple[str, ...] = ()
    required: bool = False
    positional: bool = False
    integer: bool = False

    def check(self, value: str, usage: str) -> str:
        if self.choices and value.lower() not in self.choices:
            raise UsageError(
                f"{self.name} must be one of {', '.join(self.choices)} (got {value!r}).\n{usage}"
            )
        if self.integer and not value.lstrip("#").isdigit():
            raise UsageError(f"{self.name} must be a number (got {value!r}).\n{usage}")
        return value.lower() if self.choices else value.lstrip("#") if self.integer else value


@dataclass(frozen=True)
class Invocation:
    command: str
    verb: str
    values: dict[str, str]
    flags: frozenset[str]

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def need(self, name: str) -> str:
        return self.values[name]

    def number(self, name: str) -> int:
        return int(self.values[name])


Result = Reply | OpenForm
Runner = Callable[[Context, Invocation], Awaitable[Result]]


@dataclass(frozen=True)
class Verb:
    name: str
    summary: str
    run: Runner
    params: tuple[Param, ...] = ()
    flags: tuple[tuple[str, str], ...] = ()
    form: str | None = None
    rest: str | None = None

    def usage(self, command: str) -> str:
        words = [f"{command} {self.name}"]
        for param in self.params:
            shown = param.name.upper() if param.positional else f"{param.name}:{_hint(param)}"
            words.append(shown if param.required else f"[{shown}]")
        words += [f"[{flag}]" for flag, _ in self.flags]
        if self.rest:
            words.append(f"{self.rest.upper()}...")
        return " ".join(words)

    def describe(self, command: str) -> str:
        lines = [f"`{self.usage(command)}`: {self.summary}"]
        lines += [f"    {p.name}: {p.help}" for p in self.params]
        lines += [f"    {flag}: {meaning}" for flag, meaning in self.flags]
        return "\n".join(lines)


def _hint(param: Param) -> str:
    if param.choices:
        return "|".join(param.choices)
    return "N" if param.integer else '"..."'


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    verbs: tuple[Verb, ...]
    examples: tuple[str, ...] = field(default=())

    def verb(self, name: str) -> Verb | None:
        return next((v for v in self.verbs if v.name == name), None)

    def help(self) -> str:
        lines = [f"*{self.name}*: {self.summary}", ""]
        lines += [verb.describe(self.name) for verb in self.verbs]
        if self.examples:
            lines += ["", "Examples:"] + [f"    {example}" for example in self.examples]
        return "\n".join(lines)


@dataclass(frozen=True)
class HelpRequest:
    command: Command | None


def tokenize(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.quotes = '"'  # only double quotes group words: "customer's line" is one apostrophe
    try:
        return list(lexer)
    except ValueError:
        raise UsageError('A double quote is not closed; put values with spaces in "...".') from None


def parse(command: Command, text: str) -> Invocation | HelpRequest:
    """Words after the command name -> an invocation checked against the command's verbs."""
    words = tokenize(text.replace("\u201c", '"').replace("\u201d", '"'))
    if not words or words[0].lower() in ("help", "-h", "--help", "?"):
        return HelpRequest(command)
    verb = command.verb(words[0].lower())
    if verb is None:
        known = ", ".join(v.name for v in command.verbs)
        raise UsageError(
            f"{command.name} has no verb {words[0]!r}; expected one of: {known}. "
            f"Try `{command.name} help`."
        )
    return _bind(command.name, verb, words[1:])


def _bind(command: str, verb: Verb, words: list[str]) -> Invocation:
    usage = f"Usage: `{verb.usage(command)}`"
    by_name = {p.name: p for p in verb.params}
    flags = {flag for flag, _ in verb.flags}
    values: dict[str, str] = {}
    seen_flags: set[str] = set()
    positionals = [p for p in verb.params if p.positional]
    extra: list[str] = []
    for word in words:
        match = KEY.match(word)
        if match and match[1] in by_name and not by_name[match[1]].positional:
            values[match[1]] = by_name[match[1]].check(match[2], usage)
        elif match and not positionals and not verb.rest:
            known = ", ".join(f"{p.name}:" for p in verb.params if not p.positional) or "none"
            raise UsageError(
                f"{command} {verb.name} has no option {match[1]}: (it takes {known}).\n{usage}"
            )
        elif word.lower() in flags:
            seen_flags.add(word.lower())
        elif positionals:
            param = positionals.pop(0)
            values[param.name] = param.check(word, usage)
        elif verb.rest:
            extra.append(word)
        else:
            raise UsageError(f"Unexpected {word!r} after {command} {verb.name}.\n{usage}")
    if verb.rest and extra:
        values[verb.rest] = " ".join(extra)
    _require(command, verb, values, usage)
    return Invocation(command, verb.name, values, frozenset(seen_flags))


def _require(command: str, verb: Verb, values: dict[str, str], usage: str) -> None:
    missing = [p.name for p in verb.params if p.required and p.name not in values]
    if verb.rest and verb.rest not in values and verb.form is None:
        missing.append(verb.rest)
    if missing and not (verb.form and not values):
        raise UsageError(f"{command} {verb.name} needs {', '.join(missing)}.\n{usage}")


def wants_form(verb: Verb, invocation: Invocation) -> bool:
    """A verb with a form and no words at all opens the form (a modal in Slack)."""
    return verb.form is not None and not invocation.values and not invocation.flags
