"""Turn documents into the TIFF-F file FreeSWITCH faxes, and received faxes into PDF.

Every page becomes 1-bit, 1728 pixels wide, at 204x196 dpi ("fine") or 204x98 ("normal"),
compressed CCITT G4 (or G3 2-D) with the tags spandsp reads. PDFs are rendered with pdfium
straight into a grey bitmap of exactly the fax page (an anisotropic matrix, so 196 or 98 lines an
inch need no resampling), with text and vector edges un-smoothed so they threshold cleanly; grey
areas and photos then get a clustered-dot screen, never error diffusion: scattered dots make
every fax line long, and on the line time is what the customer waits and pays for.

The work on untrusted bytes runs in warm, limited worker processes (see `sandbox`); what the
parent calls is `render_fax`, `received_to_pdf`, `preview_png`, `tiff_pages`, `detect_type`, and
`close_renderers` at shutdown.

Why pdfium and not Ghostscript as the rasteriser (measured here, 2 cores, `python -m
bench.render`, all figures on a loaded machine, so +-20 %): Ghostscript's `pgmraw` output alone
takes 0.31 s for the 10-page text PDF (0.20 s for the photo page): a process start per file
and 4 MB of grey a page through a pipe, before any threshold or G4 coding of ours. pdfium in
a warm worker draws a text page in about 7 ms, straight into the buffer Pillow then uses.
Whole jobs through `render_fax`, warm: 10-page text PDF 0.25 s (39 pages/s; Ghostscript's own
tiffg4 0.19 s), photo page 0.11 s (Ghostscript 0.18 s); cold, the first job after start-up,
pays about 0.4 s more for starting a worker. A text page now costs about 7 ms of pdfium, 3 ms
of threshold and 10 ms of G4 coding in libtiff (through Pillow, which packs the bits row by
row); encoding on a second thread while the next page draws gained nothing measurable with
both cores busy, so pages are simply compressed one by one as they are drawn.
"""

from __future__ import annotations

import ctypes
import functools
import io
import itertools
import math
import os
import secrets
import shutil
import struct
import subprocess
import tempfile
import textwrap
import time
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageChops, ImageDraw, ImageFile, ImageFont, ImageOps, TiffImagePlugin

from c2bot.faxgw import sandbox

SUPPORTED = "PDF, TIFF, PNG, JPEG, GIF and plain text"
OFFICE_SUPPORTED = "Word, Excel, OpenDocument and RTF files (converted with LibreOffice)"

FAX_WIDTH = 1728  # pixels across a T.4 page: 215 mm at 204 dpi, for A4 and Letter alike
X_DPI = 204
PAPER_MM = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}
MAX_PIXELS = 100_000_000  # an image that unpacks to more is a decompression bomb
MAX_SIDE = 30_000  # pixels; a side longer than this is refused as too large
MAX_FILE_BYTES = 50 * 1024 * 1024
TEXT_COLUMNS = 80
MONOSPACE_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    "/usr/share/fonts/opentype/urw-base35/NimbusMonoPS-Regular.otf",
)
#: A received fax is converted within these (a 50-page fax takes about a second).
RECEIVE_LIMITS = sandbox.Limits(seconds=60.0, memory_mb=400)
OFFICE_TYPES = ("doc", "docx", "odt", "xls", "xlsx", "ods", "ppt", "pptx", "odp", "rtf")


class RenderSpoolError(OSError):
    """The pages were rendered but could not be written to the spool: our fault, not the
    document's, so the job is tried again rather than refused."""


class RenderRefused(Exception):
    """A document we will not fax; `message` says why in words the sender understands."""

    def __init__(self, reason: str, message: str, filename: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.filename = filename


@dataclass(frozen=True)
class Document:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class CoverPage:
    to: str
    sender: str
    subject: str
    text: str
    date: str
    pages: int | None = None  # None: the total pages of the fax, cover included


@dataclass(frozen=True)
class RenderOptions:
    resolution: Literal["fine", "normal"] = "fine"
    paper: Literal["a4", "letter"] = "a4"
    compression: Literal["g4", "g3"] = "g4"
    max_pages: int = 50
    timeout: float = 60.0
    memory_mb: int = 400
    max_bytes: int = MAX_FILE_BYTES


@dataclass(frozen=True)
class RenderResult:
    path: Path
    pages: int
    seconds: float
    peak_memory_mb: float = 0.0  # of the worker process (its own peak, or a converter's)


# --- what a file is ------------------------------------------------------------------------------


def detect_type(filename: str, content_type: str, data: bytes) -> str:
    """The kind of document: 'pdf', 'tiff', 'png', 'jpeg', 'gif', 'text', an Office extension
    ('docx', 'xls', ...), 'empty' or 'unknown'. Magic bytes decide; the name and the declared
    type only break ties (mail clients often say application/octet-stream)."""
    if not data:
        return "empty"
    by_magic = _type_by_magic(data)
    if by_magic in ("zip", "ole"):
        return _office_container_type(by_magic, filename, data)
    if by_magic:
        return by_magic
    if _looks_like_text(data) and (
        content_type.lower().startswith("text/plain")
        or _extension(filename) in ("txt", "text", "asc", "log", "csv", "")
    ):
        return "text"
    return "unknown"


def _type_by_magic(data: bytes) -> str:
    head = data[:16]
    if b"%PDF-" in data[:1024]:
        return "pdf"
    magic = (
        (b"II*\x00", "tiff"),
        (b"MM\x00*", "tiff"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff", "jpeg"),
        (b"GIF87a", "gif"),
        (b"GIF89a", "gif"),
        (b"{\\rtf", "rtf"),
        (b"PK\x03\x04", "zip"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    )
    return next((kind for prefix, kind in magic if head.startswith(prefix)), "")


def _office_container_type(container: str, filename: str, data: bytes) -> str:
    """A zip or OLE file is an Office document only if its contents (or, for OLE, name) say so."""
    extension = _extension(filename)
    if container == "ole":
        return extension if extension in ("doc", "xls", "ppt") else "doc"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                mimetype = archive.read("mimetype")[:100].decode("ascii", "replace")
                kinds = {"text": "odt", "spreadsheet": "ods", "presentation": "odp"}
                return next((k for word, k in kinds.items() if word in mimetype), "unknown")
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, ValueError):
        return "unknown"
    tops = {name.split("/")[0] for name in names}
    if "[Content_Types].xml" in names:
        kinds = {"word": "docx", "xl": "xlsx", "ppt": "pptx"}
        return next((k for top, k in kinds.items() if top in tops), "unknown")
    return "unknown"


def _looks_like_text(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return False
    controls = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13))
    return controls <= len(sample) // 100


def _extension(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


# --- the public API (parent side) ----------------------------------------------------------------


async def render_fax(
    documents: Sequence[Document],
    out: Path,
    options: RenderOptions = RenderOptions(),
    cover: CoverPage | None = None,
) -> RenderResult:
    """Render `documents` (in mail order, after an optional cover page) into one TIFF-F at `out`.

    Cheap refusals (empty, too large, unsupported type) happen here; the rest in a worker process
    limited to `options.timeout` seconds and `options.memory_mb` of address space.
    """
    import asyncio  # here, not at the top: the sandboxed child never needs it

    started = time.perf_counter()
    if not documents and cover is None:
        raise RenderRefused("empty", "There is nothing to fax: no document and no cover text.")
    kinds = [_check_before_rendering(document, options) for document in documents]
    with tempfile.TemporaryDirectory(prefix="c2fax-") as folder:
        payload = await asyncio.to_thread(
            _payload, documents, kinds, out, options, cover, Path(folder)
        )
        limits = sandbox.Limits(seconds=options.timeout, memory_mb=options.memory_mb)
        try:
            result = await sandbox.run_job("render", payload, limits)
        except sandbox.SandboxFailed as failure:
            raise _refusal_for(failure, options) from None
    if "write-error" in result:
        raise RenderSpoolError(f"the fax pages could not be written: {result['write-error']}")
    if "refused" in result:
        refused = result["refused"]
        raise RenderRefused(refused["reason"], refused["message"], refused["filename"])
    return RenderResult(
        path=out,
        pages=int(result["pages"]),
        seconds=time.perf_counter() - started,
        peak_memory_mb=int(result.get("peak_rss_kb", 0)) / 1024,
    )


def _check_before_rendering(document: Document, options: RenderOptions) -> str:
    name = document.filename or "the attachment"
    if not document.data:
        raise RenderRefused("empty", f"{name} is empty (0 bytes); nothing to fax.", name)
    if len(document.data) > options.max_bytes:
        raise RenderRefused(
            "too-large",
            f"{name} is {len(document.data) / 1e6:.1f} MB; the largest file we fax is "
            f"{options.max_bytes / 1e6:.0f} MB.",
            name,
        )
    kind = detect_type(document.filename, document.content_type, document.data)
    if (
        kind in OFFICE_TYPES
        and shutil.which("soffice") is None
        and shutil.which("libreoffice") is None
    ):
        raise RenderRefused(
            "unsupported-type",
            f"{name} is an Office document, which this server cannot convert; "
            f"send it as {SUPPORTED} (for example: save it as PDF first).",
            name,
        )
    if kind not in ("pdf", "tiff", "png", "jpeg", "gif", "text", *OFFICE_TYPES):
        raise RenderRefused(
            "unsupported-type",
            f"{name} is not a kind of file we can fax; send {_supported()}.",
            name,
        )
    return kind


def _supported() -> str:
    if shutil.which("soffice") or shutil.which("libreoffice"):
        return f"{SUPPORTED}, or {OFFICE_SUPPORTED}"
    return SUPPORTED


def _payload(
    documents: Sequence[Document],
    kinds: Sequence[str],
    out: Path,
    options: RenderOptions,
    cover: CoverPage | None,
    folder: Path,
) -> dict[str, Any]:
    """The job for the child: documents go as files in a private folder, the rest as JSON."""
    entries = []
    for index, (document, kind) in enumerate(zip(documents, kinds, strict=True)):
        path = folder / f"{index}.{kind}"
        path.write_bytes(document.data)
        entries.append(
            {
                "filename": document.filename or f"attachment {index + 1}",
                "kind": kind,
                "path": str(path),
            }
        )
    return {
        "documents": entries,
        "out": str(out),
        "options": asdict(options),
        "cover": asdict(cover) if cover else None,
        "folder": str(folder),
    }


def _refusal_for(failure: sandbox.SandboxFailed, options: RenderOptions) -> RenderRefused:
    name = failure.current or "the fax"
    if failure.kind == "timeout":
        return RenderRefused(
            "timeout",
            f"{name} took longer than {options.timeout:g} s to prepare; it may be damaged or "
            "far too complex. Try printing it to a new PDF.",
            name,
        )
    if failure.kind == "out-of-memory":
        return RenderRefused(
            "out-of-memory",
            f"{name} needs more memory to prepare than we allow ({options.memory_mb} MB); "
            "it may be damaged or hold enormous images.",
            name,
        )
    return RenderRefused("broken", f"{name} could not be read; it may be damaged.", name)


async def close_renderers() -> None:
    """Stop the warm render workers and wait for them (the runtime calls this at shutdown;
    rendering afterwards starts them again)."""
    await sandbox.close_pool()


async def received_to_pdf(tiff: Path) -> bytes:
    """A received fax as PDF, losslessly: G4 pages pass through img2pdf untouched; other
    encodings (spandsp writes G3 2-D, LSB first) are re-encoded to G4 first, because img2pdf
    would otherwise decode and re-compress them itself, slower and bigger. A damaged file gives
    as many pages as could be read. The file came down a phone line from a stranger's machine,
    so it is read in a sandbox worker too (which also keeps Pillow's warnings filter, set while
    reading, out of this process and its other threads)."""
    with tempfile.TemporaryDirectory(prefix="c2fax-rx-") as folder:
        out = Path(folder) / "received.pdf"
        payload = {"tiff": str(tiff), "out": str(out), "name": tiff.name}
        try:
            result = await sandbox.run_job("received-to-pdf", payload, RECEIVE_LIMITS)
        except sandbox.SandboxFailed as failure:
            raise RenderRefused(
                failure.kind,
                f"{tiff.name} could not be converted to PDF ({failure.kind}).",
                tiff.name,
            ) from None
        if "refused" in result:
            refused = result["refused"]
            raise RenderRefused(refused["reason"], refused["message"], refused["filename"])
        return out.read_bytes()


async def preview_png(tiff: Path, page: int = 0, width: int = 600) -> bytes:
    """A PNG of one page, `width` pixels wide, with the page's true proportions."""
    import asyncio

    return await asyncio.to_thread(_preview_png, tiff, page, width)


def tiff_pages(tiff: Path) -> int:
    """How many pages (directories) a TIFF holds."""
    with Image.open(tiff) as image:
        return int(getattr(image, "n_frames", 1))


# --- the child side: one render job -----------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """The fax page in pixels, and its lines per inch."""

    width: int
    height: int
    y_dpi: int
    x_dpi: int = X_DPI

    @property
    def fine(self) -> Geometry:
        """The same page at 196 lines an inch (text is drawn there, then reduced if needed)."""
        return Geometry(self.width, round(self.height * 196 / self.y_dpi), 196)


def geometry_for(options: RenderOptions) -> Geometry:
    y_dpi = 196 if options.resolution == "fine" else 98
    return Geometry(FAX_WIDTH, round(PAPER_MM[options.paper][1] / 25.4 * y_dpi), y_dpi)


def warm_up() -> None:
    """Import and prepare, in a fresh worker, what every job needs, so no job pays for it."""
    import pypdf  # noqa: F401 - imported for its start-up cost (img2pdf, with pikepdf another

    # 85 ms, is left to the first received fax: rendering is what must start fast)
    import pypdfium2  # type: ignore[import-untyped]
    import pypdfium2.raw  # type: ignore[import-untyped]  # noqa: F401

    warnings.simplefilter("error", Image.DecompressionBombWarning)  # the worker is ours alone
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS * 2  # a backstop: `_check_dimensions` refuses sooner
    Image.preinit()
    TiffImagePlugin.TiffImageFile  # noqa: B018 - the plugin registers its codecs on import


def run_render_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Entry point in the sandboxed worker: render every page and write the TIFF-F. A
    MemoryError goes up to the worker, which reports it and is replaced."""
    options = RenderOptions(**payload["options"])
    cover = CoverPage(**payload["cover"]) if payload["cover"] else None
    try:
        strips = _render_all(payload["documents"], options, cover, Path(payload["folder"]))
    except RenderRefused as refused:
        return _refused(refused)
    try:
        write_tiff_f(strips, Path(payload["out"]), geometry_for(options), options.compression)
    except OSError as error:
        # The spool's fault (full, gone, not writable), not the document's: the caller retries.
        return {"write-error": f"{error.strerror or error} ({payload['out']})"}
    return {"pages": len(strips)}


def _refused(refused: RenderRefused) -> dict[str, Any]:
    return {
        "refused": {
            "reason": refused.reason,
            "message": refused.message,
            "filename": refused.filename,
        }
    }


def _render_all(
    documents: list[dict[str, str]], options: RenderOptions, cover: CoverPage | None, folder: Path
) -> list[_Strip]:
    """Every page, compressed as soon as it is drawn (a 1-bit page takes 4 MB in Pillow, its
    G4 strip about 50 KB), cover pages first."""
    geometry = geometry_for(options)
    strips: list[_Strip] = []
    for document in documents:
        name = document["filename"]
        sandbox.report_progress(name)
        budget = options.max_pages - len(strips) - (1 if cover else 0)
        for page in _document_pages(document, geometry, budget, options, folder):
            strips.append(_encode(page, options.compression))
    if cover is not None:
        sandbox.report_progress("the cover page")
        cover_images = cover_pages(cover, geometry, len(strips))
        strips[:0] = [_encode(page, options.compression) for page in cover_images]
    if not strips:
        raise RenderRefused("no-pages", "There is nothing to fax: the documents have no pages.")
    return strips


def _document_pages(
    document: dict[str, str], geometry: Geometry, budget: int, options: RenderOptions, folder: Path
) -> Iterator[Image.Image]:
    name, kind, path = document["filename"], document["kind"], Path(document["path"])
    if kind in OFFICE_TYPES:
        path, kind = office_to_pdf(path, name, folder, options.timeout), "pdf"
    if kind == "pdf":
        return pdf_pages(path, name, geometry, budget, options.max_pages)
    if kind == "text":
        return _limited(text_pages(path.read_bytes(), geometry), name, budget, options.max_pages)
    return image_pages(path, name, geometry, budget, options.max_pages)


def _limited(
    pages: Iterator[Image.Image], name: str, budget: int, limit: int
) -> Iterator[Image.Image]:
    for count, page in enumerate(pages, 1):
        if count > budget:
            raise _too_many(name, limit)
        yield page


def _too_many(name: str, limit: int, count: int | None = None) -> RenderRefused:
    has = f" has {count} pages;" if count is not None else " is too long;"
    return RenderRefused(
        "too-many-pages", f"{name}{has} a fax may have at most {limit} pages in all.", name
    )


# --- halftone and threshold ----------------------------------------------------------------------

SCREEN_CELL = 6  # dots 6*sqrt(2) = 8.5 px apart at 45 degrees: 24 lines an inch
LIGHT, DARK = 225, 40  # lighter than LIGHT is paper, darker than DARK is ink: no dots there


@functools.cache
def _screen_tile(y_scale: int) -> Image.Image:
    """One tile of a 45-degree clustered-dot threshold screen (round dots that grow, touch in a
    checkerboard at 50 % and become round holes). The screen is coarse on purpose: measured with
    spandsp at 14 400 bps, a full photo page takes about 128 s on the line at 24 lpi, 152 s at
    29 lpi and 193 s at 36 lpi (Ghostscript's default: 352 s). Ranking pixels by a spot
    function gives each pixel a threshold; for 98 lines an inch (`y_scale` 2) rows are twice as
    tall, so the tile is half as high and the dots stay round on paper."""
    size = 2 * SCREEN_CELL
    rows = size // y_scale
    spots = []
    for y in range(rows):
        for x in range(size):
            u = math.pi * (x + 0.5) / SCREEN_CELL
            v = math.pi * (y + 0.5) * y_scale / SCREEN_CELL
            spots.append((math.cos(u) * math.cos(v), (x + y * size) % 7, x, y))
    tile = Image.new("L", (size, rows))
    for rank, (_, _, x, y) in enumerate(sorted(spots)):
        tile.putpixel((x, y), min(255, max(1, round((rank + 0.5) * 256 / len(spots)))))
    return tile


@functools.cache
def _screen(width: int, height: int, y_scale: int) -> Image.Image:
    tile = _screen_tile(y_scale)
    row = Image.new("L", (width, tile.height))
    for x in range(0, width, tile.width):
        row.paste(tile, (x, 0))
    screen = Image.new("L", (width, height))
    for y in range(0, height, tile.height):
        screen.paste(row, (0, y))
    return screen


_TONE = [
    0 if v <= DARK else 255 if v >= LIGHT else round((v - DARK) * 255 / (LIGHT - DARK))
    for v in range(256)
]
_INK_IS_ZERO = [255] + [0] * 255  # after `screen - grey`: 0 where grey >= screen, i.e. paper


def halftone(grey: Image.Image, geometry: Geometry) -> Image.Image:
    """Grey page -> 1-bit page: clean paper and ink at the extremes, clustered dots between.
    Three passes of Pillow's C code: a tone curve, a subtraction from the screen, a table."""
    if not any(grey.histogram()[1:255]):
        # only paper and ink: no screen needed, and Pillow's own cut (at 128) is 5x faster
        return grey.convert("1", dither=Image.Dither.NONE)
    y_scale = 2 if geometry.y_dpi < 150 else 1
    screen = _screen(grey.width, grey.height, y_scale)
    toned = grey.point(_TONE)
    return ImageChops.subtract(screen, toned).point(_INK_IS_ZERO, "1")


CUT = 160  # darker than this is ink, when a grey page is thresholded
#: Where anti-aliased PDF glyphs are cut (see `_render_pdf_page`): measured with spandsp on the
#: 10-page Courier PDF of bench/render.py, 144 takes 315.3 s on the line (Ghostscript 315.4 s),
#: 136 316.3 s, 152 320.8 s, 160 315.6 s, 168 321.1 s; un-smoothed glyphs took 320.1 s.
TEXT_CUT = 144


@functools.cache
def _cut_table(level: int) -> list[int]:
    return [0 if v < level else 255 for v in range(256)]


def threshold(grey: Image.Image, level: int = CUT) -> Image.Image:
    """Grey page -> 1-bit page with no dots at all: for text and bilevel sources."""
    return grey.point(_cut_table(level), "1")


# --- PDF ---------------------------------------------------------------------------------------


def pdf_pages(
    path: Path, name: str, geometry: Geometry, budget: int, limit: int
) -> Iterator[Image.Image]:
    """Inspect with pypdf (encrypted, broken, no pages, too many), then render with pdfium."""
    count = _inspect_pdf(path, name)
    if count > budget:
        raise _too_many(name, limit, count)
    return _pdfium_pages(path, name, geometry)


def _inspect_pdf(path: Path, name: str) -> int:
    import pypdf
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = pypdf.PdfReader(path, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise _encrypted(name)
        count = len(reader.pages)
    except (FileNotDecryptedError, NotImplementedError) as error:
        if "decrypt" in str(error).lower() or "crypt" in str(error).lower():
            raise _encrypted(name) from None
        raise _broken_pdf(name) from None
    except (
        PdfReadError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
        RecursionError,
        struct.error,
        AssertionError,
    ):
        raise _broken_pdf(name) from None
    if count == 0:
        raise RenderRefused("no-pages", f"{name} is a PDF with no pages; nothing to fax.", name)
    return count


def _encrypted(name: str) -> RenderRefused:
    return RenderRefused(
        "encrypted", f"{name} is password-protected; send it without a password.", name
    )


def _broken_pdf(name: str) -> RenderRefused:
    return RenderRefused(
        "broken",
        f"{name} is not a readable PDF (it is damaged or incomplete); try saving it again.",
        name,
    )


def _pdfium_pages(path: Path, name: str, geometry: Geometry) -> Iterator[Image.Image]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError:
        raise _broken_pdf(name) from None
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                if _black_and_white_only(page):
                    yield threshold(_render_pdf_page(page, geometry, smooth_text=True), TEXT_CUT)
                else:
                    yield halftone(_render_pdf_page(page, geometry), geometry)
            finally:
                page.close()
    finally:
        pdf.close()


def _black_and_white_only(page: Any) -> bool:
    """Whether the page holds only text and paths in pure black or white: no images, shadings,
    forms, annotations or tints, so nothing on it wants a halftone screen."""
    import pypdfium2.raw as pdfium_c

    if pdfium_c.FPDFPage_GetAnnotCount(page.raw) > 0:
        return False
    red, green, blue, alpha = (ctypes.c_uint() for _ in range(4))
    channels = [ctypes.byref(channel) for channel in (red, green, blue, alpha)]
    for index in range(pdfium_c.FPDFPage_CountObjects(page.raw)):
        item = pdfium_c.FPDFPage_GetObject(page.raw, index)
        if pdfium_c.FPDFPageObj_GetType(item) not in (
            pdfium_c.FPDF_PAGEOBJ_TEXT,
            pdfium_c.FPDF_PAGEOBJ_PATH,
        ):
            return False
        for colour in (pdfium_c.FPDFPageObj_GetFillColor, pdfium_c.FPDFPageObj_GetStrokeColor):
            if colour(item, *channels) and (
                alpha.value != 255
                or red.value != green.value
                or green.value != blue.value
                or red.value not in (0, 255)
            ):
                return False
    return True


def _render_pdf_page(page: Any, geometry: Geometry, smooth_text: bool = False) -> Image.Image:
    """Render one page straight into a grey bitmap of the fax page, centred, scaled down (never
    up) to fit, landscape pages turned a quarter clockwise. Paths are not anti-aliased, so they
    come out pure black and white and get no halftone dots at their edges. Text is not either,
    except on pages of black and white only (`smooth_text`), which are thresholded, never
    screened: anti-aliased glyphs cut at `TEXT_CUT` have smoother edges that compress better
    (measured with spandsp: a text page 42.0 s on the line, as Ghostscript's, against 42.5 s
    for un-smoothed glyphs; cut at 96, 128 or 192 it takes 42.9, 42.5 and 43.0 s)."""
    import pypdfium2.raw as pdfium_c

    width_pt, height_pt = page.get_size()
    landscape = width_pt > height_pt
    across, down = (height_pt, width_pt) if landscape else (width_pt, height_pt)
    fit = min(
        1.0, geometry.width / (across * X_DPI / 72), geometry.height / (down * geometry.y_dpi / 72)
    )
    sx, sy = X_DPI / 72 * fit, geometry.y_dpi / 72 * fit
    left, top = (geometry.width - across * sx) / 2, (geometry.height - down * sy) / 2
    if landscape:
        matrix = pdfium_c.FS_MATRIX(0, sy, -sx, 0, left + across * sx, top)
    else:
        matrix = pdfium_c.FS_MATRIX(sx, 0, 0, sy, left, top)
    buffer = bytearray(geometry.width * geometry.height)
    pixels = (ctypes.c_uint8 * len(buffer)).from_buffer(buffer)
    bitmap = pdfium_c.FPDFBitmap_CreateEx(
        geometry.width, geometry.height, pdfium_c.FPDFBitmap_Gray, pixels, geometry.width
    )
    try:
        pdfium_c.FPDFBitmap_FillRect(bitmap, 0, 0, geometry.width, geometry.height, 0xFFFFFFFF)
        clip = pdfium_c.FS_RECTF(0, 0, geometry.width, geometry.height)
        flags = (
            pdfium_c.FPDF_ANNOT
            | pdfium_c.FPDF_PRINTING
            | pdfium_c.FPDF_GRAYSCALE
            | pdfium_c.FPDF_RENDER_NO_SMOOTHPATH
            | (0 if smooth_text else pdfium_c.FPDF_RENDER_NO_SMOOTHTEXT)
        )
        pdfium_c.FPDF_RenderPageBitmapWithMatrix(bitmap, page.raw, matrix, clip, flags)
    finally:
        pdfium_c.FPDFBitmap_Destroy(bitmap)
        del pixels  # release the ctypes view of `buffer`; Pillow takes it over
    # Pillow uses the buffer where it is: copying 4 MB twice cost more than pdfium's drawing
    return Image.frombuffer("L", (geometry.width, geometry.height), buffer, "raw", "L", 0, 1)


# --- images (TIFF, PNG, JPEG, GIF) ----------------------------------------------------------------


def image_pages(
    path: Path, name: str, geometry: Geometry, budget: int, limit: int
) -> Iterator[Image.Image]:
    """Each frame of a TIFF, or the (first) frame of a PNG/JPEG/GIF, fitted to a fax page."""
    image = _open_image(path, name)
    try:
        frames = int(getattr(image, "n_frames", 1)) if image.format == "TIFF" else 1
        if frames > budget:
            raise _too_many(name, limit, frames)
        for index in range(frames):
            yield _image_page(image, index, name, geometry)
    finally:
        image.close()


def _open_image(path: Path, name: str) -> ImageFile.ImageFile:
    try:
        return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(name) from None
    except (OSError, SyntaxError, ValueError, struct.error):
        raise RenderRefused(
            "broken", f"{name} is not a readable image; it may be damaged.", name
        ) from None


def _bomb(name: str, pixels: int | None = None) -> RenderRefused:
    size = f" would unpack to {pixels:,} pixels;" if pixels else " would unpack to too many pixels;"
    return RenderRefused("bomb", f"{name}{size} the most we accept is {MAX_PIXELS:,}.", name)


def _image_page(
    image: ImageFile.ImageFile, index: int, name: str, geometry: Geometry
) -> Image.Image:
    try:
        image.seek(index)
        _check_dimensions(image, name)
        bilevel = image.mode == "1"
        dpi = _image_dpi(image)
        target = _fitted_size(image.size, dpi, geometry)
        if image.format == "JPEG":
            image.draft("L", (max(1, target[0]), max(1, target[1])))
        grey = _flatten(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(name) from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError):
        raise RenderRefused(
            "broken", f"{name} is not a readable image; it may be damaged.", name
        ) from None
    page = _place_on_page(grey, dpi, geometry)
    return threshold(page) if bilevel else halftone(page, geometry)


def _check_dimensions(image: Image.Image, name: str) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _bomb(name, width * height)
    if max(width, height) > MAX_SIDE:
        raise RenderRefused(
            "too-large",
            f"{name} is {width} x {height} pixels; the largest side we accept is {MAX_SIDE}.",
            name,
        )
    if width == 0 or height == 0:
        raise RenderRefused("broken", f"{name} has no pixels.", name)


def _image_dpi(image: Image.Image) -> tuple[float, float]:
    """The image's own resolution when it states a plausible one, else 100 dpi (a screenshot or
    a photo without one then fills the page, as people expect)."""
    dpi = image.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return (100.0, 100.0)
    if not (50 <= x <= 2400 and 50 <= y <= 2400):
        return (100.0, 100.0)
    return (x, y)


def _fitted_size(
    size: tuple[int, int], dpi: tuple[float, float], geometry: Geometry
) -> tuple[int, int]:
    """The image's size in fax pixels: its physical size, scaled down to fit (turned if wide)."""
    width_in, height_in = size[0] / dpi[0], size[1] / dpi[1]
    if width_in > height_in:
        width_in, height_in = height_in, width_in
    fit = min(
        1.0, geometry.width / (width_in * X_DPI), geometry.height / (height_in * geometry.y_dpi)
    )
    across = max(1, min(geometry.width, round(width_in * X_DPI * fit)))
    down = max(1, min(geometry.height, round(height_in * geometry.y_dpi * fit)))
    return across, down


def _flatten(image: Image.Image) -> Image.Image:
    """Any mode -> grey on white paper, upright per its EXIF orientation."""
    upright = ImageOps.exif_transpose(image) or image
    if upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    ):
        rgba = upright.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("L")
    if upright.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return upright.convert("F").point(lambda v: v / 256).convert("L")
    return upright.convert("L")


def _place_on_page(grey: Image.Image, dpi: tuple[float, float], geometry: Geometry) -> Image.Image:
    if grey.width / dpi[0] > grey.height / dpi[1]:
        grey = grey.transpose(Image.Transpose.ROTATE_270)
        dpi = (dpi[1], dpi[0])
    target = _fitted_size(grey.size, dpi, geometry)
    if grey.size != target:
        grey = grey.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    page = Image.new("L", (geometry.width, geometry.height), 255)
    page.paste(grey, ((geometry.width - grey.width) // 2, (geometry.height - grey.height) // 2))
    return page


# --- text and the cover page --------------------------------------------------------------------


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A monospace TrueType font if the system has one, else Pillow's built-in scalable font."""
    for candidate in MONOSPACE_FONTS:
        if Path(candidate).exists():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size)


@dataclass(frozen=True)
class _TextLayout:
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    margin_x: int
    margin_y: int
    line_height: int
    columns: int
    lines_per_page: int


def _layout(geometry: Geometry, size: int = 32) -> _TextLayout:
    """80 columns across the page at about 11 pt; the layout is done at 196 lines an inch."""
    fine = geometry.fine
    font = _font(size)
    advance = max(font.getlength(letter) for letter in "MW@") or size * 0.6
    margin_x = max(40, round((fine.width - advance * TEXT_COLUMNS) / 2))
    columns = int((fine.width - 2 * margin_x) // advance)
    line_height = round(size * 1.2)
    margin_y = 80
    return _TextLayout(
        font, margin_x, margin_y, line_height, columns, (fine.height - 2 * margin_y) // line_height
    )


def text_pages(data: bytes, geometry: Geometry) -> Iterator[Image.Image]:
    """Plain text, wrapped at 80 columns and paginated; a form feed starts a new page."""
    layout = _layout(geometry)
    for chunk in _paginate(_decode_text(data), layout):
        yield _draw_text_page(chunk, layout, geometry, top=layout.margin_y)


def _decode_text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _wrap(text: str, columns: int) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.expandtabs(8).rstrip()
        if "\f" in line:
            parts = line.split("\f")
            for i, part in enumerate(parts):
                lines.extend(
                    textwrap.wrap(part, columns, drop_whitespace=False) or [""]
                    if part or i == 0
                    else []
                )
                if i < len(parts) - 1:
                    lines.append("\f")
            continue
        lines.extend(
            textwrap.wrap(line, columns, replace_whitespace=False, drop_whitespace=True) or [""]
        )
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _paginate(text: str, layout: _TextLayout) -> Iterator[list[str]]:
    page: list[str] = []
    for line in _wrap(text, layout.columns):
        if line == "\f" or len(page) == layout.lines_per_page:
            yield page
            page = []
            if line == "\f":
                continue
        page.append(line)
    if page or not text.strip():
        yield page


def _draw_text_page(
    lines: list[str],
    layout: _TextLayout,
    geometry: Geometry,
    top: int,
    page: Image.Image | None = None,
) -> Image.Image:
    page = page or Image.new("L", (geometry.fine.width, geometry.fine.height), 255)
    draw = ImageDraw.Draw(page)
    draw.fontmode = "1"  # no anti-aliasing: crisp strokes, and nothing grey to halftone
    for row, line in enumerate(lines):
        draw.text((layout.margin_x, top + row * layout.line_height), line, font=layout.font, fill=0)
    return _to_resolution(page, geometry)


def _to_resolution(fine_page: Image.Image, geometry: Geometry) -> Image.Image:
    """A page drawn at 196 lines an inch, reduced to the fax's lines (merging pairs of rows keeps
    thin horizontal strokes, where dropping every other row would lose them)."""
    if fine_page.height != geometry.height:
        fine_page = fine_page.resize((geometry.width, geometry.height), Image.Resampling.BOX)
    return threshold(fine_page)


def cover_pages(cover: CoverPage, geometry: Geometry, following: int) -> list[Image.Image]:
    """The cover page: a heading, who to and from, subject, date, page count, then the text
    (continued on further pages if it is long). The page count includes the cover pages."""
    layout = _layout(geometry)
    heading = _font(72)
    body = _wrap(cover.text, layout.columns)
    fields = 7
    first_room = max(0, layout.lines_per_page - fields - 3)
    rest = [
        body[i : i + layout.lines_per_page]
        for i in range(first_room, len(body), layout.lines_per_page)
    ]
    total = cover.pages if cover.pages is not None else following + 1 + len(rest)
    page = Image.new("L", (geometry.fine.width, geometry.fine.height), 255)
    draw = ImageDraw.Draw(page)
    draw.fontmode = "1"
    draw.text((layout.margin_x, layout.margin_y), "FAX", font=heading, fill=0)
    header = [
        f"To:      {cover.to}",
        f"From:    {cover.sender}",
        f"Subject: {cover.subject}",
        f"Date:    {cover.date}",
        f"Pages:   {total} (this page included)",
    ]
    top = layout.margin_y + 3 * layout.line_height
    y_rule = top + (len(header) + 1) * layout.line_height
    draw.rectangle((layout.margin_x, y_rule, geometry.width - layout.margin_x, y_rule + 3), fill=0)
    text = [line[: layout.columns] for line in header] + ["", ""] + body[:first_room]
    pages = [_draw_text_page(text, layout, geometry, top, page)]
    pages.extend(_draw_text_page(chunk, layout, geometry, layout.margin_y) for chunk in rest)
    return pages


# --- Office documents ---------------------------------------------------------------------------


def office_to_pdf(path: Path, name: str, folder: Path, timeout: float) -> Path:
    """Convert with LibreOffice headless into `folder`, with its own profile (so two conversions
    never share one) and a larger address-space limit: LibreOffice reserves far more virtual
    memory than it uses."""
    program = shutil.which("soffice") or shutil.which("libreoffice")
    if program is None:
        raise RenderRefused(
            "unsupported-type", f"{name} is an Office document; send {SUPPORTED}.", name
        )
    profile = folder / "lo-profile"
    command = [
        program,
        f"-env:UserInstallation={profile.as_uri()}",
        "--headless",
        "--norestore",
        "--convert-to",
        "pdf",
        "--outdir",
        str(folder),
        str(path),
    ]
    try:
        subprocess.run(  # noqa: S603 - fixed program, our own paths
            command, capture_output=True, timeout=timeout, check=False, preexec_fn=_office_limits
        )
    except subprocess.TimeoutExpired:
        raise RenderRefused("timeout", f"{name} took too long to convert to PDF.", name) from None
    converted = path.with_suffix(".pdf")
    if not converted.exists():
        raise RenderRefused("broken", f"{name} could not be converted; it may be damaged.", name)
    return converted


def _office_limits() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    sandbox.limit_self(120, 4096)


# --- TIFF-F writer --------------------------------------------------------------------------------

_SHORT, _LONG, _RATIONAL, _ASCII = 3, 4, 5, 2


@dataclass(frozen=True)
class _Strip:
    """One page, CCITT-compressed: what goes into the TIFF."""

    data: bytes
    size: tuple[int, int]


def write_tiff_f(strips: Sequence[_Strip], out: Path, geometry: Geometry, compression: str) -> None:
    """Write the pages to `out` through a temporary name of this writer's own, so a reader never
    sees half a file and two writers of the same file (two workers rendering one request) each
    put a whole file in place instead of truncating each other's."""
    data = _tiff_f_from_strips(strips, geometry, compression)
    # Not mkstemp: its 0600 would keep FreeSWITCH, often another user, from reading the pages.
    partial = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        partial.write_bytes(data)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def tiff_f_bytes(pages: Sequence[Image.Image], geometry: Geometry, compression: str) -> bytes:
    """1-bit pages as one TIFF-F (class F)."""
    return _tiff_f_from_strips(
        [_encode(page, compression) for page in pages], geometry, compression
    )


def _tiff_f_from_strips(strips: Sequence[_Strip], geometry: Geometry, compression: str) -> bytes:
    """Compressed pages as one TIFF-F (class F): one strip per page, min-is-white, fill order
    MSB-first, 204 x 196/98 dpi, PageNumber n of total. The directories are ours, so every tag
    is exactly what spandsp expects."""
    data = io.BytesIO()
    data.write(b"II*\x00\x00\x00\x00\x00")
    link = 4  # where the offset of the next directory goes
    for number, strip in enumerate(strips):
        strip_offset = data.tell()
        data.write(strip.data + b"\x00" * (len(strip.data) % 2))
        ifd_offset = data.tell()
        data.seek(link)
        data.write(struct.pack("<I", ifd_offset))
        data.seek(ifd_offset)
        tags = _page_tags(
            strip.size, geometry, compression, (strip_offset, len(strip.data)), number, len(strips)
        )
        link = _write_ifd(data, tags)
    return data.getvalue()


def _encode(page: Image.Image, compression: str) -> _Strip:
    return _Strip(_encode_page(page, compression), page.size)


def _encode_page(page: Image.Image, compression: str) -> bytes:
    """CCITT-compress one page with libtiff (through Pillow) and return the strip. TIFF's 1-bit
    data with min-is-white means 1 = black, so the page is inverted first (Pillow would
    otherwise do that pixel by pixel in Python)."""
    ink = ImageChops.invert(page if page.mode == "1" else page.convert("1"))
    info: dict[int, int] = {278: page.height}
    if compression == "g3":
        info[292] = 5  # T4Options: 2-D coding, fill bits before EOL (as spandsp writes)
    buffer = io.BytesIO()
    ink.save(
        buffer, "TIFF", compression="group4" if compression == "g4" else "group3", tiffinfo=info
    )
    with TiffImagePlugin.TiffImageFile(io.BytesIO(buffer.getvalue())) as encoded:
        offsets, counts = encoded.tag_v2[273], encoded.tag_v2[279]
    raw = buffer.getvalue()
    return b"".join(raw[o : o + c] for o, c in zip(offsets, counts, strict=True))


def _page_tags(
    size: tuple[int, int],
    geometry: Geometry,
    compression: str,
    strip: tuple[int, int],
    number: int,
    total: int,
) -> list[tuple[int, int, Any]]:
    width, height = size
    offset, length = strip
    coding = (259, _SHORT, 4) if compression == "g4" else (259, _SHORT, 3)
    options = (293, _LONG, 0) if compression == "g4" else (292, _LONG, 5)
    return sorted(
        [
            (254, _LONG, 2),  # NewSubfileType: one page of a multi-page document
            (256, _LONG, width),
            (257, _LONG, height),
            (258, _SHORT, 1),
            coding,
            (262, _SHORT, 0),  # min-is-white
            (266, _SHORT, 1),  # FillOrder: most significant bit first
            (273, _LONG, offset),
            (277, _SHORT, 1),
            (278, _LONG, height),
            (279, _LONG, length),
            (282, _RATIONAL, (geometry.x_dpi, 1)),
            (283, _RATIONAL, (geometry.y_dpi, 1)),
            (284, _SHORT, 1),
            options,
            (296, _SHORT, 2),  # inches
            (297, _SHORT, (number, total)),
            (305, _ASCII, b"c2bot\x00"),
        ]
    )


def _write_ifd(data: io.BytesIO, tags: list[tuple[int, int, Any]]) -> int:
    """Write one directory at the current position; return where its next-IFD link is."""
    start = data.tell()
    extra_at = start + 2 + 12 * len(tags) + 4
    entries, extra = b"", b""
    for tag, kind, value in tags:
        if kind == _RATIONAL:
            entries += struct.pack("<HHII", tag, kind, 1, extra_at + len(extra))
            extra += struct.pack("<II", *value)
        elif kind == _ASCII:
            entries += struct.pack("<HHII", tag, kind, len(value), extra_at + len(extra))
            extra += value + (b"\x00" if len(value) % 2 else b"")
        elif isinstance(value, tuple):
            entries += struct.pack("<HHIHH", tag, kind, 2, *value)
        elif kind == _SHORT:
            entries += struct.pack("<HHIHH", tag, kind, 1, value, 0)
        else:
            entries += struct.pack("<HHII", tag, kind, 1, value)
    data.write(struct.pack("<H", len(tags)) + entries + b"\x00\x00\x00\x00" + extra)
    return start + 2 + 12 * len(tags)


# --- received faxes -----------------------------------------------------------------------------


def run_received_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Entry point in the sandboxed worker: a received TIFF into a PDF at `payload['out']`."""
    name = str(payload["name"])
    try:
        raw = Path(payload["tiff"]).read_bytes()
        # Pillow only warns about a directory cut off mid-file; here that is the end of what we
        # can read, so make it an exception that `_readable_frames` stops at. The filter is
        # process-wide, which is safe only because a worker runs one job at a time in one thread.
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            pdf = _pdf_from_tiff_bytes(raw, name)
    except RenderRefused as refused:
        return _refused(refused)
    except OSError as error:
        return _refused(RenderRefused("broken", f"{name} cannot be read: {error.strerror}.", name))
    Path(payload["out"]).write_bytes(pdf)
    return {"bytes": len(pdf)}


def _pdf_from_tiff_bytes(raw: bytes, name: str) -> bytes:
    import img2pdf

    if _is_passthrough_g4(raw):
        return bytes(img2pdf.convert(raw))
    pages = []
    for frame, dpi in _readable_frames(raw, name):
        geometry = Geometry(frame.width, frame.height, round(dpi[1]), round(dpi[0]))
        pages.append(tiff_f_bytes([frame], geometry, "g4"))
    return bytes(img2pdf.convert(pages))


def _is_passthrough_g4(raw: bytes) -> bool:
    """Every page already G4, MSB-first, one strip: img2pdf copies it into the PDF as it is."""
    try:
        with TiffImagePlugin.TiffImageFile(io.BytesIO(raw)) as image:
            for index in range(image.n_frames):
                image.seek(index)
                tags = image.tag_v2
                if tags.get(259) != 4 or tags.get(266, 1) != 1 or len(tags.get(273, ())) != 1:
                    return False
            return True
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, UserWarning):
        return False


def _readable_frames(raw: bytes, name: str) -> Iterator[tuple[Image.Image, tuple[float, float]]]:
    """Decoded pages, up to the first one that cannot be read (a fax cut short mid-page)."""
    found = 0
    try:
        with Image.open(io.BytesIO(raw)) as image:
            for index in itertools.count():  # not n_frames: it would read past the cut
                if index:
                    image.seek(index)
                resolution = image.info.get("resolution") or image.info.get("dpi") or (X_DPI, 196)
                image.load()
                frame = image.convert("1")
                found += 1
                yield frame, (float(resolution[0]), float(resolution[1]))
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, UserWarning):
        if not found:
            raise RenderRefused("broken", f"{name} holds no readable fax page.", name) from None


def _preview_png(tiff: Path, page: int, width: int) -> bytes:
    with Image.open(tiff) as image:
        image.seek(page)
        x_dpi, y_dpi = image.info.get("resolution") or image.info.get("dpi") or (X_DPI, 196)
        grey = image.convert("L")
    height = max(1, round(grey.height * (width / grey.width) * (float(x_dpi) / float(y_dpi))))
    small = grey.resize((width, height), Image.Resampling.BOX)
    out = io.BytesIO()
    small.save(out, "PNG", optimize=True)
    return out.getvalue()


__all__ = [
    "SUPPORTED",
    "CoverPage",
    "Document",
    "RenderOptions",
    "RenderRefused",
    "RenderResult",
    "close_renderers",
    "detect_type",
    "preview_png",
    "received_to_pdf",
    "render_fax",
    "tiff_pages",
]
