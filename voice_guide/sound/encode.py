"""Write a session's audio to a file: WAV streamed as it is mixed, compressed formats through ffmpeg.

Chapters (where each step starts) are embedded where the container allows
(mp3, m4a, ogg, flac) and written as WebVTT beside a WAV.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voice_guide.errors import AudioFileError, UsageError
from voice_guide.outputs import open_new, replacing, temp_beside, write_failed, write_text
from voice_guide.sound.levels import Samples
from voice_guide.sound.wavfile import to_pcm16, wav_writer

# Containers whose chapters phone players read (ID3 CHAP, MP4 chapters); the
# others get a WebVTT file beside them.
EMBEDS_CHAPTERS = ("mp3", "m4a")
# extension -> (ffmpeg muxer, ffmpeg codec); None for the WAV we write ourselves.
FORMATS: dict[str, tuple[str, str] | None] = {
    "wav": None,
    "flac": ("flac", "flac"),
    "ogg": ("ogg", "libvorbis"),
    "mp3": ("mp3", "libmp3lame"),
    "m4a": ("ipod", "aac"),
}


@dataclass(frozen=True)
class Chapter:
    """A named stretch of the session, in seconds from its start."""

    start_s: float
    end_s: float
    title: str


def format_of(path: Path) -> str:
    """Return the audio format named by `path`'s extension; raise UsageError if unknown."""
    ext = path.suffix.lower().lstrip(".")
    if ext not in FORMATS:
        what = f"unknown audio format '.{ext}'" if ext else "no extension"
        raise UsageError(f"-o {path}: {what}", "use .wav, .flac, .ogg, .mp3 or .m4a")
    return ext


def write_audio(
    path: Path, blocks: Iterable[Samples], sample_rate_hz: int, chapters: Sequence[Chapter] = (), title: str = ""
) -> list[Path]:
    """Write mono audio from `blocks` to `path` (format from its extension); return the files written.

    Chapters are embedded in mp3 and m4a and written as `<name>.vtt` for the other formats.

    The file appears whole or not at all: it is written beside the target and renamed.
    """
    fmt = format_of(path)
    if not path.parent.is_dir():
        raise UsageError(f"-o {path}: folder {path.parent} does not exist", "create it or pick another path")
    tmp = temp_beside(path, "wav")
    try:
        with open_new(tmp) as fh, wav_writer(fh, 1, sample_rate_hz) as out:
            for block in blocks:
                out.writeframes(to_pcm16(block))
        embed = fmt in EMBEDS_CHAPTERS
        if fmt == "wav":
            os.replace(tmp, path)
        else:
            _transcode(tmp, path, fmt, chapters if embed else (), title)
        written = [path]
        if chapters and not embed:
            vtt = path.with_suffix(".vtt")
            write_text(vtt, webvtt(chapters))
            written.append(vtt)
        return written
    except OSError as exc:
        raise write_failed(path, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


def _transcode(wav: Path, path: Path, fmt: str, chapters: Sequence[Chapter], title: str) -> None:
    from pydub import AudioSegment  # imported here: only compressed output needs it (and ffmpeg)

    if shutil.which("ffmpeg") is None:
        raise AudioFileError(
            f"cannot write {path}: ffmpeg is not installed", "install it (sudo apt-get install ffmpeg) or write a .wav"
        )
    muxer, codec = FORMATS[fmt] or ("", "")
    with tempfile.TemporaryDirectory(prefix="voice-guide-") as scratch:
        params = ["-hide_banner", "-loglevel", "error"]
        if chapters:
            meta = Path(scratch) / "chapters.txt"
            meta.write_text(ffmetadata(chapters, title), encoding="utf-8")
            # A second input carries the chapters; ffmpeg takes it after pydub's WAV input.
            params += ["-f", "ffmetadata", "-i", str(meta), "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1"]
        # The codec goes after every input: pydub would put it before the chapters
        # input, where ffmpeg would take it as that input's decoder.
        params += ["-acodec", codec]
        try:
            segment = AudioSegment.from_wav(str(wav))
            tags = {"title": title} if title and not chapters else None
            with replacing(path) as part:
                handle = segment.export(str(part), format=muxer, parameters=params, tags=tags)
                handle.close()
        except OSError:
            raise
        except Exception as exc:  # pydub raises its own CouldntEncodeError with ffmpeg's output
            raise AudioFileError(
                f"ffmpeg could not write {path}: {str(exc).splitlines()[0] if str(exc) else exc}",
                "try another format, or .wav",
            ) from None


def _ffmeta_escape(text: str) -> str:
    for ch in ("\\", "=", ";", "#", "\n"):
        text = text.replace(ch, "\\" + ch)
    return text


def ffmetadata(chapters: Sequence[Chapter], title: str = "") -> str:
    """Return chapters in ffmpeg's FFMETADATA1 text format (millisecond timebase)."""
    lines = [";FFMETADATA1"]
    if title:
        lines.append(f"title={_ffmeta_escape(title)}")
    for ch in chapters:
        lines += [
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={round(ch.start_s * 1000)}",
            f"END={round(ch.end_s * 1000)}",
            f"title={_ffmeta_escape(ch.title)}",
        ]
    return "\n".join(lines) + "\n"


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def webvtt(chapters: Sequence[Chapter]) -> str:
    """Return chapters as a WebVTT file (one cue per chapter)."""
    parts = ["WEBVTT", ""]
    for n, ch in enumerate(chapters, 1):
        parts += [str(n), f"{_vtt_time(ch.start_s)} --> {_vtt_time(ch.end_s)}", ch.title.replace("-->", "->"), ""]
    return "\n".join(parts)
