"""Render with real espeak-ng speech: every clip lands where CUES.json says, to the sample."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voice_guide.paths import UserDirs
from voice_guide.script import expand, load
from voice_guide.script.library import Library
from voice_guide.sound.align import find_clip
from voice_guide.sound.encode import _transcode as transcode
from voice_guide.sound.render import SessionClips, blocks, build, cues_json
from voice_guide.sound.speech import ClipCache, Pyttsx3Speaker, SpeechSettings, make_speaker, speech_identity
from voice_guide.sound.wavfile import read_wav, to_pcm16, wav_writer

from .conftest import REPO, CliResult, default_speaker

Cli = Callable[..., CliResult]
RATE = 24_000


def clip_for(event: dict[str, object], bank: SessionClips) -> np.ndarray:
    if event["kind"] == "say":
        return bank.speech(str(event["text"]))
    if event["kind"] == "chime":
        return bank.cue(str(event["name"]))
    direction = str(event["name"]).removeprefix("breath-")
    return bank.breath(direction, round((float(event["end_s"]) - float(event["start_s"])) * RATE))  # type: ignore[arg-type]


def test_every_onset_matches_cues_json_to_one_sample(cli: Cli, tmp_path: Path, home: Path) -> None:
    out, cues = tmp_path / "s.wav", tmp_path / "s.json"
    result = cli(
        "render",
        "timeout-breathing",
        "-o",
        str(out),
        "--cues",
        str(cues),
        "--sample-rate",
        str(RATE),
        "--set",
        "answer=30s",
    )
    assert result.code == 0, result.err
    doc = json.loads(cues.read_text())
    audio, rate = read_wav(out)
    assert rate == doc["sample_rate"] == RATE
    assert len(audio) == round(doc["duration_s"] * RATE)
    bank = SessionClips(ClipCache(home / "cache" / "speech", default_speaker(home), RATE), RATE)
    sounding = [e for e in doc["events"] if e["kind"] in ("say", "chime", "breathe")]
    assert len(sounding) > 30
    for event in sounding:
        expected = round(event["start_s"] * RATE)
        assert event["start_s"] * RATE == pytest.approx(expected, abs=1e-6)  # exact to the sample
        # A breath's spoken number starts on the same frame as its tone: match the two together, as
        # they sound, since either alone can fit a few milliseconds off under the other.
        template = clip_for(event, bank)
        for other in sounding:
            if other is not event and round(other["start_s"] * RATE) == expected:
                extra = clip_for(other, bank)
                template = np.pad(template, (0, max(0, len(extra) - len(template))))
                template[: len(extra)] += extra
        found = find_clip(audio, template, expected, 480, RATE)
        assert abs(found - expected) <= 1, event
    # Listen windows and pauses are quiet, apart from a remind tick.
    for event in doc["events"]:
        if event["kind"] in ("listen", "pause"):
            a, b = round(event["start_s"] * RATE), round(event["end_s"] * RATE)
            ticks = [e for e in sounding if a <= round(e["start_s"] * RATE) < b]
            if not ticks:
                assert np.max(np.abs(audio[a:b]), initial=0.0) < 1e-3, event


def test_every_builtin_script_renders(home: Path) -> None:
    lib = Library.default(UserDirs.from_environ())
    cache = ClipCache(home / "cache" / "speech", Pyttsx3Speaker(), 16_000)
    for script_id in lib.ids():
        timeline = build(expand(lib.load(script_id)), cache)
        audio = timeline.mix(0, timeline.length_frames)
        assert timeline.length_frames > 60 * 16_000, script_id
        assert np.max(np.abs(audio)) <= 1.0
        assert np.count_nonzero(audio) > 5 * 16_000, script_id


def test_mp3_decodes_to_the_expected_length_with_chapters(cli: Cli, tmp_path: Path) -> None:
    out, cues = tmp_path / "m.mp3", tmp_path / "m.json"
    result = cli("render", "mindful-pause", "-o", str(out), "--cues", str(cues), "--chapters")
    assert result.code == 0, result.err
    expected_s = json.loads(cues.read_text())["duration_s"]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-show_entries", "format=duration", "-of", "json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(probe.stdout)
    assert float(info["format"]["duration"]) == pytest.approx(expected_s, abs=0.05)
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
        capture_output=True,
        check=True,
    ).stdout
    assert len(decoded) / 2 / 48000 == pytest.approx(expected_s, abs=0.05)
    titles = [c["tags"]["title"] for c in info["chapters"]]
    assert len(titles) >= 3 and all(t.strip() for t in titles)


def test_wav_chapters_go_beside_the_file(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "w.wav"
    result = cli("render", "mindful-pause", "-o", str(out), "--chapters", "--sample-rate", "16000")
    assert result.code == 0, result.err
    vtt = (tmp_path / "w.vtt").read_text()
    assert vtt.startswith("WEBVTT") and vtt.count("-->") >= 4


def test_render_rejects_an_unknown_format(cli: Cli, tmp_path: Path) -> None:
    result = cli("render", "mindful-pause", "-o", str(tmp_path / "x.aiff"))
    assert result.code == 2
    assert "unknown extension '.aiff'" in result.err and result.err.count("\n") == 1


def test_builtin_scripts_are_in_the_repo() -> None:
    assert len(list((REPO / "scripts").glob("*.yaml"))) >= 18


STREAMED_SCRIPT = """title: Streamed {tag}
summary: A render written while its prompts are made.
steps:
  - say: "Settle in, {tag}. Let your shoulders drop."
  - chime: start
  - breathe: {{count: 3, in: 2s, hold: 1s, out: 2s, counting: spoken}}
  - say: "Now {a}, tell {b} one thing from today."
  - listen: a
    for: 3s
    remind: 1s
  - chime: end
  - say: "Thank you both. That is the end, {tag}."
"""


def _packets(path: Path) -> list[str]:
    """Return the md5 of every audio packet (an OGG's stream serial is random, so its bytes differ run to run)."""
    listing = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-c", "copy", "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in listing.splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("engine", ["piper", "espeak"])
@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg"])
def test_a_cold_render_written_as_it_goes_is_the_file_a_warm_cache_makes(
    cli: Cli, tmp_path: Path, home: Path, engine: str, fmt: str
) -> None:
    # Cold: these prompts are in no cache yet, so they are made while the steps are mixed
    # and encoded. The reference is made as render made it before: every prompt from the
    # (now warm) cache, the whole timeline compiled, a WAV written, then encoded by pydub.
    script = tmp_path / "streamed.yaml"
    script.write_text(STREAMED_SCRIPT.format(tag=f"{engine} {fmt}", a="{a}", b="{b}"))
    out, cues = tmp_path / f"s.{fmt}", tmp_path / "s.json"
    result = cli("render", str(script), "-o", str(out), "--cues", str(cues), "--engine", engine, "--rate", "150")
    assert result.code == 0, result.err

    speaker = make_speaker(SpeechSettings(engine, None, 150), UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)}))
    cache = ClipCache(home / "cache" / "speech", speaker, 48_000)
    synthesized = cache.synth_calls
    loaded = load(script)
    timeline = build(expand(loaded), cache)
    assert cache.synth_calls == synthesized  # every prompt was in the cache already
    reference_wav = tmp_path / "reference.wav"
    with reference_wav.open("wb") as fh, wav_writer(fh, 1, 48_000) as wav:
        for block in blocks(timeline):
            wav.writeframes(to_pcm16(block))
    reference = reference_wav
    if fmt != "wav":
        reference = tmp_path / f"reference.{fmt}"
        transcode(reference_wav, reference, fmt, (), loaded.title)
    if fmt == "ogg":
        assert _packets(out) == _packets(reference)
    else:
        assert out.read_bytes() == reference.read_bytes()
    assert json.loads(cues.read_text()) == cues_json(timeline, speech_identity(speaker))
