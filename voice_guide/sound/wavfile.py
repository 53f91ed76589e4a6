"""Read and write mono float32 WAV files with the standard library.

Every path argument also takes a binary file-like object, so tests can
round-trip through memory.
"""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from voice_guide.errors import AudioFileError
from voice_guide.sound.levels import Samples

PathOrFile = str | os.PathLike[str] | BinaryIO

_PCM_DTYPES = {1: np.uint8, 2: np.int16, 4: np.int32}


def _name(target: PathOrFile) -> str:
    return str(target) if isinstance(target, (str, os.PathLike)) else getattr(target, "name", "<stream>")


def read_wav(source: PathOrFile) -> tuple[Samples, int]:
    """Read a PCM WAV as mono float32 in [-1, 1]; return (samples, sample_rate_hz).

    Several channels are averaged. 8-, 16-, 24- and 32-bit PCM are accepted.
    """
    frames, rate = read_wav_channels(source)
    mono = frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1)
    return mono.astype(np.float32), rate


def read_wav_channels(source: PathOrFile) -> tuple[npt.NDArray[np.float32], int]:
    """Read a PCM WAV as float32 frames x channels; return (frames, sample_rate_hz)."""
    try:
        with wave.open(source if not isinstance(source, os.PathLike) else str(source), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise AudioFileError(f"no such file: {_name(source)}", "give the path of a WAV file") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise AudioFileError(
            f"{_name(source)}: not a readable WAV file ({exc})",
            "expected PCM WAV; convert with ffmpeg -i IN -c:a pcm_s16le OUT.wav",
        ) from None
    if channels < 1 or rate < 1:
        raise AudioFileError(f"{_name(source)}: a WAV with {channels} channels at {rate} Hz", "a mono or stereo WAV")
    return _pcm_to_float(raw, channels, width), rate


def _pcm_to_float(raw: bytes, channels: int, width: int) -> npt.NDArray[np.float32]:
    usable = len(raw) - len(raw) % (channels * width)
    raw = raw[:usable]
    if width == 3:
        # Widen 24-bit to 32-bit by putting each 3-byte sample in the top bytes.
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        wide = np.zeros((b.shape[0], 4), dtype=np.uint8)
        wide[:, 1:] = b
        data = wide.view("<i4").reshape(-1).astype(np.float64) / float(2**31)
    elif width in _PCM_DTYPES:
        ints = np.frombuffer(raw, dtype=_PCM_DTYPES[width])
        if width == 1:  # 8-bit WAV is unsigned
            data = (ints.astype(np.float64) - 128.0) / 128.0
        else:
            data = ints.astype(np.float64) / float(2 ** (8 * width - 1))
    else:
        raise AudioFileError(f"unsupported sample width {width} bytes", "expected 8, 16, 24 or 32-bit PCM")
    return data.reshape(-1, channels).astype(np.float32)


def to_pcm16(samples: Samples) -> bytes:
    """Quantize float samples to little-endian 16-bit PCM, clipping at full scale."""
    clipped = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 32767 / 32768)
    return np.round(clipped * 32768.0).astype("<i2").tobytes()


def write_wav(target: PathOrFile, samples: Samples, sample_rate_hz: int) -> None:
    """Write mono 16-bit PCM; a path is written atomically (temp file, then rename)."""
    if isinstance(target, (str, os.PathLike)):
        path = Path(target)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                write_wav(fh, samples, sample_rate_hz)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)  # only left when the write failed part way
        return
    with wave.open(target, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate_hz))
        w.writeframes(to_pcm16(samples))


def wav_bytes(samples: Samples, sample_rate_hz: int) -> bytes:
    """Return a complete 16-bit WAV file as bytes."""
    buf = io.BytesIO()
    write_wav(buf, samples, sample_rate_hz)
    return buf.getvalue()
