"""`report ...` as typed in the shell and mailed to bot@: the grammar, page tokens in text,
files saved by the shell and attached to the mail answer."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from c2bot.bot.commands import changes_something, run_line
from c2bot.bot.services import Services
from c2bot.bot.shell import answer
from c2bot.config.settings import Settings
from c2bot.handlers.reports import PAGE_SIZE
from c2bot.storage.models import Channel
from tests.conftest import World, test_settings
from tests.handlers.test_reports import context, seed_calls
from tests.support.mail import MailSink, build_mail, running_gateway, running_sink, send_mail

NOVEMBER = "from:2026-11-01 to:2026-11-30"


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    async with running_sink() as relay:
        yield relay


@pytest.fixture
def settings(database_url: str, sink: MailSink, tmp_path: Path) -> Settings:
    return test_settings(
        database_url,
        C2_SMTP_RELAY=f"127.0.0.1:{sink.port}",
        C2_EXPORTS_DIR=str(tmp_path / "exports"),
    )


def _read(path: Path) -> bytes:
    return path.read_bytes()


def test_report_lines_change_nothing() -> None:
    """Every report verb only reads: by mail it runs at once, without a confirmation."""
    for line in ("report cdr week", "report summary month export", "report chart", "report help"):
        assert not changes_something(line)
    assert not changes_something("report recording 1234")


async def test_text_pages_name_the_next_page(services: Services, world: World) -> None:
    """Each text page ends with the command for the next; following them shows every call once."""
    calls = await seed_calls(services)
    ctx = context(services, world.staff)
    line = f"report cdr {NOVEMBER}"
    numbers: list[str] = []
    while True:
        reply = (await run_line(ctx, line)).reply
        assert reply.table is not None
        numbers += [row[2] for row in reply.table.rows]
        if "Next page:" not in reply.text:
            break
        line = reply.text.split("Next page: `")[1].rstrip("`")
        assert "page:" in line and "from:2026-11-01" in line
    assert len(numbers) == len(calls.rows) == len(set(numbers))
    assert len(calls.rows) > 2 * PAGE_SIZE


async def test_grammar_refusals(services: Services, world: World) -> None:
    """Two periods, an unknown group or direction are explained, not guessed."""
    ctx = context(services, world.staff)
    text, refused = await answer(ctx, "report summary week month")
    assert refused and "one period" in text
    text, refused = await answer(ctx, "report summary group:planet")
    assert refused and "group must be one of" in text
    text, refused = await answer(ctx, "report cdr direction:sideways")
    assert refused and "direction must be one of" in text
    text, refused = await answer(ctx, "report summary account:2001")
    assert not refused and "account 2001" in text


async def test_shell_saves_the_export_and_names_the_path(
    services: Services, world: World, settings: Settings
) -> None:
    """`report summary ... export` in the shell writes the CSV under C2_EXPORTS_DIR."""
    await seed_calls(services)
    ctx = context(services, world.staff, Channel.SHELL)
    text, refused = await answer(ctx, f"report summary {NOVEMBER} group:day export")
    assert not refused
    saved = Path(text.split("Saved: ")[1].strip())
    assert saved.parent == settings.exports_dir.resolve()
    rows = list(csv.DictReader(io.StringIO(_read(saved).decode())))
    assert rows[-1]["Day"] == "Total" and len(rows) == 5  # 2-5 November in Amsterdam, and Total
    text, _ = await answer(ctx, f"report summary {NOVEMBER} group:day export")
    again = Path(text.split("Saved: ")[1].strip())
    assert again != saved and _read(again) == _read(saved)


async def test_bot_mail_answer_carries_the_csv(
    services: Services, world: World, sink: MailSink
) -> None:
    """`report cdr ... export` mailed to bot@ by a customer's contact: the CSV is attached."""
    calls = await seed_calls(services)
    async with running_gateway(services) as (gateway, _outbox):
        subject = f"report cdr {NOVEMBER} export"
        raw = build_mail(sender="jan@acme.nl", to="bot@c2.test", subject=subject, body="")
        reply = await send_mail(gateway.port, "jan@acme.nl", ["bot@c2.test"], raw)
        assert reply.code == 250
        mail = await sink.wait_for(lambda m: m.recipients == ("jan@acme.nl",))
    assert "CSV attached" in mail.text
    (attachment,) = list(mail.message.iter_attachments())
    assert attachment.get_filename() == "cdr-20261101.csv"
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    mine = [r for r in calls.rows if r["account_id"] == calls.accounts["1001"]]
    assert len(rows) == len(mine) + 1 and rows[-1]["Date"] == "Total"
    assert Decimal(rows[-1]["Debit"]) == sum(r["debit"] for r in mine)
