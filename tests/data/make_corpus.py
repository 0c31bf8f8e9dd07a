"""Build the fax-rendering corpus in tests/data/ (run: `python -m tests.data.make_corpus`).

The files are small and committed; this script says how each was made, and the tests and the
benchmark call its builders for the inputs they make on the fly (a 60-page PDF, a photo).
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pypdf
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).parent


def text_pdf(
    pages: int,
    width: int = 595,
    height: int = 842,
    lines: int = 50,
    rotate: int = 0,
    grey_box: bool = True,
    frame: bool = False,
) -> bytes:
    """A PDF of `pages` pages of Courier text, with a grey box on each page unless told not to
    (built by hand, no library)."""
    objects: list[bytes] = [b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>", b""]
    kids = []
    for number in range(1, pages + 1):
        body = b"BT /F1 10 Tf 14 TL 50 %d Td " % (height - 60)
        for line in range(1, lines + 1):
            body += (
                b"(Page %d line %d: the quick brown fox jumps over the lazy dog 0123456789.) '\n"
                % (
                    number,
                    line,
                )
            )
        body += b"ET 0.5 g 50 50 200 100 re f" if grey_box else b"ET"
        if frame:  # a line around the whole page, so its shape shows in the ink
            body += b" 0 g 4 w 20 20 %d %d re S" % (width - 40, height - 40)
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(body), body))
        kids.append(len(objects) + 1)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Rotate %d /Contents %d 0 R "
            b"/Resources << /Font << /F1 1 0 R >> >> >>" % (width, height, rotate, len(objects))
        )
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    return _pdf_file(objects, root=len(objects))


def _pdf_file(objects: list[bytes], root: int) -> bytes:
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        root,
        xref,
    )
    return out


def zero_page_pdf() -> bytes:
    objects = [b"<< /Type /Pages /Kids [] /Count 0 >>", b"<< /Type /Catalog /Pages 1 0 R >>"]
    return _pdf_file(objects, root=2)


def encrypted_pdf() -> bytes:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(text_pdf(1, lines=3)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def owner_only_pdf() -> bytes:
    """Encrypted with an empty user password: anyone may open it, so we fax it."""
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(text_pdf(1, lines=3)))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def broken_pdf() -> bytes:
    """A PDF header and the start of an object, then garbage: cut off in transfer."""
    return text_pdf(2)[:300] + b"\x00garbage\xff" * 20


def photo(width: int = 1200, height: int = 1600, seed: int = 7) -> Image.Image:
    """A photo-like RGB picture: smooth gradients, soft shapes, fine texture, full tonal range."""
    rng = random.Random(seed)
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    glow = Image.radial_gradient("L").resize((width, height))
    picture = Image.merge("RGB", (base.getchannel(0), glow, Image.eval(glow, lambda v: 255 - v)))
    draw = ImageDraw.Draw(picture)
    for _ in range(40):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(30, 260)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    picture = picture.filter(ImageFilter.GaussianBlur(12))
    texture = Image.effect_mandelbrot((width, height), (-0.75, -0.2, -0.7, -0.15), 120)
    grain = Image.merge("RGB", (texture, texture, texture))
    return Image.blend(picture, grain, 0.25)


def photo_jpeg(width: int = 1200, height: int = 1600) -> bytes:
    out = io.BytesIO()
    photo(width, height).save(out, "JPEG", quality=80, dpi=(150, 150))
    return out.getvalue()


def photo_pdf() -> bytes:
    """One A4 page holding the photo (Pillow writes it as a DCT image in a PDF)."""
    out = io.BytesIO()
    photo().save(out, "PDF", resolution=150.0)
    return out.getvalue()


def png_bomb(side: int = 50_000) -> bytes:
    """A valid PNG header that claims side x side pixels: a few hundred bytes that would
    unpack to 2.5 gigapixels. (The IDAT holds one row; the claim is enough to refuse it.)"""
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * (side // 8 + 1), 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def long_thin_png() -> bytes:
    """40 000 x 2 pixels: few pixels, but a side far longer than any page."""
    out = io.BytesIO()
    Image.new("1", (40_000, 2), 1).save(out, "PNG")
    return out.getvalue()


def landscape_png() -> bytes:
    """A wide diagram: black bars and text on white, which must turn to fit the page."""
    picture = Image.new("L", (1600, 900), 255)
    draw = ImageDraw.Draw(picture)
    for x in range(0, 1600, 200):
        draw.rectangle((x + 20, 100, x + 120, 800), fill=0)
    draw.rectangle((0, 0, 1599, 40), fill=0)  # a bar along the top edge
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def small_gif() -> bytes:
    picture = Image.new("P", (400, 300), 0)
    picture.putpalette([255, 255, 255, 0, 0, 0, 128, 128, 128] + [0] * 759)
    draw = ImageDraw.Draw(picture)
    draw.rectangle((50, 50, 350, 250), fill=2)
    draw.text((60, 60), "GIF", fill=1)
    out = io.BytesIO()
    picture.save(out, "GIF")
    return out.getvalue()


def multipage_tiff(pages: int = 3) -> bytes:
    """An office scan: grey pages, LZW, 200 dpi, not a fax format at all."""
    frames = []
    for number in range(pages):
        frame = Image.new("L", (1654, 2339), 255)
        draw = ImageDraw.Draw(frame)
        draw.rectangle((200, 200 + 100 * number, 1400, 400 + 100 * number), fill=90)
        draw.text((220, 500), f"scan page {number + 1}", fill=0)
        frames.append(frame.resize((827, 1170)))
    out = io.BytesIO()
    frames[0].save(
        out, "TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw", dpi=(100, 100)
    )
    return out.getvalue()


def windows_exe() -> bytes:
    return (
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
        + b"\x00" * 48
        + b"This program cannot be run in DOS mode."
    )


def plain_zip() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "not a document")
    return out.getvalue()


def minimal_docx() -> bytes:
    """Just enough of a Word file for magic-byte detection (LibreOffice would open it too)."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("word/document.xml", '<?xml version="1.0"?><w:document/>')
    return out.getvalue()


CORPUS: dict[str, Callable[[], bytes]] = {
    "encrypted.pdf": encrypted_pdf,
    "owner-only.pdf": owner_only_pdf,
    "broken.pdf": broken_pdf,
    "zero-pages.pdf": zero_page_pdf,
    "landscape.pdf": lambda: text_pdf(1, width=842, height=595, lines=30, frame=True),
    "rotated.pdf": lambda: text_pdf(1, lines=30, rotate=90, frame=True),
    "letter-3.pdf": lambda: text_pdf(3, width=612, height=792),
    "bomb.png": png_bomb,
    "long-thin.png": long_thin_png,
    "landscape.png": landscape_png,
    "photo.jpg": lambda: photo_jpeg(600, 800),
    "chart.gif": small_gif,
    "scan-3.tif": multipage_tiff,
    "program.exe": windows_exe,
    "archive.zip": plain_zip,
    "letter.docx": minimal_docx,
    "empty.pdf": lambda: b"",
}


def main() -> None:
    for name, build in CORPUS.items():
        (HERE / name).write_bytes(build())
        print(f"{name}: {(HERE / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()
