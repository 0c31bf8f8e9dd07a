"""`c2bot fax allow` and `c2bot fax send` as an operator runs them, on the test database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from c2bot.bot.cli import main
from c2bot.bot.services import Services
from c2bot.handlers import fax
from c2bot.storage.models import FaxDocument, FaxJob, FaxRequest, FaxSender
from tests.conftest import World

PDF = b"%PDF-1.4\n% two pages, rendered later\n"


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, services: Services) -> None:
    """`c2bot` reads its settings from the environment: point it at the test database."""
    settings = services.settings
    monkeypatch.setenv("C2_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("C2_MAIL_DOMAIN", settings.mail_domain)
    monkeypatch.setenv("C2_SECRET_KEY", "test-secret-key")


async def c2bot(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `c2bot ARGS` (its own event loop, in a thread) and return status, stdout, stderr."""
    status = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return status, out, err


async def test_fax_allow_prints_the_smtp_password_once(
    services: Services, world: World, operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fax allow EMAIL --account N --smtp-password` authorises it and prints a working password."""
    status, out, err = await c2bot(
        capsys, "fax", "allow", "Scanner@Acme.nl", "--account", "1001", "--smtp-password"
    )
    assert status == 0, err
    assert "scanner@acme.nl may now send faxes for account 1001." in out
    line = next(line for line in out.splitlines() if line.startswith("SMTP password"))
    password = line.split()[-1]
    async with services.sessions() as session:
        sender = await session.scalar(select(FaxSender))
    assert sender is not None and sender.email == "scanner@acme.nl"
    assert fax.password_matches(sender.smtp_password_hash, password)
    status, _, err = await c2bot(capsys, "fax", "allow", "scanner@acme.nl", "--account", "2001")
    assert status == 1 and "already sends faxes for account 1001" in err


async def test_fax_send_reads_files_and_prints_the_jobs(
    services: Services,
    world: World,
    operator_env: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """`fax send NUMBERS FILE... --account N --text` queues one job per number, files in order."""
    letter, notes = tmp_path / "letter.pdf", tmp_path / "notes.txt"
    letter.write_bytes(PDF)
    notes.write_text("Order 42\n")
    status, out, err = await c2bot(
        capsys,
        "fax",
        "send",
        "0201234567,+3225551234",
        str(letter),
        str(notes),
        "--account",
        "1001",
        "--text",
        "Cover note",
    )
    assert status == 0, err
    async with services.sessions() as session:
        jobs = list(await session.scalars(select(FaxJob).order_by(FaxJob.id)))
        documents = list(await session.scalars(select(FaxDocument).order_by(FaxDocument.position)))
        request = await session.scalar(select(FaxRequest))
    assert out.splitlines() == [
        f"fax #{jobs[0].id} to +31201234567 queued",
        f"fax #{jobs[1].id} to +3225551234 queued",
    ]
    assert [(d.filename, d.content_type, d.data) for d in documents] == [
        ("letter.pdf", "application/pdf", PDF),
        ("notes.txt", "text/plain", b"Order 42\n"),
    ]
    assert request is not None and request.cover_text == "Cover note"


async def test_fax_send_refusals(
    services: Services,
    world: World,
    operator_env: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A premium-rate number, a missing file and nothing to send each end with status 1."""
    letter = tmp_path / "letter.pdf"
    letter.write_bytes(PDF)
    status, _, err = await c2bot(
        capsys, "fax", "send", "+319091234567", str(letter), "--account", "1001"
    )
    assert status == 1 and "is a premium-rate number" in err
    status, _, err = await c2bot(
        capsys, "fax", "send", "+31201234567", str(tmp_path / "absent.pdf"), "--account", "1001"
    )
    assert status == 1 and "absent.pdf" in err
    status, _, err = await c2bot(capsys, "fax", "send", "+31201234567", "--account", "1001")
    assert status == 1 and "There is nothing to fax" in err
    async with services.sessions() as session:
        assert await session.scalar(select(FaxJob.id)) is None


def test_fax_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    """`c2bot fax send --help` lists its arguments."""
    with pytest.raises(SystemExit) as done:
        main(["fax", "send", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    for word in ("NUMBER", "FILE", "--account", "--text", "--caller", "--caller-name"):
        assert word in out
