"""`/report` in Slack: signed slash commands, files uploaded with files upload v2 to the
conversation they came from, and the "Next page" button of the CDR list."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from PIL import Image

from c2bot.bot.slack.report_actions import NEXT_PAGE
from c2bot.handlers.reports import PAGE_SIZE
from tests.bot.slack.conftest import SlackDriver, shown
from tests.conftest import World
from tests.handlers.test_reports import View, expected, seed_calls
from tests.support.slack import block_actions_payload

NOVEMBER = "from:2026-11-01 to:2026-11-30"


def table_rows(text: str) -> list[str]:
    """The call rows of the monospace table blocks (each begins with its date)."""
    blocks = text.split("```")[1::2]
    return [line for block in blocks for line in block.splitlines() if line.startswith("2026-")]


async def test_summary_export_is_uploaded_to_the_channel(bot: SlackDriver, world: World) -> None:
    """Staff's `/report summary ... export`: the table answers, the CSV lands in the channel."""
    calls = await seed_calls(bot.services)
    answer = await bot.answer_to(f"summary {NOVEMBER} export", "USTAFF", command="/report")
    assert "Call summary of all accounts" in shown(answer)
    await bot.slack.wait_for("files.completeUploadExternal")
    (upload,) = bot.slack.uploads.values()
    assert upload.channel_id == "C0CMDS" and upload.filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(upload.data.decode())))
    want = expected(calls.rows, lambda r: 0, lambda r: True, View.CARRIER)[0]
    assert rows[-1]["Account"] == "Total" and Decimal(rows[-1]["Debit"]) == want.debit


async def test_chart_png_is_posted(bot: SlackDriver, world: World) -> None:
    """A customer's chart arrives as a PNG Pillow can open."""
    await seed_calls(bot.services)
    await bot.answer_to(f"chart {NOVEMBER}", "UCUST", command="/report")
    await bot.slack.wait_for("files.completeUploadExternal")
    (upload,) = bot.slack.uploads.values()
    assert Image.open(io.BytesIO(upload.data)).format == "PNG"


async def test_upload_falls_back_to_a_dm_where_the_bot_may_not_post(
    bot: SlackDriver, world: World
) -> None:
    """When the channel refuses the file (bot not in it), it goes to the asker's DM."""
    await seed_calls(bot.services)
    bot.slack.fail_next("files.completeUploadExternal", "not_in_channel")
    await bot.answer_to(f"cdr {NOVEMBER} export", "URES", command="/report")
    await bot.slack.wait_for("conversations.open")
    await bot.door.drain()
    (upload,) = bot.slack.uploads.values()
    assert upload.channel_id != "C0CMDS" and upload.filename == "cdr-20261101.csv"


async def test_next_page_button_shows_the_next_calls(bot: SlackDriver, world: World) -> None:
    """Page 1 comes with a Next page button; pressing it shows page 2 with other calls."""
    await seed_calls(bot.services)
    first = await bot.answer_to(f"cdr {NOVEMBER}", "USTAFF", command="/report")
    assert "page 1" in shown(first)
    offer = await bot.slack.wait_for(
        "response_url", lambda c: any(b.get("block_id") == NEXT_PAGE for b in c.params["blocks"])
    )
    (button,) = offer.params["blocks"][0]["elements"]
    assert "page:" in button["value"]
    before = len(bot.slack.calls_to("response_url"))
    response_url = bot.slack.response_url()
    payload = block_actions_payload("USTAFF", NEXT_PAGE, button["value"], response_url=response_url)
    payload["actions"][0]["value"] = button["value"]
    assert (await bot.interact(payload)).status_code == 200
    second = (await bot.next_call("response_url", before)).params
    text = shown(second)
    assert "page 2" in text
    first_rows, second_rows = table_rows(shown(first)), table_rows(text)
    assert len(first_rows) == PAGE_SIZE and not set(first_rows) & set(second_rows)
