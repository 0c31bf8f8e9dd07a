"""Replies as Block Kit: title, fields, prose and tables, split to fit Slack's limits."""

from __future__ import annotations

from typing import Any

from c2bot.bot.render import table_text
from c2bot.handlers.replies import Reply, Table

Block = dict[str, Any]

SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_PER_SECTION = 10
MAX_BLOCKS = 50
FALLBACK_MAX = 3000
CODE_FENCE = "```"
CUT_NOTE = "The rest is cut: Slack shows at most 50 blocks. Narrow the request to see it all."


def escape(text: str) -> str:
    """Text as Slack mrkdwn shows it literally (Slack reads &, < and > as markup)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chunks(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut at line ends where a line fits."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        joined = f"{current}\n{line}" if current else line
        if len(joined) > limit:
            pieces.append(current)
            joined = line
        current = joined
    if current:
        pieces.append(current)
    return pieces


def mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text}


def plain(text: str, limit: int = 75) -> Block:
    return {"type": "plain_text", "text": text[:limit], "emoji": True}


def text_sections(text: str) -> list[Block]:
    """Sections of mrkdwn `text` (already escaped), each under Slack's 3000 characters."""
    return [{"type": "section", "text": mrkdwn(part)} for part in chunks(text, SECTION_TEXT_MAX)]


def field_sections(fields: tuple[tuple[str, str], ...]) -> list[Block]:
    """Label/value pairs as section fields, at most ten per section."""
    rendered = [
        mrkdwn(f"*{escape(label)}*\n{escape(value)}"[:FIELD_TEXT_MAX]) for label, value in fields
    ]
    return [
        {"type": "section", "fields": rendered[start : start + FIELDS_PER_SECTION]}
        for start in range(0, len(rendered), FIELDS_PER_SECTION)
    ]


def table_sections(table: Table) -> list[Block]:
    """A table as monospace code blocks, split between rows to stay under 3000 characters."""
    room = SECTION_TEXT_MAX - 2 * len(CODE_FENCE) - 2
    return [
        {"type": "section", "text": mrkdwn(f"{CODE_FENCE}\n{part}\n{CODE_FENCE}")}
        for part in chunks(escape(table_text(table)), room)
    ]


def cap(blocks: list[Block]) -> list[Block]:
    """At most 50 blocks; a longer reply ends with a note saying it was cut."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    note: Block = {"type": "context", "elements": [mrkdwn(CUT_NOTE)]}
    return [*blocks[: MAX_BLOCKS - 1], note]


def reply_blocks(reply: Reply) -> list[Block]:
    blocks = text_sections(escape(reply.title))
    blocks += field_sections(reply.fields)
    if reply.text:
        blocks += text_sections(escape(reply.text))
    if reply.table:
        blocks += table_sections(reply.table)
    return cap(blocks)


def fallback_text(reply: Reply) -> str:
    """The message's plain `text`: what notifications and screen readers show."""
    return escape(reply.title)[:FALLBACK_MAX]
