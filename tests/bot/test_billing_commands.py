"""`/c2 order` and `/c2 invoice` through the shared grammar (the same words in Slack, the shell
and by mail), and `c2bot invoices generate` as an operator runs it."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import select

from c2bot.bot.commands import changes_something, run_line
from c2bot.bot.render import reply_text
from c2bot.bot.services import Services
from c2bot.handlers import invoices
from c2bot.handlers.context import Actor, Context
from c2bot.handlers.errors import NotAllowed, NotFound, Refusal
from c2bot.storage.db import create_engine, session_factory
from c2bot.storage.models import Account, CallRecord, Channel, Did, Order, OrderStatus
from tests.conftest import World

DECEMBER = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
C2BOT = [sys.executable, "-m", "c2bot.bot.cli"]


def ctx(services: Services, actor: Actor) -> Context:
    return replace(services.context(actor, Channel.SHELL), clock=lambda: DECEMBER)


async def say(services: Services, actor: Actor, line: str) -> str:
    reply = (await run_line(ctx(services, actor), line)).reply
    return " ".join(reply_text(reply).split())


async def refused(services: Services, actor: Actor, line: str) -> Refusal:
    with pytest.raises(Refusal) as caught:
        await run_line(ctx(services, actor), line)
    return caught.value


async def some_billing(services: Services) -> None:
    """1001 made one call in November and has a number; an order is being processed."""
    async with services.sessions.begin() as session:
        acme = await session.scalar(select(Account).where(Account.number == "1001"))
        assert acme is not None
        session.add_all(
            [
                CallRecord(
                    uuid="nov-1",
                    account_id=acme.id,
                    reseller_id=acme.reseller_id,
                    started_at=datetime(2026, 11, 9, 10, 0, tzinfo=UTC),
                    called_number="+3220000000",
                    direction="outbound",
                    call_type="STANDARD",
                    billsec=61,
                    code="32",
                    destination="Belgium",
                    debit=Decimal("0.25"),
                    carrier_debit=Decimal("0.20"),
                ),
                Did(
                    number="+31201230000",
                    account_id=acme.id,
                    created_at=datetime(2026, 10, 1, tzinfo=UTC),
                    monthly_fee=Decimal("2"),
                ),
                Order(
                    reference="ORD-000777",
                    account_id=acme.id,
                    kind="other",
                    description="SIP trunk with 10 channels",
                    status=OrderStatus.PROCESSING,
                    setup_fee=Decimal("40"),
                    monthly_fee=Decimal("15"),
                ),
            ]
        )


async def test_orders_and_invoices_by_message(services: Services, world: World) -> None:
    await some_billing(services)
    listed = await say(services, world.customer, "c2 order list")
    assert "1 order(s)" in listed and "ORD-000777" in listed and "processing" in listed
    shown = await say(services, world.reseller, "c2 order show ORD-000777")
    assert "Order ORD-000777: SIP trunk with 10 channels" in shown
    assert "Setup fee EUR 40.00" in shown and "Monthly fee EUR 15.00" in shown
    assert "No orders." in await say(services, world.customer, "c2 order list status:delivered")
    assert isinstance(await refused(services, world.other, "c2 order show 777"), NotFound)

    assert "No invoices." in await say(services, world.customer, "c2 invoice list")
    await invoices.generate(ctx(services, world.staff), "2026-11")
    listed = await say(services, world.customer, "c2 invoice list month:2026-11")
    assert "1 invoice(s)" in listed and "R100-2026-000001" in listed and "Resell BV" in listed
    # 0.25 + 2.00 = 2.25; VAT 0.4725 -> 0.47; total 2.72
    outcome = await run_line(ctx(services, world.customer), "c2 invoice show R100-2026-000001")
    reply = outcome.reply
    assert reply.title == "Invoice R100-2026-000001: EUR 2.72 for 2026-11"
    assert ("Subtotal", "EUR 2.25") in reply.fields and ("VAT 21%", "EUR 0.47") in reply.fields
    pdf, calls = reply.files
    assert "EUR 2.72" in pypdf.PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    rows = list(csv.reader(io.StringIO(calls.data.decode())))
    assert len(rows) == 3 and rows[1][2] == "+3220000000" and rows[-1][0] == "Total"

    refusal = await refused(services, world.other, "c2 invoice show R100-2026-000001")
    assert isinstance(refusal, NotFound)
    refusal = await refused(services, world.customer, "c2 invoice list account:2001")
    assert isinstance(refusal, NotAllowed)
    assert "month must be" not in await say(services, world.staff, "c2 invoice list month:2026-11")
    bad = await refused(services, world.staff, "c2 invoice list month:november")
    assert "give a month as YYYY-MM" in bad.message


async def test_help_and_reading_changes_nothing(services: Services, world: World) -> None:
    helped = await say(services, world.customer, "c2 invoice help")
    assert "c2 invoice list [account:" in helped and "c2 invoice show NUMBER" in helped
    helped = await say(services, world.customer, "c2 order help")
    assert "c2 order show REFERENCE" in helped and "status:new|processing|delivered" in helped
    for line in ("c2 order list", "c2 order show ORD-000001", "c2 invoice show INV-2026-000001"):
        assert not changes_something(line)
    overview = await say(services, world.customer, "c2 help")
    assert "c2 order:" in overview and "c2 invoice:" in overview
    refusal = await refused(services, world.customer, "c2 invoice generate")
    assert "no verb 'generate'" in refusal.message


# --- the operator's command -----------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("C2_", "SLACK_"))}
    clean.update(
        {
            "C2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c2.db'}",
            "C2_CONFIG": str(tmp_path / "c2bot.toml"),
            "C2_MAIL_DOMAIN": "c2.test",
            "C2_VAT_RATE": "10",
            "C2_CURRENCY": "USD",
        }
    )
    return clean


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*C2BOT, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False
    )


async def _a_call_in_january_2025(url: str) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            account = await session.scalar(select(Account).where(Account.number == "5001"))
            assert account is not None
            session.add(
                CallRecord(
                    uuid="jan-1",
                    account_id=account.id,
                    started_at=datetime(2025, 1, 15, 12, 0, tzinfo=UTC),
                    direction="outbound",
                    call_type="STANDARD",
                    billsec=30,
                    code="49",
                    destination="Germany",
                    debit=Decimal("1.234567"),
                    carrier_debit=Decimal("1.234567"),
                )
            )
    finally:
        await engine.dispose()


def test_invoices_generate_from_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    """Made once; the second run says nothing changed; a bad month is refused."""
    assert run(env, tmp_path, "db", "upgrade").returncode == 0
    added = run(env, tmp_path, "account", "add", "5001", "--company", "Solo BV", "--email",
                "info@solo.nl", "--timezone", "UTC")  # fmt: skip
    assert added.returncode == 0, added.stderr
    asyncio.run(_a_call_in_january_2025(env["C2_DATABASE_URL"]))

    first = run(env, tmp_path, "invoices", "generate", "--month", "2025-01")
    assert first.returncode == 0, first.stderr
    assert "Invoices 2025-01: 1 made." in first.stdout
    assert "Made: INV-" in first.stdout and "-000001" in first.stdout
    again = run(env, tmp_path, "invoices", "generate", "--month", "2025-01", "--account", "5001")
    assert again.returncode == 0, again.stderr
    assert "Invoices 2025-01: nothing changed (1 made before, left as they are)." in again.stdout
    bad = run(env, tmp_path, "invoices", "generate", "--month", "2025-1")
    assert bad.returncode == 1 and "give a month as YYYY-MM" in bad.stderr

    shown = subprocess.run(
        [*C2BOT, "shell"],
        input="c2 invoice list\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    # 1.234567 -> 1.23; VAT 10% 0.123 -> 0.12; total 1.35
    assert "USD 1.35" in shown.stdout and "5001" in shown.stdout, shown.stdout + shown.stderr
