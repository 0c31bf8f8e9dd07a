"""Replies as plain text: for the shell and for email answers."""

from __future__ import annotations

from c2bot.handlers.replies import Reply, Table


def reply_text(reply: Reply) -> str:
    parts = [reply.title.replace("*", "")]
    if reply.fields:
        width = max(len(label) for label, _ in reply.fields)
        parts.append("\n".join(f"{label:<{width}}  {value}" for label, value in reply.fields))
    if reply.text:
        parts.append(reply.text)
    if reply.table:
        parts.append(table_text(reply.table))
    return "\n\n".join(part for part in parts if part).replace("`", "")


def table_text(table: Table) -> str:
    widths = [len(column) for column in table.columns]
    for row in table.rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(table.columns).rstrip(), rule, *(line(r).rstrip() for r in table.rows)])
