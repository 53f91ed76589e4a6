"""Write a session's audio to a file as it is mixed: WAV ourselves, compressed formats piped through ffmpeg.

Chapters (where each step starts) are embedded where the container allows
(mp3, m4a, ogg, flac) and written as WebVTT beside a WAV.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
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


ChapterSource = Sequence[Chapter] | Callable[[], Sequence[Chapter]]


def write_audio(
    path: Path, blocks: Iterable[Samples], sample_rate_hz: int, chapters: ChapterSource = (), title: str = ""
) -> list[Path]:
    """Write mono audio from `blocks` to `path` (format from its extension); return the files written.

    Chapters are embedded in mp3 and m4a and written as `<name>.vtt` for the other formats.
    `chapters` may be a function called once every block is written (a render learns where
    its steps start as it goes). Blocks are encoded as they come: a WAV is written as it
    is mixed and other formats are piped into ffmpeg, except mp3 and m4a with chapters,
    whose chapters ffmpeg must read before the audio (a WAV is written first, then encoded).

    The file appears whole or not at all: it is written beside the target and renamed.
    """
    fmt = format_of(path)
    if not path.parent.is_dir():
        raise UsageError(f"-o {path}: folder {path.parent} does not exist", "create it or pick another path")
    wants_chapters = callable(chapters) or bool(chapters)
    embed = fmt in EMBEDS_CHAPTERS
    tmp = temp_beside(path, "wav")
    try:
        if fmt != "wav" and not (embed and wants_chapters):
            _encode_piped(blocks, path, fmt, sample_rate_hz, title)
        else:
            with open_new(tmp) as fh, wav_writer(fh, 1, sample_rate_hz) as out:
                for block in blocks:
                    out.writeframes(to_pcm16(block))
        marks = chapters() if callable(chapters) else chapters
        if fmt == "wav":
            os.replace(tmp, path)
        elif embed and wants_chapters:
            _transcode(tmp, path, fmt, marks, title)
        written = [path]
        if marks and not embed:
            vtt = path.with_suffix(".vtt")
            write_text(vtt, webvtt(marks))
            written.append(vtt)
        return written
    except OSError as exc:
        raise write_failed(path, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


def _ffmpeg_output_args(fmt: str, title: str) -> list[str]:
    """Return ffmpeg's arguments after the input for `fmt`: the arguments pydub gave it, so files match."""
    muxer, codec = FORMATS[fmt] or ("", "")
    args = ["-hide_banner", "-loglevel", "error", "-acodec", codec]
    if title:
        args += ["-metadata", f"title={title}"]
        if fmt == "mp3":
            args += ["-id3v2_version", "4"]
    return [*args, "-f", muxer]


def _need_ffmpeg(path: Path) -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise AudioFileError(
            f"cannot write {path}: ffmpeg is not installed", "install it (sudo apt-get install ffmpeg) or write a .wav"
        )
    return found


def _encode_piped(blocks: Iterable[Samples], path: Path, fmt: str, sample_rate_hz: int, title: str) -> None:
    """Encode 16-bit blocks into `path` with ffmpeg as they come, through a pipe."""
    ffmpeg = _need_ffmpeg(path)
    raw_input = ["-f", "s16le", "-ar", str(sample_rate_hz), "-ac", "1", "-i", "pipe:0"]
    with tempfile.TemporaryFile() as errors, replacing(path) as part:
        command = [ffmpeg, "-y", *raw_input, *_ffmpeg_output_args(fmt, title), str(part)]
        encoder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        assert encoder.stdin is not None
        try:
            try:
                for block in blocks:
                    encoder.stdin.write(to_pcm16(block))
            except BrokenPipeError:
                pass  # ffmpeg gave up: its exit status and message say why, below
            finally:
                with contextlib.suppress(BrokenPipeError):
                    encoder.stdin.close()
            encoder.wait()
        except BaseException:
            encoder.kill()  # a failure making the audio (or Ctrl-C): no half-encoded file
            encoder.wait()
            raise
        if encoder.returncode != 0:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip().splitlines()
            raise AudioFileError(
                f"ffmpeg could not write {path}: {said[0] if said else f'exit status {encoder.returncode}'}",
                "try another format, or .wav",
            )


def _transcode(wav: Path, path: Path, fmt: str, chapters: Sequence[Chapter], title: str) -> None:
    from pydub import AudioSegment  # imported here: only compressed output needs it (and ffmpeg)

    _need_ffmpeg(path)
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
