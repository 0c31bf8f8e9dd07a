"""Typed replies a handler returns; the front doors render them (Block Kit, text, email)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ReplyFile:
    """A file that goes with a reply: a CSV export, a chart, an invoice PDF, a recording.

    Slack uploads it to the conversation (files upload v2), email attaches it, the shell saves
    it and names where."""

    filename: str
    content_type: str
    data: bytes
    title: str = ""


@dataclass(frozen=True)
class Reply:
    """A title line, optional prose, label/value fields, a table and files."""

    title: str
    text: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    table: Table | None = None
    public: bool = False
    files: tuple[ReplyFile, ...] = ()


@dataclass(frozen=True)
class OpenForm:
    """Ask the front door to show a form (a Slack modal); text doors explain the text form."""

    form: str
    usage: str
    initial: dict[str, str] = field(default_factory=dict)
