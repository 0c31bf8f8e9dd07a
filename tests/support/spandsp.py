"""A real fax line in memory: two spandsp 0.0.6 fax machines (libspandsp2 via ctypes) talking.

The caller transmits a TIFF, the answerer receives into a TIFF, and the two exchange 20 ms blocks
of 8 kHz 16-bit audio until both T.30 sessions reach phase E. It is what FreeSWITCH's txfax and
rxfax do on a loopback call, without FreeSWITCH. Only the shared library is needed at run time:
the structures and constants below were checked against the 0.0.6 headers (libspandsp-dev).
"""

from __future__ import annotations

import ctypes
import functools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

LIBRARY = "libspandsp.so.2"
SAMPLE_RATE = 8000
BLOCK_SAMPLES = 160  # 20 ms, as FreeSWITCH's L16 loopback legs carry
BLOCK_SECONDS = BLOCK_SAMPLES / SAMPLE_RATE
# After one side reaches phase E its leg hangs up; the other side gets this much more line time
# to hear the last frames (DCN) before it is cut off too, as a hangup would.
HANGUP_GRACE_SECONDS = 5.0

# T.30 completion codes (spandsp/t30.h, enum T30_ERR_*, 0.0.6 numbering).
T30_ERR_OK = 0
T30_ERR_T0_EXPIRED = 2
T30_ERR_RX_DCNWHY = 35
T30_ERR_FILEERROR = 41
T30_ERR_BADTIFFHDR = 46
T30_ERR_CALLDROPPED = 49
NO_RECEIVER = -1  # rx_code of silent_line: no fax machine answered, so no receiver code exists

# t30.h capability bits.
_V27TER, _V29, _V17 = 0x01, 0x02, 0x04
_T4_1D, _T4_2D, _T6 = 0x02, 0x04, 0x08
_RESOLUTIONS = 0x01 | 0x02 | 0x04 | 0x10000 | 0x20000 | 0x40000  # standard..superfine, R4..R16
_IMAGE_SIZES = 0x01 | 0x02 | 0x04 | 0x10000 | 0x20000 | 0x40000 | 0x80000 | 0x100000


class T30Stats(ctypes.Structure):
    """t30_stats_t of spandsp 0.0.6: fifteen ints, 60 bytes (sizeof checked against the header)."""

    _fields_ = [
        ("bit_rate", ctypes.c_int),
        ("error_correcting_mode", ctypes.c_int),
        ("pages_tx", ctypes.c_int),
        ("pages_rx", ctypes.c_int),
        ("pages_in_file", ctypes.c_int),
        ("x_resolution", ctypes.c_int),
        ("y_resolution", ctypes.c_int),
        ("width", ctypes.c_int),
        ("length", ctypes.c_int),
        ("image_size", ctypes.c_int),
        ("encoding", ctypes.c_int),
        ("bad_rows", ctypes.c_int),
        ("longest_bad_row_run", ctypes.c_int),
        ("error_correcting_mode_retries", ctypes.c_int),
        ("current_status", ctypes.c_int),
    ]


# void (*)(t30_state_t *s, void *user_data, int completion_code)
PhaseEHandler = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
Block = ctypes.c_int16 * BLOCK_SAMPLES


@dataclass(frozen=True)
class FaxCallResult:
    """What both fax machines reported at the end of one call (codes are spandsp T30_ERR_*)."""

    success: bool
    code: int
    text: str
    rx_code: int
    rx_text: str
    pages_transferred: int
    pages_total: int
    bit_rate: int
    ecm: bool
    seconds: float
    local_station_id: str
    remote_station_id: str
    resolution: str
    image_size: int
    bad_rows: int
    timed_out: bool = False  # max_seconds of line time passed and the call was cut off


_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "fax_init": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]),
    "fax_free": (ctypes.c_int, [ctypes.c_void_p]),
    "fax_tx": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int]),
    "fax_rx": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int]),
    "fax_set_transmit_on_idle": (None, [ctypes.c_void_p, ctypes.c_int]),
    "fax_get_t30_state": (ctypes.c_void_p, [ctypes.c_void_p]),
    "t30_set_tx_ident": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
    "t30_get_rx_ident": (ctypes.c_char_p, [ctypes.c_void_p]),
    "t30_set_tx_page_header_info": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
    "t30_set_tx_file": (None, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]),
    "t30_set_rx_file": (None, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]),
    "t30_set_ecm_capability": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "t30_set_supported_modems": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "t30_set_supported_compressions": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "t30_set_supported_resolutions": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "t30_set_supported_image_sizes": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "t30_set_phase_e_handler": (None, [ctypes.c_void_p, PhaseEHandler, ctypes.c_void_p]),
    "t30_get_transfer_statistics": (None, [ctypes.c_void_p, ctypes.POINTER(T30Stats)]),
    "t30_terminate": (None, [ctypes.c_void_p]),
    "t30_completion_code_to_str": (ctypes.c_char_p, [ctypes.c_int]),
}


@functools.cache
def _library() -> ctypes.CDLL:
    """libspandsp.so.2 with every function we call given its C signature (OSError if absent)."""
    lib = ctypes.CDLL(LIBRARY)
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


def available() -> bool:
    """True when libspandsp.so.2 loads and has the functions this module calls."""
    try:
        _library()
    except (OSError, AttributeError):
        return False
    return True


def completion_text(code: int) -> str:
    """spandsp's own words for a T.30 completion code."""
    text: bytes | None = _library().t30_completion_code_to_str(code)
    return (text or b"").decode("latin-1")


@dataclass
class _Machine:
    """One spandsp fax machine: its fax_state_t, its t30_state_t, and what phase E told us."""

    fax: int
    t30: int
    code: int | None = None
    stats: T30Stats = field(default_factory=T30Stats)
    remote_ident: str = ""
    handler: object = None  # the CFUNCTYPE object; kept so ctypes does not free the thunk

    @property
    def done(self) -> bool:
        return self.code is not None

    def on_phase_e(self, _t30: int | None, _user: int | None, code: int) -> None:
        """Phase E: the call is over for this machine; keep the code and the final statistics."""
        lib = _library()
        self.code = code
        lib.t30_get_transfer_statistics(self.t30, ctypes.byref(self.stats))
        ident: bytes | None = lib.t30_get_rx_ident(self.t30)
        self.remote_ident = (ident or b"").decode("latin-1")

    def hang_up(self) -> None:
        """The line is gone: spandsp ends the session, which runs phase E."""
        if not self.done:
            _library().t30_terminate(self.t30)


def _modems(max_bit_rate: int) -> int:
    """The modem set offering speeds up to max_bit_rate (V.17 14400, V.29 9600, V.27ter 4800)."""
    if max_bit_rate >= 12000:
        return _V17 | _V29 | _V27TER
    if max_bit_rate >= 7200:
        return _V29 | _V27TER
    return _V27TER


@contextmanager
def _machine(calling: bool, ident: str, *, max_bit_rate: int, ecm: bool) -> Iterator[_Machine]:
    """A fax machine configured as mod_spandsp configures its own; freed on exit."""
    lib = _library()
    fax = lib.fax_init(None, 1 if calling else 0)
    if not fax:
        raise MemoryError("spandsp fax_init returned NULL")
    try:
        # Without this fax_tx returns short blocks once a side has nothing to say, and the calls
        # fail; a real line carries silence then.
        lib.fax_set_transmit_on_idle(fax, 1)
        machine = _Machine(fax=fax, t30=lib.fax_get_t30_state(fax))
        machine.handler = PhaseEHandler(machine.on_phase_e)
        lib.t30_set_phase_e_handler(machine.t30, machine.handler, None)
        if ident:
            lib.t30_set_tx_ident(machine.t30, ident.encode("latin-1"))
        lib.t30_set_supported_modems(machine.t30, _modems(max_bit_rate))
        lib.t30_set_supported_compressions(machine.t30, _T4_1D | _T4_2D | (_T6 if ecm else 0))
        lib.t30_set_supported_resolutions(machine.t30, _RESOLUTIONS)
        lib.t30_set_supported_image_sizes(machine.t30, _IMAGE_SIZES)
        lib.t30_set_ecm_capability(machine.t30, 1 if ecm else 0)
        yield machine
    finally:
        lib.fax_free(fax)  # fax_free runs t30_release (closes the TIFFs), then frees the state


def _speak(machine: _Machine, block: ctypes.Array[ctypes.c_int16]) -> None:
    """The machine's next 20 ms of audio; silence fills whatever it did not produce."""
    produced = _library().fax_tx(machine.fax, block, BLOCK_SAMPLES)
    if produced < BLOCK_SAMPLES:
        missing = BLOCK_SAMPLES - produced
        ctypes.memset(ctypes.byref(block, produced * 2), 0, missing * 2)


def _exchange(a: _Machine, b: _Machine | None, max_seconds: float) -> tuple[int, bool]:
    """Run the line until both machines finish; b=None is a silent far end. (blocks, timed out)"""
    lib = _library()
    a_out, b_out = Block(), Block()
    machines = [m for m in (a, b) if m is not None]
    max_blocks = round(max_seconds / BLOCK_SECONDS)
    grace_blocks = round(HANGUP_GRACE_SECONDS / BLOCK_SECONDS)
    blocks, hangup_at = 0, None
    while not all(m.done for m in machines):
        if blocks >= max_blocks or blocks == hangup_at:
            for machine in machines:
                machine.hang_up()
            return blocks, blocks >= max_blocks
        _speak(a, a_out)
        if b is not None:
            _speak(b, b_out)
            lib.fax_rx(b.fax, a_out, BLOCK_SAMPLES)
        lib.fax_rx(a.fax, b_out, BLOCK_SAMPLES)
        blocks += 1
        if hangup_at is None and any(m.done for m in machines):
            hangup_at = blocks + grace_blocks
    return blocks, False


def _resolution(stats: T30Stats) -> str:
    """Pixels per metre as FreeSWITCH reports it ("8040x7700"), or "" when no page went."""
    if stats.x_resolution <= 0 or stats.y_resolution <= 0:
        return ""
    return f"{stats.x_resolution}x{stats.y_resolution}"


def _result(
    tx: _Machine, rx: _Machine | None, blocks: int, tx_ident: str, timed_out: bool
) -> FaxCallResult:
    """Both machines' phase E reports folded into one result."""
    code = T30_ERR_CALLDROPPED if tx.code is None else tx.code
    rx_code = NO_RECEIVER if rx is None or rx.code is None else rx.code
    pages = rx.stats.pages_rx if rx is not None else 0
    return FaxCallResult(
        success=code == T30_ERR_OK and rx_code == T30_ERR_OK and pages > 0,
        code=code,
        text=completion_text(code),
        rx_code=rx_code,
        rx_text="no fax machine answered" if rx is None else completion_text(rx_code),
        pages_transferred=pages,
        pages_total=max(tx.stats.pages_in_file, 0),
        bit_rate=tx.stats.bit_rate if pages else 0,
        ecm=bool(tx.stats.error_correcting_mode) if pages else False,
        seconds=round(blocks * BLOCK_SECONDS, 2),
        local_station_id=tx_ident,
        remote_station_id=tx.remote_ident,
        resolution=_resolution(tx.stats) if pages else "",
        image_size=tx.stats.image_size,
        bad_rows=rx.stats.bad_rows if rx is not None else 0,
        timed_out=timed_out,
    )


def transmit(
    tx_tiff: Path,
    rx_tiff: Path | None = None,
    *,
    tx_ident: str = "",
    rx_ident: str = "",
    header: str = "",
    max_bit_rate: int = 14400,
    ecm: bool = True,
    max_seconds: float = 600.0,
) -> FaxCallResult:
    """Two spandsp fax machines (caller transmits tx_tiff, answerer receives into rx_tiff, or a temp
    file) exchanging 20 ms blocks of 8 kHz 16-bit audio in memory until both calls end or
    max_seconds of simulated line time pass (then code/text report the timeout)."""
    with tempfile.TemporaryDirectory(prefix="spandsp-") as scratch:
        target = rx_tiff if rx_tiff is not None else Path(scratch) / "rx.tif"
        with (
            _machine(True, tx_ident, max_bit_rate=max_bit_rate, ecm=ecm) as tx,
            _machine(False, rx_ident, max_bit_rate=max_bit_rate, ecm=ecm) as rx,
        ):
            if header:
                _library().t30_set_tx_page_header_info(tx.t30, header.encode("latin-1"))
            _library().t30_set_tx_file(tx.t30, str(tx_tiff).encode(), -1, -1)
            _library().t30_set_rx_file(rx.t30, str(target).encode(), -1)
            blocks, timed_out = _exchange(tx, rx, max_seconds)
        return _result(tx, rx, blocks, tx_ident, timed_out)


def silent_line(tx_tiff: Path, *, seconds: float = 60.0) -> FaxCallResult:
    """The far end answers but no fax machine is there (only silence): the transmitter gives up
    as spandsp would (FreeSWITCH recorded code 49 'The call dropped prematurely' for this).

    The far end plays `seconds` of silence from its answer and hangs up. As with FreeSWITCH's
    &txfax, the transmitter starts one block after the answer, so with the default 60 s the hangup
    beats spandsp's 60 s T0 timer (code 49); give it longer and T0 expires first (code 2)."""
    with _machine(True, "", max_bit_rate=14400, ecm=True) as tx:
        _library().t30_set_tx_file(tx.t30, str(tx_tiff).encode(), -1, -1)
        blocks, _ = _exchange(tx, None, max(seconds - BLOCK_SECONDS, 0.0))
    return _result(tx, None, blocks + 1, "", timed_out=False)
