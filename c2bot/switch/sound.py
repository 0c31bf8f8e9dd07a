"""Sound files the switch plays: greetings, announcements and music on hold.

FreeSWITCH plays 16-bit mono PCM WAV at 8 or 16 kHz without transcoding surprises; anything
else is refused with what was found and what is needed, so the person can convert it.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

RATES = (8000, 16000)
NEEDED = "16-bit mono PCM WAV at 8 kHz or 16 kHz"
MAX_BYTES = 50 * 1024 * 1024


class BadSound(ValueError):
    """The file is not a sound the switch can play as it is; the message says why."""


@dataclass(frozen=True)
class SoundInfo:
    sample_rate: int
    channels: int
    sample_width: int  # bytes per sample
    frames: int

    @property
    def duration_ms(self) -> int:
        return self.frames * 1000 // self.sample_rate if self.sample_rate else 0

    def describe(self) -> str:
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        return f"{self.sample_width * 8}-bit {layout} at {self.sample_rate} Hz"


def inspect_wav(data: bytes) -> SoundInfo:
    """Check a WAV for the switch; raises BadSound naming what was found and what is needed."""
    if len(data) > MAX_BYTES:
        raise BadSound(f"The file is {len(data) // (1024 * 1024)} MB; at most 50 MB is accepted.")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        kind = "an MP3 file" if data[:3] == b"ID3" or data[:2] == b"\xff\xfb" else "not a WAV"
        raise BadSound(f"The file is {kind}; needed: {NEEDED}.")
    try:
        with wave.open(io.BytesIO(data)) as wav:
            info = SoundInfo(
                sample_rate=wav.getframerate(),
                channels=wav.getnchannels(),
                sample_width=wav.getsampwidth(),
                frames=wav.getnframes(),
            )
    except wave.Error as error:
        # The wave module reads only PCM: "unknown format: 3" is float, 6/7 are A-law/u-law.
        text = str(error)
        found = {"3": "32-bit float", "6": "A-law", "7": "u-law", "85": "MP3 in WAV"}.get(
            text.rsplit(":", 1)[-1].strip(), text
        )
        raise BadSound(f"The WAV is {found}; needed: {NEEDED}.") from None
    except EOFError:
        raise BadSound(f"The WAV is cut short; needed: a whole {NEEDED} file.") from None
    problems = []
    if info.sample_width != 2:
        problems.append(f"{info.sample_width * 8}-bit samples")
    if info.channels != 1:
        problems.append("stereo" if info.channels == 2 else f"{info.channels} channels")
    if info.sample_rate not in RATES:
        problems.append(f"{info.sample_rate} Hz")
    if problems:
        raise BadSound(f"The WAV is {info.describe()} ({', '.join(problems)}); needed: {NEEDED}.")
    if info.frames == 0:
        raise BadSound("The WAV holds no sound (0 samples).")
    return info
