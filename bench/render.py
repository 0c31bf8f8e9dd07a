"""Fax rendering: pages per second, peak memory and line time, ours next to Ghostscript's tiffg4.

Both render the same PDFs in the same run: a 10-page text PDF and a one-page photo. Ours is
timed end to end through `render_fax`, two ways: warm (the pool's workers already started, as in
a running bot: best of ROUNDS) and cold (the first render after `close_renderers()`, paying for
starting the workers and their imports). The worker reports its own peak RSS for the job;
Ghostscript's peak comes from wait4() on its process, which it starts for every file. Line time
is the simulated seconds spandsp (two fax machines, 14 400 bps, ECM, fine) needs to send.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from c2bot.faxgw.render import Document, RenderOptions, close_renderers, render_fax, tiff_pages
from tests.data.make_corpus import photo_pdf, text_pdf

ROUNDS = 3


async def main() -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        inputs = {
            "10-page text PDF": _write(work / "text10.pdf", text_pdf(10, grey_box=False)),
            "photo page (PDF)": _write(work / "photo.pdf", photo_pdf()),
            "1 text page": _write(work / "text1.pdf", text_pdf(1, grey_box=False)),
        }
        lines = []
        outputs: dict[str, tuple[Path, Path | None]] = {}
        for label, source in inputs.items():
            ours, ours_line = await _ours(source, work / f"ours-{source.stem}.tif")
            gs, gs_line = await asyncio.to_thread(
                _ghostscript, source, work / f"gs-{source.stem}.tif"
            )
            outputs[label] = (ours, gs)
            if label != "1 text page":
                lines.append(f"render {label}: ours {ours_line}; Ghostscript tiffg4 {gs_line}")
        lines.extend(await asyncio.to_thread(_line_times, outputs))
    await close_renderers()
    return lines


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def _ours(source: Path, out: Path) -> tuple[Path, str]:
    document = Document(source.name, "application/pdf", await asyncio.to_thread(source.read_bytes))
    await close_renderers()
    cold = await render_fax([document], out, RenderOptions())
    # the pool starts its second worker after the first job: let both finish starting up
    await asyncio.gather(
        *(render_fax([document], out.with_name(f"warm{n}-{out.name}")) for n in range(2))
    )
    best, peak, pages = float("inf"), 0.0, 0
    for _ in range(ROUNDS):
        result = await render_fax([document], out, RenderOptions())
        best, peak, pages = (
            min(best, result.seconds),
            max(peak, result.peak_memory_mb),
            result.pages,
        )
    return out, (
        f"warm {pages / best:.1f} pages/s ({best:.2f} s for {pages}, peak {peak:.0f} MB), "
        f"cold {pages / cold.seconds:.1f} pages/s ({cold.seconds:.2f} s)"
    )


def _ghostscript(source: Path, out: Path) -> tuple[Path | None, str]:
    program = shutil.which("gs")
    if program is None:
        return None, "not installed"
    command = [
        program, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dPDFSTOPONERROR",
        "-sDEVICE=tiffg4", "-r204x196", "-g1728x2292", "-dPDFFitPage", "-dFIXEDMEDIA",
        f"-sOutputFile={out}", str(source),
    ]  # fmt: skip
    best, peak = float("inf"), 0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        best, peak = min(best, time.perf_counter() - started), max(peak, usage.ru_maxrss)
    pages = tiff_pages(out)
    return out, f"{pages / best:.1f} pages/s ({best:.2f} s for {pages}, peak {peak / 1024:.0f} MB)"


def _line_times(outputs: dict[str, tuple[Path, Path | None]]) -> list[str]:
    try:
        from tests.support import spandsp
    except ImportError:
        return ["line time: skipped, tests/support/spandsp.py is missing"]
    if not spandsp.available():
        return ["line time: skipped, libspandsp.so.2 is not installed"]
    lines = []
    for label, (ours, gs) in outputs.items():
        parts = [f"ours {_call(spandsp, ours)}"]
        if gs is not None:
            parts.append(f"Ghostscript {_call(spandsp, gs)}")
        lines.append(f"line time {label} (spandsp, 14400 bps, ECM, fine): " + "; ".join(parts))
    return lines


def _call(spandsp: object, tiff: Path) -> str:
    result = spandsp.transmit(tiff, max_bit_rate=14400, max_seconds=3600)  # type: ignore[attr-defined]
    verdict = "accepted" if result.success else f"FAILED ({result.code} {result.text})"
    return (
        f"{result.seconds:.1f} s, {result.pages_transferred}/{result.pages_total} pages, "
        f"{tiff.stat().st_size // 1024} KB, {verdict}"
    )


if __name__ == "__main__":
    for line in asyncio.run(main()):
        print(line)
