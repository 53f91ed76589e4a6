"""Read and write mono float32 WAV files with the standard library.

Every path argument also takes a binary file-like object, so tests can
round-trip through memory.
"""

from __future__ import annotations

import io
import os
import stat
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from voice_guide.errors import AudioFileError
from voice_guide.outputs import PUBLIC_MODE, replacing
from voice_guide.sound.levels import Samples

PathOrFile = str | os.PathLike[str] | BinaryIO

_PCM_DTYPES = {1: np.uint8, 2: np.int16, 4: np.int32}
# What a header may claim before anything is allocated: a lying header (65,535
# channels, a 1 Hz rate, more frames than the file holds) is refused, not obeyed.
MAX_CHANNELS = 16
MIN_RATE_HZ = 4000
MAX_RATE_HZ = 384_000


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
    """Read a PCM WAV as float32 frames x channels; return (frames, sample_rate_hz).

    The header is checked (channels, rate, sample width, frames against the file's real
    size) before the samples are read, and only a regular file is opened, so a FIFO or a
    device ends at once with one line.
    """
    name = _name(source)
    hint = "expected PCM WAV; convert with ffmpeg -i IN -c:a pcm_s16le OUT.wav"
    try:
        handle = _open_regular(source) if isinstance(source, (str, os.PathLike)) else source
        try:
            with wave.open(handle, "rb") as w:
                channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
                _check_header(name, channels, width, rate)
                size = _size_of(handle)
                frames = w.getnframes()
                if size is not None:
                    frames = min(frames, size // (channels * width))
                raw = w.readframes(frames)
        finally:
            if handle is not source:
                handle.close()
    except FileNotFoundError:
        raise AudioFileError(f"no such file: {name}", "give the path of a WAV file") from None
    except (wave.Error, EOFError, OSError, ValueError, OverflowError, MemoryError) as exc:
        raise AudioFileError(f"{name}: not a readable WAV file ({exc})", hint) from None
    return _pcm_to_float(raw, channels, width), rate


def _open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    # Non-blocking, so opening a FIFO does not wait for a writer; then refuse all but files.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AudioFileError(f"{os.fspath(path)}: not a regular file", "give the path of a WAV file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_header(name: str, channels: int, width: int, rate: int) -> None:
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioFileError(
            f"{name}: the header claims {channels} channels", f"a WAV with 1 to {MAX_CHANNELS} channels"
        )
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise AudioFileError(
            f"{name}: the header claims a sample rate of {rate} Hz", f"a WAV at {MIN_RATE_HZ} to {MAX_RATE_HZ} Hz"
        )
    if width not in (1, 2, 3, 4):
        raise AudioFileError(f"{name}: unsupported sample width {width} bytes", "expected 8, 16, 24 or 32-bit PCM")


def _size_of(handle: BinaryIO) -> int | None:
    try:
        here = handle.tell()
        end = handle.seek(0, io.SEEK_END)
        handle.seek(here)
    except (OSError, AttributeError, ValueError):
        return None
    return int(end)


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


def write_wav(target: PathOrFile, samples: Samples, sample_rate_hz: int, mode: int = PUBLIC_MODE) -> None:
    """Write mono 16-bit PCM; a path is written atomically (temp file, then rename) with `mode`."""
    if isinstance(target, (str, os.PathLike)):
        with replacing(Path(target), mode) as tmp, open(tmp, "wb") as fh:
            write_wav(fh, samples, sample_rate_hz)
        return
    with wav_writer(target, 1, sample_rate_hz) as w:
        w.writeframes(to_pcm16(samples))


def wav_writer(file: BinaryIO, channels: int, sample_rate_hz: int) -> wave.Wave_write:
    """Start a 16-bit PCM WAV on an open binary file (the caller closes the file)."""
    # Handing wave an open file, never a path: when wave opens the path itself and that
    # fails, its half-built writer prints "Exception ignored ... Wave_write" at exit.
    w = wave.open(file, "wb")  # noqa: SIM115 - the caller closes it
    w.setnchannels(channels)
    w.setsampwidth(2)
    w.setframerate(int(sample_rate_hz))
    return w


def wav_bytes(samples: Samples, sample_rate_hz: int) -> bytes:
    """Return a complete 16-bit WAV file as bytes."""
    buf = io.BytesIO()
    write_wav(buf, samples, sample_rate_hz)
    return buf.getvalue()
