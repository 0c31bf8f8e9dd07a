"""The in-memory fax line: real spandsp 0.0.6 machines sending real TIFFs to each other."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, TiffImagePlugin

from tests.conftest import missing_server
from tests.support import spandsp

FIXTURES = Path(__file__).parents[1] / "fixtures" / "freeswitch"
TX_FAX = FIXTURES / "tx_fax.tif"  # ghostscript tiffg4, 2 pages, 1728x2292 at 204x196
RX_FAX = FIXTURES / "rx_fax.tif"  # what FreeSWITCH's spandsp 3 received: G3 2-D, LSB first


@pytest.fixture(autouse=True)
def _spandsp() -> None:
    if not spandsp.available():
        missing_server("libspandsp2")


def _pages(tiff: Path) -> list[tuple[int, str]]:
    """(width, ImageDescription) of every page, each page decoded so a broken one fails here."""
    pages = []
    with Image.open(tiff) as image:
        assert isinstance(image, TiffImagePlugin.TiffImageFile)
        for index in range(image.n_frames):
            image.seek(index)
            image.load()
            pages.append((image.width, str(image.tag_v2.get(270, ""))))
    return pages


def test_two_page_fax_arrives_at_14400_with_ecm(tmp_path: Path) -> None:
    """The FreeSWITCH fixture TIFF goes through: both sides OK, 2 readable 1728-wide pages."""
    received = tmp_path / "rx.tif"
    result = spandsp.transmit(
        TX_FAX, received, tx_ident="+1 555 0100", rx_ident="RX Station", header="Sender"
    )
    assert (result.success, result.code, result.text) == (True, 0, "OK")
    assert (result.rx_code, result.rx_text) == (0, "OK")
    assert (result.pages_transferred, result.pages_total) == (2, 2)
    assert (result.bit_rate, result.ecm, result.bad_rows) == (14400, True, 0)
    assert (result.local_station_id, result.remote_station_id) == ("+1 555 0100", "RX Station")
    assert result.resolution == "8031x7700"  # 204x196 dpi in pixels per metre
    assert result.image_size > 0
    assert 20 < result.seconds < 120
    assert not result.timed_out
    assert _pages(received) == [(1728, "+1 555 0100"), (1728, "+1 555 0100")]


def test_received_file_can_be_sent_again(tmp_path: Path) -> None:
    """A TIFF as spandsp writes it (G3 2-D, LSB first) is itself a valid fax to send."""
    result = spandsp.transmit(RX_FAX, tmp_path / "again.tif")
    assert (result.success, result.code, result.pages_transferred) == (True, 0, 2)
    assert [width for width, _ in _pages(tmp_path / "again.tif")] == [1728, 1728]


def test_slower_line_without_ecm_negotiates_down() -> None:
    """max_bit_rate and ecm reach the modems: 9600 without ECM is what gets negotiated."""
    result = spandsp.transmit(TX_FAX, max_bit_rate=9600, ecm=False)
    assert (result.success, result.bit_rate, result.ecm) == (True, 9600, False)


def test_grey_tiff_is_refused_by_the_transmitter(tmp_path: Path) -> None:
    """An 8-bit grey page 1686 px wide is no TIFF/F: spandsp 0.0.6 will not open it.

    FreeSWITCH's spandsp 3 reported 46 'Bad TIFF/F header' for the same file; 0.0.6 says 41.
    The receiver, as recorded there, sees the caller's DCN (35)."""
    grey = tmp_path / "grey.tif"
    Image.new("L", (1686, 2292), 200).save(grey, dpi=(204, 196))
    result = spandsp.transmit(grey, tmp_path / "rx.tif")
    assert (result.success, result.code) == (False, spandsp.T30_ERR_FILEERROR)
    assert result.text == "TIFF/F file cannot be opened"
    assert (result.rx_code, result.rx_text) == (
        spandsp.T30_ERR_RX_DCNWHY,
        "Unexpected DCN while waiting for DCS or DIS",
    )
    assert (result.pages_transferred, result.pages_total) == (0, 0)


def test_missing_file_is_a_file_error(tmp_path: Path) -> None:
    """A TIFF that is not there ends the call with spandsp's file error, nothing received."""
    result = spandsp.transmit(tmp_path / "absent.tif")
    assert (result.success, result.code, result.pages_transferred) == (False, 41, 0)
    assert result.text == spandsp.completion_text(spandsp.T30_ERR_FILEERROR)


def test_silent_far_end_drops_the_call_like_freeswitch() -> None:
    """60 s of silence then a hangup: code 49 'The call dropped prematurely', as recorded."""
    result = spandsp.silent_line(TX_FAX)
    assert (result.success, result.code) == (False, spandsp.T30_ERR_CALLDROPPED)
    assert result.text == "The call dropped prematurely"
    assert (result.rx_code, result.remote_station_id) == (spandsp.NO_RECEIVER, "")
    assert (result.pages_transferred, result.seconds) == (0, 60.0)


def test_longer_silence_lets_timer_t0_expire() -> None:
    """Past spandsp's 60 s T0 the transmitter gives up by itself before the far end hangs up."""
    result = spandsp.silent_line(TX_FAX, seconds=90)
    assert (result.code, result.text) == (2, "Timed out waiting for initial communication")
    assert result.seconds == pytest.approx(60.02)


def test_line_time_limit_cuts_the_call_off(tmp_path: Path) -> None:
    """max_seconds hangs both sides up mid-call and says so."""
    result = spandsp.transmit(TX_FAX, tmp_path / "rx.tif", max_seconds=10)
    assert (result.success, result.timed_out, result.seconds) == (False, True, 10.0)
    assert (result.code, result.rx_code) == (49, 49)
    assert result.pages_transferred == 0
