"""The Piper voice for real: digest check, engine choice, cache separation, pace, lazy import."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voice_guide.cli.build import speech_seeds_dir
from voice_guide.cli.env import Env
from voice_guide.cli.play import opening_prompts
from voice_guide.errors import UsageError
from voice_guide.paths import UserDirs
from voice_guide.sound.levels import loudness_lufs
from voice_guide.sound.speech import (
    DEFAULT_RATE_WPM,
    ClipCache,
    Pyttsx3Speaker,
    SpeechSettings,
    VoiceError,
    all_voices,
    default_engine,
    engine_for,
    make_speaker,
)
from voice_guide.sound.speech import piper as piper_engine
from voice_guide.sound.speech.cache import QUIET_CUES, read_seed_index, speech_loudness_lufs
from voice_guide.sound.speech.piper import BUNDLED_MD5, BUNDLED_VOICE, PiperSpeaker, PiperVoiceFile, verified_digest
from voice_guide.sound.timeline import DEFAULT_RATE_HZ
from voice_guide.sound.wavfile import read_wav

from .conftest import REPO, CliResult
from .test_tts import SESSION_HZ, heard_wpm, library_prompts

Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def bundled() -> PiperVoiceFile:
    voice = piper_engine.bundled_voice()
    assert voice is not None, "the neural extra is part of the test install (make test)"
    return voice


def copy_voice(voice: PiperVoiceFile, folder: Path, name: str) -> Path:
    """Copy a voice's model and config into `folder` under `name`; return the model's path."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{name}.onnx"
    shutil.copyfile(voice.model, model)
    shutil.copyfile(voice.config, folder / f"{name}.onnx.json")
    return model


def test_bundled_voice_files_are_the_published_ones(bundled: PiperVoiceFile) -> None:
    for path in (bundled.model, bundled.config):
        assert hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() == BUNDLED_MD5[path.name]
    assert len(verified_digest(bundled)) == 64


def test_piper_is_the_default_engine_when_installed(home: Path) -> None:
    dirs = UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)})
    assert default_engine() == "piper"
    assert engine_for(SpeechSettings(), dirs) == "piper"
    speaker = make_speaker(SpeechSettings(), dirs)
    assert (speaker.engine_id, speaker.voice_id) == ("piper", BUNDLED_VOICE)
    assert engine_for(SpeechSettings(voice="gmw/en-gb"), dirs) == "espeak"
    assert engine_for(SpeechSettings(voice="English (Great Britain)"), dirs) == "espeak"
    assert engine_for(SpeechSettings(voice=BUNDLED_VOICE), dirs) == "piper"
    assert engine_for(SpeechSettings(voice="/somewhere/else.onnx"), dirs) == "piper"
    assert isinstance(make_speaker(SpeechSettings(engine="espeak"), dirs), Pyttsx3Speaker)
    with pytest.raises(UsageError, match="--engine festival"):
        engine_for(SpeechSettings(engine="festival"), dirs)


def test_a_tampered_copy_of_the_bundled_voice_is_refused(cli: Cli, tmp_path: Path, bundled: PiperVoiceFile) -> None:
    model = copy_voice(bundled, tmp_path / "voices", BUNDLED_VOICE)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    result = cli("render", "timeout-breathing", "-o", str(tmp_path / "t.wav"), "--voice", str(model))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "does not match the published digest" in lines[0] and str(model) in lines[0]
    assert not (tmp_path / "t.wav").exists()
    # An intact copy under the same name is accepted.
    shutil.copyfile(bundled.model, model)
    speaker = PiperSpeaker(PiperVoiceFile(BUNDLED_VOICE, model, "file"), 138)
    assert speaker.voice_digest == verified_digest(bundled)


def test_a_tampered_config_is_refused_too(tmp_path: Path, bundled: PiperVoiceFile) -> None:
    model = copy_voice(bundled, tmp_path, BUNDLED_VOICE)
    config = model.with_name(model.name + ".json")
    config.write_text(config.read_text(encoding="utf-8").replace('"noise_scale"', ' "noise_scale"'), encoding="utf-8")
    with pytest.raises(VoiceError, match="published digest") as raised:
        PiperSpeaker(PiperVoiceFile(BUNDLED_VOICE, model, "file"), 138).synthesize("Hello.")
    assert raised.value.exit_code == 2


def test_bad_voice_and_engine_are_one_line_exit_2(cli: Cli, tmp_path: Path) -> None:
    for args in (
        ["--voice", "no-such-voice-xyz"],
        ["--voice", str(tmp_path / "missing.onnx")],
        ["--engine", "festival"],
        ["--engine", "espeak", "--voice", BUNDLED_VOICE],
    ):
        result = cli("render", "timeout-breathing", "-o", str(tmp_path / "t.wav"), *args)
        assert result.code == 2, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1, (args, result.err)
        assert "Traceback" not in result.err


def test_voices_lists_every_engine_with_language_and_source(cli: Cli, home: Path) -> None:
    result = cli("voices", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    engines = {row["engine"] for row in rows}
    assert engines == {"piper", "espeak"}
    joe = next(row for row in rows if row["id"] == BUNDLED_VOICE)
    assert joe["languages"] == ["en-us"] and joe["source"] == "bundled"
    assert any(row["engine"] == "espeak" and "en-gb" in row["languages"] for row in rows)
    assert all(row["source"] for row in rows)
    text = cli("voices").out
    assert "default engine: piper" in text and BUNDLED_VOICE in text


def test_a_users_own_voice_is_found_by_name_in_the_voices_folder(home: Path, bundled: PiperVoiceFile) -> None:
    dirs = UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)})
    copy_voice(bundled, dirs.data / "voices", "our-voice")
    names = [(v.engine, v.id) for v in all_voices(dirs)]
    assert ("piper", "our-voice") in names
    speaker = make_speaker(SpeechSettings(voice="our-voice"), dirs)
    assert speaker.engine_id == "piper" and speaker.voice_id == "our-voice"


def test_switching_engine_or_voice_file_never_plays_a_stale_clip(tmp_path: Path, bundled: PiperVoiceFile) -> None:
    text = "Breathe in slowly, and let your shoulders drop."
    folder = tmp_path / "cache"
    joe = ClipCache(folder, PiperSpeaker(bundled, 138), SESSION_HZ)
    espeak = ClipCache(folder, Pyttsx3Speaker(rate_wpm=138), SESSION_HZ)
    a, b = joe.get(text), espeak.get(text)
    assert joe.key(text) != espeak.key(text)
    assert a.size != b.size or not np.array_equal(a, b)
    # A user's voice file replaced in place: same path and name, new digest, new clip.
    model = copy_voice(bundled, tmp_path / "voices", "mine")
    mine = ClipCache(folder, PiperSpeaker(PiperVoiceFile("mine", model, "file"), 138), SESSION_HZ)
    first = mine.get(text)
    config = model.with_name(model.name + ".json")
    doc = json.loads(config.read_text(encoding="utf-8"))
    doc["inference"]["noise_scale"] = 0.1
    config.write_text(json.dumps(doc), encoding="utf-8")
    again = ClipCache(folder, PiperSpeaker(PiperVoiceFile("mine", model, "file"), 138), SESSION_HZ)
    assert again.key(text) != mine.key(text)
    second = again.get(text)
    assert again.synth_calls == 1
    assert second.size != first.size or not np.array_equal(second, first)
    # Same voice, same digest: served from the cache without loading the model.
    warm = ClipCache(folder, PiperSpeaker(bundled, 138), SESSION_HZ)
    assert np.array_equal(warm.get(text), a)
    assert warm.synth_calls == 0 and warm.speaker._model is None  # type: ignore[attr-defined]


def test_piper_clips_are_at_the_target_level(tmp_path: Path, bundled: PiperVoiceFile) -> None:
    cache = ClipCache(tmp_path, PiperSpeaker(bundled, 138), SESSION_HZ)
    for text in ("Now switch roles!", "When you are ready, say one thing you appreciated about today."):
        assert loudness_lufs(cache.get(text), SESSION_HZ) == pytest.approx(speech_loudness_lufs(), abs=0.5)


def test_piper_default_pace_is_calm_and_rate_is_the_pace_heard(tmp_path: Path, bundled: PiperVoiceFile) -> None:
    texts = library_prompts(every=5)
    assert len(texts) > 40
    default = heard_wpm(
        ClipCache(
            tmp_path, make_speaker(SpeechSettings(engine="piper"), UserDirs(tmp_path, tmp_path, tmp_path)), SESSION_HZ
        ),
        texts,
    )
    assert 130 <= default <= 145
    fast = heard_wpm(ClipCache(tmp_path, PiperSpeaker(bundled, 175), SESSION_HZ), texts[::3])
    assert fast == pytest.approx(175, rel=0.05)


def test_piper_is_imported_only_when_a_piper_voice_is_needed() -> None:
    code = (
        "import sys\n"
        "import voice_guide.cli\n"
        "from voice_guide.sound.speech import SpeechSettings, make_speaker\n"
        "from voice_guide.paths import UserDirs\n"
        "s = make_speaker(SpeechSettings(), UserDirs.from_environ())\n"
        "assert not {'piper', 'onnxruntime'} & set(sys.modules), 'imported too early'\n"
        "print(s.engine_id, s.voice_digest[:8], 'piper' in sys.modules)\n"
        "if sys.argv[1] == 'speak':\n"
        "    s.synthesize('Hello.')\n"
        "    assert 'piper' in sys.modules\n"
    )
    # The first time, the model loads while the voice is checked (a clip is sure to be
    # needed); once checked, its digest is known without loading anything.
    for step in ("speak", "digest"):
        done = subprocess.run([sys.executable, "-c", code, step], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("piper ")
    assert done.stdout.split()[-1] == "False"


def test_log_and_cues_name_the_engine_and_voice_they_used(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    script = tmp_path / "short.yaml"
    script.write_text('title: Short\nsummary: One prompt.\nsteps:\n  - say: "Take a slow breath."\n  - chime: end\n')
    ran = cli("run", str(script), "--engine", "espeak", "--no-mic", "--out", str(tmp_path / "o.wav"), "--log", str(log))
    assert ran.code == 0, ran.err
    speech = json.loads(log.read_text())["speech"]
    assert speech["engine"] == "pyttsx3-espeak" and speech["voice"].startswith("gmw/en")
    assert speech["rate_wpm"] == DEFAULT_RATE_WPM and len(speech["voice_digest"]) == 64
    cues = tmp_path / "c.json"
    rendered = cli("render", str(script), "-o", str(tmp_path / "r.wav"), "--cues", str(cues), "--rate", "150")
    assert rendered.code == 0, rendered.err
    speech = json.loads(cues.read_text())["speech"]
    assert (speech["engine"], speech["voice"], speech["rate_wpm"]) == ("piper", BUNDLED_VOICE, 150)


LOUDNESS_SCRIPT = """title: Loudness
summary: Prompts between full-level cues.
steps:
  - chime: start
  - say: "Find a comfortable seat, facing each other. Put your phones out of reach."
  - chime: swap
  - say: "Now switch roles, and take your time."
  - chime: time-up
  - say: "Thank you both. Rest a moment before you go on."
  - chime: end
"""


def test_both_engines_and_the_cues_are_within_a_decibel_on_a_render(cli: Cli, tmp_path: Path) -> None:
    script = tmp_path / "loud.yaml"
    script.write_text(LOUDNESS_SCRIPT)
    levels: dict[str, list[float]] = {"piper": [], "espeak": [], "cue": []}
    for engine in ("piper", "espeak"):
        out, cues = tmp_path / f"{engine}.wav", tmp_path / f"{engine}.json"
        result = cli("render", str(script), "-o", str(out), "--cues", str(cues), "--engine", engine)
        assert result.code == 0, result.err
        audio, rate = read_wav(out)
        for event in json.loads(cues.read_text())["events"]:
            part = audio[round(event["start_s"] * rate) : round(event["end_s"] * rate)]
            if event["kind"] == "say":
                levels[engine].append(loudness_lufs(part, rate))
            elif event["kind"] == "chime" and event["name"] not in QUIET_CUES:
                levels["cue"].append(loudness_lufs(part, rate))
    piper, espeak, cue = (float(np.median(levels[k])) for k in ("piper", "espeak", "cue"))
    assert abs(piper - espeak) <= 1.0, levels
    assert abs(piper - cue) <= 1.0 and abs(espeak - cue) <= 1.0, levels
    # Each prompt, not just the median, sits within a decibel of the cues.
    assert all(abs(level - cue) <= 1.0 for level in levels["piper"] + levels["espeak"]), levels


@pytest.mark.parametrize(("freq_hz", "lufs"), [(1000, -23.05), (100, -24.88), (5000, -19.73)])
def test_loudness_of_a_sine_follows_the_k_weighting(freq_hz: int, lufs: float) -> None:
    # A 0.1 (-20 dBFS) sine reads -23.0 LUFS at 1 kHz; the K-weighting lifts highs and cuts lows.
    t = np.arange(2 * SESSION_HZ) / SESSION_HZ
    assert loudness_lufs(0.1 * np.sin(2 * np.pi * freq_hz * t), SESSION_HZ) == pytest.approx(lufs, abs=0.1)


def test_without_the_neural_extra_the_default_is_espeak(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    # As on a machine with only the core package: Piper's package cannot be found.
    monkeypatch.setattr(piper_engine, "available", lambda: False)
    dirs = UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)})
    assert default_engine() == "espeak"
    assert isinstance(make_speaker(SpeechSettings(), dirs), Pyttsx3Speaker)
    assert all(v.engine == "espeak" for v in all_voices(dirs))
    with pytest.raises(UsageError, match="Piper engine is not installed") as raised:
        make_speaker(SpeechSettings(engine="piper"), dirs)
    assert "voice-guide[neural]" in raised.value.hint


def test_the_shipped_opening_clips_are_keyed_as_the_engine_keys_them(home: Path, tmp_path: Path) -> None:
    index = read_seed_index(speech_seeds_dir())
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), dirs=UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)}))
    # What `timeout` says first, without names and with them; remade by tools/speech_seeds.py.
    assert list(index) == list(opening_prompts(env))
    speaker = make_speaker(SpeechSettings(engine="piper"), UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)}))
    cache = ClipCache(tmp_path, speaker, DEFAULT_RATE_HZ)
    assert speaker.rate_wpm == DEFAULT_RATE_WPM
    for text, name in index.items():
        assert name == cache.path_for(text).name, f"stale seed for {text!r}: run tools/speech_seeds.py"
        clip, rate = read_wav(speech_seeds_dir() / name)
        assert rate == DEFAULT_RATE_HZ
        assert 100 < len(text.split()) / (len(clip) / rate) * 60 < 180  # speech at about the default pace


def test_a_first_run_takes_the_shipped_clip_instead_of_the_engine(tmp_path: Path, bundled: PiperVoiceFile) -> None:
    text = next(iter(read_seed_index(speech_seeds_dir())))
    speaker = PiperSpeaker(bundled, DEFAULT_RATE_WPM, stamps=tmp_path / "stamps.json")
    cache = ClipCache(tmp_path / "speech", speaker, DEFAULT_RATE_HZ, seeds=speech_seeds_dir())
    assert cache.cached(text)
    clip = cache.get(text)
    assert cache.synth_calls == 0
    np.testing.assert_array_equal(clip, read_wav(speech_seeds_dir() / cache.path_for(text).name)[0])
    assert cache.path_for(text).is_file()  # copied in: the cache alone holds what a session used
    # The voice was still checked before its clip was used.
    assert piper_engine.is_stamped(bundled.model, tmp_path / "stamps.json")
    # Another rate is another clip: the engine speaks it.
    other = PiperSpeaker(bundled, DEFAULT_RATE_WPM + 10, stamps=tmp_path / "stamps.json")
    slower = ClipCache(tmp_path / "speech", other, DEFAULT_RATE_HZ, seeds=speech_seeds_dir())
    assert not slower.cached(text)
    slower.get(text)
    assert slower.synth_calls == 1
