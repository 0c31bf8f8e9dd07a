"""The letter of authorisation: a PDF filled with the request, read back with pypdf; and the
signed letter that comes back, checked before it is kept."""

from __future__ import annotations

import io

import pypdf
import pytest
from PIL import Image

from c2bot.bot.services import Services
from c2bot.handlers import porting
from c2bot.handlers.errors import Invalid
from c2bot.storage.models import Channel, PortState
from tests.conftest import World
from tests.porting.conftest import Clock, made, signed_pdf


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


async def test_the_letter_is_filled_with_the_request(
    services: Services, world: World, clock: Clock
) -> None:
    """Company, contact, address, donor, contract, every range in full, the date, the request."""
    view = await made(services, world.customer, contract="continue", company="Acme & Zn BV")
    ctx = services.context(world.customer, Channel.SLACK)
    filename, pdf = await porting.letter_for(ctx, view.number)
    assert filename == f"letter-of-authorisation-port-{view.number}.pdf"
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    for expected in (
        "Letter of authorisation for number porting",
        f"Port request #{view.number}, made on Monday 30 November 2026",
        "Acme & Zn BV",
        "Jan Jansen",
        "Dorpsstraat 12 A",
        "1234AB Amsterdam",
        "KPN",
        "KPN-4711",
        "continue: other services of the contract with the current operator go on",
        "+31 20 123 4567",
        "+31 30 123 4500 to +31 30 123 4599",
        "Total",
        "101",
        "Desired porting date: Monday 7 December 2026",
        "authorises the new operator to request their porting from",
        "Signature",
        f"/port sign {view.number}",
    ):
        assert expected in text, f"{expected!r} is not in the letter:\n{text}"
    metadata = pypdf.PdfReader(io.BytesIO(pdf)).metadata
    assert metadata is not None and metadata.title == (
        f"Letter of authorisation, port request #{view.number}"
    )


async def test_a_long_request_runs_onto_more_pages(
    services: Services, world: World, clock: Clock
) -> None:
    numbers = ", ".join(f"0201234{n:03d}" for n in range(0, 120, 2))
    view = await made(services, world.customer, numbers=numbers)
    ctx = services.context(world.customer, Channel.SHELL)
    _, pdf = await porting.letter_for(ctx, view.number)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 2
    assert "+31 20 123 4118" in pdf_text(pdf) and "Signature" in reader.pages[-1].extract_text()


def test_a_signed_letter_must_be_a_readable_pdf_or_picture() -> None:
    """Empty, a Word file, a broken PDF: refused in words. A PDF, JPEG and PNG pass."""

    def problem(name: str, data: bytes) -> str:
        with pytest.raises(Invalid) as caught:
            porting.check_signed_file(porting.SignedLetter(name, "application/pdf", data))
        return caught.value.message

    assert problem("empty.pdf", b"") == "empty.pdf is empty."
    assert problem("letter.docx", b"PK\x03\x04 word") == (
        "letter.docx is not a PDF, JPEG or PNG; scan or photograph the signed letter."
    )
    assert problem("broken.pdf", b"%PDF-1.4\nnot really") == (
        "broken.pdf cannot be read as a PDF; send it again."
    )
    photo = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(photo, "JPEG")
    picture = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(picture, "PNG")
    for data, kind in (
        (signed_pdf(), "application/pdf"),
        (photo.getvalue(), "image/jpeg"),
        (picture.getvalue(), "image/png"),
    ):
        assert porting.check_signed_file(porting.SignedLetter("x", "", data)) == kind


async def test_the_letter_is_sent_again_for_a_draft_but_not_every_minute(
    services: Services, world: World, clock: Clock
) -> None:
    view = await made(services, world.customer)
    ctx = services.context(world.customer, Channel.EMAIL)
    with pytest.raises(Invalid) as caught:
        await porting.send_letter_again(ctx, view.number)
    assert caught.value.message.startswith(
        f"The letter for port request #{view.number} was sent 1 minute(s) ago to jan@acme.nl"
    )
    clock.advance(minutes=15)
    again = await porting.send_letter_again(ctx, view.number)
    assert again.state is PortState.DRAFT
    letter = porting.SignedLetter("signed.pdf", "application/pdf", signed_pdf())
    await porting.sign_port(ctx, view.number, letter)
    with pytest.raises(Invalid) as signed:
        await porting.send_letter_again(ctx, view.number)
    assert signed.value.message == (
        f"Port request #{view.number} is submitted: its signed letter is in already."
    )
