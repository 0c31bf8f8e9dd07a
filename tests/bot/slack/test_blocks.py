"""Replies rendered as Block Kit stay within Slack's limits."""

from __future__ import annotations

from c2bot.bot.slack.blocks import (
    FIELDS_PER_SECTION,
    MAX_BLOCKS,
    SECTION_TEXT_MAX,
    chunks,
    escape,
    reply_blocks,
)
from c2bot.handlers.replies import Reply, Table


def test_title_fields_text_and_table_in_order() -> None:
    """A reply becomes title, fields, prose and a code-block table, in that order."""
    reply = Reply(
        title="Case #1: <b>",
        text="a & b",
        fields=(("Status", "open"),),
        table=Table(("Case", "Subject"), (("#1", "x"),)),
    )
    blocks = reply_blocks(reply)
    assert blocks[0]["text"]["text"] == "Case #1: &lt;b&gt;"
    assert blocks[1]["fields"][0]["text"] == "*Status*\nopen"
    assert blocks[2]["text"]["text"] == "a &amp; b"
    assert blocks[3]["text"]["text"].startswith("```\nCase  Subject\n")
    assert blocks[3]["text"]["text"].endswith("\n```")


def test_eleven_fields_make_two_sections() -> None:
    """Section fields are capped at ten per section."""
    fields = tuple((f"F{i}", str(i)) for i in range(11))
    sections = reply_blocks(Reply(title="t", fields=fields))[1:]
    assert [len(s["fields"]) for s in sections] == [FIELDS_PER_SECTION, 1]


def test_long_text_and_tables_split_under_the_limit() -> None:
    """Text and table blocks never exceed 3000 characters and tables split between rows."""
    rows = tuple((f"#{i}", "subject " * 8) for i in range(200))
    blocks = reply_blocks(Reply(title="x" * 7000, table=Table(("Case", "Subject"), rows)))
    texts = [b["text"]["text"] for b in blocks]
    assert all(len(text) <= SECTION_TEXT_MAX for text in texts)
    code = [t for t in texts if t.startswith("```")]
    assert len(code) > 1
    assert all(t.endswith("```") for t in code)
    assert sum(t.count("#") for t in code) == 200


def test_at_most_fifty_blocks_with_a_note() -> None:
    """A reply longer than 50 blocks is cut, and the last block says so."""
    blocks = reply_blocks(Reply(title="line\n" * 100_000))
    assert len(blocks) == MAX_BLOCKS
    assert blocks[-1]["type"] == "context"


def test_chunks_keep_lines_whole_when_they_fit() -> None:
    """chunks() cuts at line ends, and hard-cuts only a line longer than the limit."""
    assert chunks("aa\nbb\ncc", 5) == ["aa\nbb", "cc"]
    assert chunks("abcdefg", 3) == ["abc", "def", "g"]
    assert chunks("", 3) == []
    assert escape("<@U1> & co") == "&lt;@U1&gt; &amp; co"


def test_bot_token_goes_only_to_slack_hosts() -> None:
    """Files outside Slack (or our configured API host) never get the bot token."""
    from c2bot.bot.slack.files import slack_hosted

    api = "http://127.0.0.1:9999/api/"
    assert slack_hosted("https://files.slack.com/files-pri/T1-F1/a.pdf", api)
    assert slack_hosted("http://127.0.0.1:9999/files/F1/a.pdf", api)
    assert not slack_hosted("https://evil.example/a.pdf", api)
    assert not slack_hosted("https://files.slack.com.evil.example/a.pdf", api)
