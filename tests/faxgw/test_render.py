"""Fax rendering: every kind of input becomes TIFF-F that spandsp sends, hostile input a refusal."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pypdf
import pytest
from PIL import Image

from c2bot.faxgw import render, sandbox
from c2bot.faxgw.render import (
    SUPPORTED,
    CoverPage,
    Document,
    RenderOptions,
    RenderRefused,
    RenderSpoolError,
    close_renderers,
    detect_type,
    preview_png,
    received_to_pdf,
    render_fax,
    tiff_pages,
)
from tests.conftest import missing_server
from tests.data import make_corpus
from tests.support import spandsp

DATA = Path(__file__).parents[1] / "data"
RX_FAX = Path(__file__).parents[1] / "fixtures" / "freeswitch" / "rx_fax.tif"


def corpus(name: str, content_type: str = "application/octet-stream") -> Document:
    return Document(name, content_type, (DATA / name).read_bytes())


def sent_by_spandsp(tiff: Path, pages: int) -> None:
    """Two real spandsp fax machines exchange the file; every page must arrive."""
    if not spandsp.available():
        missing_server("libspandsp.so.2")
    result = spandsp.transmit(tiff, max_seconds=3600)
    assert result.success, (result.code, result.text)
    assert result.pages_transferred == pages


def assert_tiff_f(tiff: Path, pages: int, y_dpi: int = 196, compression: int = 4) -> None:
    """What TIFF-F and spandsp want on every page: 1-bit, 1728 wide, min-is-white, MSB first,
    one strip, 204 x 196/98 dpi in inches, PageNumber n of total."""
    with Image.open(tiff) as image:
        assert getattr(image, "n_frames", 1) == pages
        for number in range(pages):
            image.seek(number)
            tags = image.tag_v2  # type: ignore[attr-defined]
            assert image.mode == "1" and image.width == 1728
            assert tags[259] == compression and tags[262] == 0 and tags[266] == 1
            assert (float(tags[282]), float(tags[283]), tags[296]) == (204.0, y_dpi, 2)
            assert tags[297] == (number, pages) and len(tags[273]) == 1


async def test_text_pdf_becomes_tiff_f_that_spandsp_sends(tmp_path: Path) -> None:
    """A 3-page Letter PDF renders to 3 fine G4 pages, 2292 lines (A4), accepted by spandsp."""
    result = await render_fax([corpus("letter-3.pdf")], tmp_path / "out.tif")
    assert result.pages == 3 and result.path == tmp_path / "out.tif"
    assert_tiff_f(result.path, 3)
    with Image.open(result.path) as image:
        assert image.height == 2292
    sent_by_spandsp(result.path, 3)


async def test_text_stays_clean_and_grey_gets_clustered_dots(tmp_path: Path) -> None:
    """Text pixels are thresholded (no dots on paper), the 50 % grey box becomes a dot pattern
    of about half ink, and white paper stays spotless."""
    result = await render_fax([corpus("letter-3.pdf")], tmp_path / "out.tif")
    with Image.open(result.path) as image:
        page = image.convert("L")
    margin = page.crop((0, 0, 1728, 100))
    assert margin.getextrema() == (255, 255)
    # the grey box sits 50-250 pt from the left and 50-150 pt from the bottom of the page
    box = page.crop((300, 1900, 600, 2050))
    ink = box.histogram()[0] / (box.width * box.height)
    assert 0.35 < ink < 0.65
    assert _runs_longer_than_one(box)


def _runs_longer_than_one(box: Image.Image) -> bool:
    """Clustered dots make runs of several pixels; error diffusion makes mostly 1-pixel runs."""
    row = [box.getpixel((x, box.height // 2)) for x in range(box.width)]
    runs, length = [], 1
    for left, right in itertools.pairwise(row):
        if left == right:
            length += 1
        else:
            runs.append(length)
            length = 1
    return sum(runs) / len(runs) >= 3


async def test_normal_resolution_and_g3(tmp_path: Path) -> None:
    """204x98 halves the lines (1146 for A4); G3 2-D pages are accepted by spandsp too."""
    options = RenderOptions(resolution="normal", compression="g3")
    result = await render_fax([corpus("letter-3.pdf")], tmp_path / "out.tif", options)
    assert_tiff_f(result.path, 3, y_dpi=98, compression=3)
    with Image.open(result.path) as image:
        assert image.height == 1146
        assert image.tag_v2[292] == 5  # type: ignore[attr-defined]
    sent_by_spandsp(result.path, 3)


async def test_letter_paper(tmp_path: Path) -> None:
    """Letter paper is 11 inches: 2156 lines at fine."""
    result = await render_fax(
        [corpus("chart.gif")], tmp_path / "out.tif", RenderOptions(paper="letter")
    )
    with Image.open(result.path) as image:
        assert image.size == (1728, 2156)


@pytest.mark.parametrize("name", ["landscape.pdf", "rotated.pdf", "landscape.png"])
async def test_landscape_pages_turn_to_fit(tmp_path: Path, name: str) -> None:
    """A wide page is turned a quarter: its long side runs down the fax page, using its height."""
    result = await render_fax([corpus(name)], tmp_path / "out.tif")
    with Image.open(result.path) as image:
        ink = Image.eval(image.convert("L"), lambda v: 255 - v).getbbox()
    assert ink is not None
    left, top, right, bottom = ink
    assert bottom - top > right - left
    sent_by_spandsp(result.path, 1)


async def test_landscape_image_bar_runs_down_the_page(tmp_path: Path) -> None:
    """The black bar along the top edge of a wide image ends up as a vertical bar."""
    result = await render_fax([corpus("landscape.png")], tmp_path / "out.tif")
    with Image.open(result.path) as image:
        page = image.convert("L")
    column_ink = [page.crop((x, 0, x + 1, page.height)).histogram()[0] for x in range(page.width)]
    assert max(column_ink) > 0.5 * page.height


async def test_images_text_and_cover_in_mail_order(tmp_path: Path) -> None:
    """Cover first, then each document in order: a JPEG photo, a GIF, a 3-page TIFF scan and a
    text file that wraps onto two pages: 1 + 1 + 1 + 3 + 2 pages, all sent by spandsp."""
    text = ("A long line of words that must wrap at eighty columns, " * 6 + "\n") * 20
    documents = [
        corpus("photo.jpg", "image/jpeg"),
        corpus("chart.gif", "image/gif"),
        corpus("scan-3.tif", "image/tiff"),
        Document("note.txt", "text/plain", text.encode()),
    ]
    cover = CoverPage(
        to="+31 20 123 4567", sender="jan@acme.nl", subject="Order", text="Hello", date="2026-01-01"
    )
    result = await render_fax(documents, tmp_path / "out.tif", cover=cover)
    assert result.pages == 8
    assert_tiff_f(result.path, 8)
    assert tiff_pages(result.path) == 8
    sent_by_spandsp(result.path, 8)


async def test_cover_page_alone_and_long_cover_text(tmp_path: Path) -> None:
    """A Web2Fax text with no file is a cover page; a long text continues on more pages."""
    short = CoverPage(to="a", sender="b", subject="c", text="Just this.", date="today")
    result = await render_fax([], tmp_path / "one.tif", cover=short)
    assert result.pages == 1
    long = CoverPage(to="a", sender="b", subject="c", text="line\n" * 150, date="today")
    result = await render_fax([], tmp_path / "more.tif", cover=long)
    assert result.pages == 3
    sent_by_spandsp(result.path, 3)


async def test_text_form_feed_starts_a_page(tmp_path: Path) -> None:
    """A form feed in plain text starts a new page."""
    document = Document("two.txt", "text/plain", b"page one\n\fpage two\n")
    result = await render_fax([document], tmp_path / "out.tif")
    assert result.pages == 2


async def test_photo_is_halftoned_not_diffused(tmp_path: Path) -> None:
    """A photo page: mid-tones become clustered dots (long runs), and spandsp sends it."""
    document = Document("photo.jpg", "image/jpeg", make_corpus.photo_jpeg())
    result = await render_fax([document], tmp_path / "out.tif")
    with Image.open(result.path) as image:
        assert _runs_longer_than_one(image.convert("L").crop((300, 800, 1400, 1400)))
    sent_by_spandsp(result.path, 1)


@pytest.mark.parametrize(
    ("name", "reason", "words"),
    [
        ("encrypted.pdf", "encrypted", "password-protected"),
        ("broken.pdf", "broken", "not a readable PDF"),
        ("zero-pages.pdf", "no-pages", "no pages"),
        ("bomb.png", "bomb", "pixels"),
        ("long-thin.png", "too-large", "40000 x 2 pixels"),
        ("program.exe", "unsupported-type", SUPPORTED),
        ("archive.zip", "unsupported-type", SUPPORTED),
        ("empty.pdf", "empty", "0 bytes"),
    ],
)
async def test_hostile_corpus_gets_specific_refusals(
    tmp_path: Path, name: str, reason: str, words: str
) -> None:
    """Each hostile file gets its own reason and a message naming the file."""
    with pytest.raises(RenderRefused) as refused:
        await render_fax([corpus(name)], tmp_path / "out.tif")
    assert refused.value.reason == reason
    assert refused.value.filename == name
    assert name in refused.value.message and words in refused.value.message
    assert not (tmp_path / "out.tif").exists()


async def test_office_document_without_libreoffice(tmp_path: Path) -> None:
    """Without LibreOffice a .docx is refused with the list of what we do take."""
    if shutil.which("soffice") or shutil.which("libreoffice"):
        pytest.skip("LibreOffice is installed here: the conversion path applies")
    with pytest.raises(RenderRefused) as refused:
        await render_fax([corpus("letter.docx")], tmp_path / "out.tif")
    assert refused.value.reason == "unsupported-type"
    assert SUPPORTED in refused.value.message


async def test_owner_password_only_pdf_is_faxed(tmp_path: Path) -> None:
    """A PDF encrypted with an empty user password opens for anyone, so it is faxed."""
    result = await render_fax([corpus("owner-only.pdf")], tmp_path / "out.tif")
    assert result.pages == 1


async def test_too_many_pages_counts_every_document(tmp_path: Path) -> None:
    """60 pages against the limit of 50 is refused, as is 2 x 3 pages against a limit of 5."""
    document = Document("long.pdf", "application/pdf", make_corpus.text_pdf(60, lines=2))
    with pytest.raises(RenderRefused) as refused:
        await render_fax([document], tmp_path / "out.tif")
    assert refused.value.reason == "too-many-pages" and "60 pages" in refused.value.message
    with pytest.raises(RenderRefused) as refused:
        await render_fax(
            [corpus("letter-3.pdf"), corpus("scan-3.tif")],
            tmp_path / "o.tif",
            RenderOptions(max_pages=5),
        )
    assert refused.value.reason == "too-many-pages" and refused.value.filename == "scan-3.tif"


async def test_memory_limit_turns_a_huge_image_into_a_refusal(tmp_path: Path) -> None:
    """A 9000 x 9000 RGB PNG (243 MB decoded) in a 150 MB job: out-of-memory, not a crash; the
    worker that hit the limit is replaced and the next job, with the usual limit, renders."""
    await render_fax([corpus("chart.gif")], tmp_path / "warm.tif")
    before = set(sandbox.shared_pool().pids())
    picture = Image.new("RGB", (9000, 9000), (200, 10, 10))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    document = Document("huge.png", "image/png", buffer.getvalue())
    with pytest.raises(RenderRefused) as refused:
        await render_fax([document], tmp_path / "out.tif", RenderOptions(memory_mb=150))
    assert refused.value.reason == "out-of-memory"
    assert refused.value.filename == "huge.png" and "150 MB" in refused.value.message
    after = set(sandbox.shared_pool().pids())
    assert len(after) == 2 and len(before - after) == 1
    result = await render_fax([corpus("letter-3.pdf")], tmp_path / "next.tif")
    assert result.pages == 3 and 0 < result.peak_memory_mb < 150


def slow_text(pages: int = 40) -> Document:
    """Plain text long enough to keep a worker busy for a good fraction of a second."""
    return Document("slow.txt", "text/plain", b"x\n" * 55 * pages)


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def child_pids() -> set[int]:
    """This process's children, from /proc (every thread's list: Popen runs in threads)."""
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            found.update(int(pid) for pid in (task / "children").read_text().split())
    return found


async def test_time_limit_kills_the_worker_and_names_the_file(tmp_path: Path) -> None:
    """A worker still busy at its job's deadline is killed, and the refusal is a timeout."""
    started = asyncio.get_running_loop().time()
    with pytest.raises(RenderRefused) as refused:
        await render_fax([slow_text()], tmp_path / "out.tif", RenderOptions(timeout=0.05))
    assert refused.value.reason == "timeout" and refused.value.filename == "slow.txt"
    assert "0.05 s" in refused.value.message
    assert asyncio.get_running_loop().time() - started < 5
    assert not (tmp_path / "out.tif").exists()


async def test_a_timeout_kills_only_its_own_worker(tmp_path: Path) -> None:
    """Two jobs at once on the two warm workers: the one past its deadline loses its worker
    (killed, replaced by a fresh one), the other finishes, and the next job renders."""
    await render_fax([corpus("chart.gif")], tmp_path / "warm.tif")
    pool = sandbox.shared_pool()
    before = set(pool.pids())
    assert len(before) == 2
    slow = render_fax([slow_text()], tmp_path / "slow.tif", RenderOptions(timeout=0.3))
    fine = render_fax([corpus("letter-3.pdf")], tmp_path / "fine.tif")
    outcomes = await asyncio.gather(slow, fine, return_exceptions=True)
    assert isinstance(outcomes[0], RenderRefused) and outcomes[0].reason == "timeout"
    assert not isinstance(outcomes[1], BaseException) and outcomes[1].pages == 3
    after = set(pool.pids())
    assert len(after) == 2 and len(before & after) == 1
    (killed,) = before - after
    assert not alive(killed)
    result = await render_fax([corpus("letter-3.pdf")], tmp_path / "next.tif")
    assert result.pages == 3
    sent_by_spandsp(result.path, 3)


async def test_cancelling_a_render_kills_its_worker(tmp_path: Path) -> None:
    """A caller that gives up (cancelled task) takes its worker down with it."""
    await render_fax([corpus("chart.gif")], tmp_path / "warm.tif")
    pool = sandbox.shared_pool()
    before = set(pool.pids())
    task = asyncio.ensure_future(render_fax([slow_text()], tmp_path / "slow.tif"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if len(before - set(pool.pids())) == 1:
            break
        await asyncio.sleep(0.05)
    (killed,) = before - set(pool.pids())
    assert not alive(killed)
    assert (await render_fax([corpus("chart.gif")], tmp_path / "next.tif")).pages == 1


async def test_close_renderers_leaves_no_child_process(tmp_path: Path) -> None:
    """close_renderers stops both warm workers and reaps them; rendering afterwards starts
    a new pool."""
    await render_fax([corpus("chart.gif")], tmp_path / "one.tif")
    workers = set(sandbox.shared_pool().pids())
    assert len(workers) == 2 and workers <= child_pids()
    await close_renderers()
    assert not workers & child_pids()
    assert not any(alive(pid) for pid in workers)
    await close_renderers()  # twice is harmless
    result = await render_fax([corpus("chart.gif")], tmp_path / "two.tif")
    assert result.pages == 1
    fresh = set(sandbox.shared_pool().pids())
    assert len(fresh) == 2 and not workers & fresh
    await close_renderers()
    assert not fresh & child_pids()


async def test_a_crashing_worker_is_a_refusal_not_a_crash() -> None:
    """A worker that fails without a result is reported as crashed, and replaced."""
    limits = sandbox.Limits(seconds=30, memory_mb=400)
    with pytest.raises(sandbox.SandboxFailed) as failed:
        await sandbox.run_job("no-such-task", {}, limits)
    assert failed.value.kind == "crashed" and "KeyError" in failed.value.detail
    assert len(sandbox.shared_pool().pids()) == 2


def test_detect_type_by_magic_bytes() -> None:
    """Magic bytes decide, whatever the name or declared type says."""
    assert detect_type("x.txt", "text/plain", (DATA / "letter-3.pdf").read_bytes()) == "pdf"
    assert (
        detect_type("scan", "application/octet-stream", (DATA / "scan-3.tif").read_bytes())
        == "tiff"
    )
    assert detect_type("a.pdf", "application/pdf", (DATA / "photo.jpg").read_bytes()) == "jpeg"
    assert detect_type("a.png", "image/png", (DATA / "chart.gif").read_bytes()) == "gif"
    assert detect_type("b.png", "", (DATA / "landscape.png").read_bytes()) == "png"
    assert detect_type("a.docx", "", (DATA / "letter.docx").read_bytes()) == "docx"
    assert detect_type("a.docx", "", (DATA / "archive.zip").read_bytes()) == "unknown"
    assert (
        detect_type("setup.pdf", "application/pdf", (DATA / "program.exe").read_bytes())
        == "unknown"
    )
    assert detect_type("notes", "text/plain", "Grüße\n".encode()) == "text"
    assert detect_type("x", "", b"") == "empty"


async def test_received_fax_becomes_a_two_page_a4_pdf() -> None:
    """spandsp's G3 2-D LSB-first TIFF becomes a 2-page PDF of A4 pages (595 x 842 pt)."""
    pdf = pypdf.PdfReader(io.BytesIO(await received_to_pdf(RX_FAX)))
    assert len(pdf.pages) == 2
    for page in pdf.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert abs(width - 1728 / 204 * 72) < 1 and abs(height - 2292 / 196 * 72) < 1
        image = page["/Resources"]["/XObject"]  # type: ignore[index]
        stream = next(iter(image.values())).get_object()
        assert "/CCITTFaxDecode" in str(stream["/Filter"])


async def test_received_normal_resolution_keeps_its_aspect(tmp_path: Path) -> None:
    """A 204x98 fax (half the lines) is still an A4-shaped page in the PDF."""
    result = await render_fax(
        [corpus("chart.gif")], tmp_path / "n.tif", RenderOptions(resolution="normal")
    )
    page = pypdf.PdfReader(io.BytesIO(await received_to_pdf(result.path))).pages[0]
    assert abs(float(page.mediabox.height) - 842) < 1


async def test_damaged_received_fax_keeps_readable_pages(tmp_path: Path) -> None:
    """A received TIFF cut off inside its second page still gives the first page."""
    damaged = tmp_path / "cut.tif"
    raw = RX_FAX.read_bytes()
    damaged.write_bytes(raw[:50_000])
    pdf = pypdf.PdfReader(io.BytesIO(await received_to_pdf(damaged)))
    assert len(pdf.pages) >= 1


async def test_unreadable_received_fax_is_a_refusal(tmp_path: Path) -> None:
    """A missing file and a file that is no TIFF at all get a refusal naming them, from a
    worker that stays in service."""
    with pytest.raises(RenderRefused) as refused:
        await received_to_pdf(tmp_path / "gone.tif")
    assert refused.value.reason == "broken" and "gone.tif" in refused.value.message
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"II*\x00" + b"\xff" * 64)
    with pytest.raises(RenderRefused) as refused:
        await received_to_pdf(junk)
    assert refused.value.reason == "broken" and "junk.tif" in refused.value.message
    assert len(await received_to_pdf(RX_FAX)) > 1000


async def test_preview_png_of_a_page() -> None:
    """A 600 px wide PNG preview with the page's true proportions."""
    png = await preview_png(RX_FAX, page=1, width=600)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.width == 600
        assert abs(image.height - 600 * (2292 / 196) / (1728 / 204)) < 2
        darkest, _ = image.convert("L").getextrema()
        assert isinstance(darkest, int) and darkest < 128  # there is ink on it


def test_tiffinfo_accepts_the_output(tmp_path: Path) -> None:
    """libtiff's own tiffinfo reads our files without a warning."""
    if shutil.which("tiffinfo") is None:
        missing_server("tiffinfo (libtiff-tools)")
    result = asyncio.run(render_fax([corpus("chart.gif")], tmp_path / "out.tif"))
    report = subprocess.run(
        ["tiffinfo", str(result.path)], capture_output=True, text=True, check=True
    )
    assert "Compression Scheme: CCITT Group 4" in report.stdout
    assert "min-is-white" in report.stdout and "Page Number: 0-1" in report.stdout
    assert report.stderr == ""


def test_writers_of_one_file_at_once_each_put_a_whole_file_in_place(tmp_path: Path) -> None:
    """Two workers rendering the same request write the same TIFF: neither may truncate or
    move the other's half-written file (they once shared one `.part` name, and a fax to twelve
    numbers failed as "damaged" when two renders met)."""
    options = RenderOptions()
    blank = render._encode(Image.new("1", (1728, 2292), 1), options.compression)
    out = tmp_path / "request-1.tif"

    def write_many(pages: int) -> None:
        for _ in range(40):
            render.write_tiff_f([blank] * pages, out, render.geometry_for(options), "g4")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write_many, range(1, 9)))  # every writer's result is some whole file
    with Image.open(out) as image:
        pages = getattr(image, "n_frames", 1)
    assert 1 <= pages <= 8
    assert_tiff_f(out, pages)
    assert [path.name for path in tmp_path.iterdir()] == ["request-1.tif"]  # no .part left


async def test_a_spool_that_cannot_be_written_is_not_the_documents_fault(tmp_path: Path) -> None:
    """Writing the pages fails (here: the folder is gone): an error to try again, never a
    refusal telling the sender the document is damaged."""
    out = tmp_path / "gone" / "request-1.tif"
    with pytest.raises(RenderSpoolError) as raised:
        await render_fax([Document("message.txt", "text/plain", b"hello")], out)
    assert not isinstance(raised.value, RenderRefused)
    assert "could not be written" in str(raised.value) and "request-1.tif" in str(raised.value)
    # The renderer stays usable.
    result = await render_fax(
        [Document("message.txt", "text/plain", b"hello")], tmp_path / "ok.tif"
    )
    assert result.pages == 1
