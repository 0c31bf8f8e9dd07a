"""Number porting in the shell (`c2bot shell`): the same words, files read and written locally."""

from __future__ import annotations

import io
from pathlib import Path

import pypdf
from sqlalchemy import func, select

from c2bot.bot.services import Services
from c2bot.bot.shell import run_shell, shell_actor, shell_context
from c2bot.storage.models import Did, PortRequest, PortState
from tests.conftest import World
from tests.porting.conftest import Clock, signed_pdf

NEW = (
    'port new account:1001 company:"Acme BV" contact:"Jan Jansen" street:Dorpsstraat house:12 '
    'postcode:1234AB city:Amsterdam donor:KPN numbers:"0201234567,0301234500+100" '
    "date:2026-12-07"
)


async def shell(
    services: Services, lines: list[str], as_user: str | None = None
) -> tuple[int, str]:
    ctx = shell_context(services, await shell_actor(services, as_user))
    out = io.StringIO()
    status = await run_shell(ctx, lines, out, interactive=False)
    return status, out.getvalue()


async def test_the_operator_runs_a_port_from_request_to_dids(
    services: Services, world: World, clock: Clock, tmp_path: Path
) -> None:
    """new, letter (a PDF file), sign (a file), status ... completed: the numbers are DIDs."""
    letter, signed = tmp_path / "letter.pdf", tmp_path / "signed.pdf"
    signed.write_bytes(signed_pdf())
    status, out = await shell(
        services,
        [
            NEW,
            f"port letter 1 file:{letter}",
            f"port sign 1 file:{signed}",
            "port status 1 accepted",
            "port status 1 scheduled date:2026-12-08",
            "port status 1 completed",
            "port show 1",
        ],
    )
    assert status == 0, out
    assert "Port request #1 made: +31201234567 and 1 more (101 in all)." in out
    assert f"Letter of authorisation for port request #1 written to {letter}." in out
    assert "Signed letter kept; port request #1 is submitted." in out
    assert "Port request #1 is now completed." in out
    assert "route did set NUMBER TYPE DESTINATION" in out
    assert "History:" in out and "done (Opgeleverd)" in out
    text = pypdf.PdfReader(io.BytesIO(letter.read_bytes())).pages[0].extract_text()
    assert "Acme BV" in text and "+31 30 123 4500 to +31 30 123 4599" in text
    async with services.sessions() as session:
        port = await session.get(PortRequest, 1)
        dids = await session.scalar(select(func.count()).select_from(Did))
    assert port is not None and port.state is PortState.COMPLETED and dids == 101


async def test_a_customer_in_the_shell_gets_the_same_refusals(
    services: Services, world: World, clock: Clock, tmp_path: Path
) -> None:
    """A staff-only step, a missing file and a foreign number are refused; the exit status is 1."""
    status, out = await shell(
        services,
        [
            NEW.replace("account:1001 ", ""),
            "port status 1 accepted",
            "port sign 1",
            f"port sign 1 file:{tmp_path / 'nowhere.pdf'}",
            NEW.replace("0201234567,", "+3225551234,").replace("account:1001 ", ""),
        ],
        as_user="UCUST",
    )
    assert status == 1
    assert "Port request #1 made" in out
    assert "Only support staff can change the state of a port request" in out
    assert "Give the signed letter: port sign 1 file:PATH." in out
    assert "Cannot read" in out and "nowhere.pdf" in out
    assert "+3225551234 is a number in Belgium, not NL" in out
