"""Speech: the clip cache with a counting fake, then real espeak-ng through pyttsx3 (Piper: test_piper.py)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from voice_guide.errors import AudioFileError, SpeechEngineError
from voice_guide.paths import builtin_scripts_dir
from voice_guide.script import Names, expand
from voice_guide.script import load as load_script
from voice_guide.script.library import Library
from voice_guide.sound.clips import voiced_rms_dbfs
from voice_guide.sound.levels import PEAK_LIMIT_DBFS, Samples, loudness_lufs, peak_dbfs
from voice_guide.sound.speech import (
    ClipCache,
    Pyttsx3Speaker,
    Speaker,
    VoiceError,
    VoiceInfo,
    default_cache_dir,
    list_voices,
    sentences,
)
from voice_guide.sound.speech.cache import SENTENCE_PAUSE_S, speech_loudness_lufs
from voice_guide.sound.timeline import spoken_texts
from voice_guide.sound.wavfile import read_wav

REPO = Path(__file__).resolve().parent.parent
SESSION_HZ = 48_000
ENGINE_HZ = 22_050


@dataclass
class FakeSpeaker:
    """Counts calls; 'speaks' one tone burst per word, at a level that varies with the text."""

    engine_id: str = "fake"
    voice_id: str = "fake/en"
    voice_digest: str = "0" * 64
    rate_wpm: int = 150
    calls: list[str] = field(default_factory=list)

    def synthesize(self, text: str) -> tuple[Samples, int]:
        self.calls.append(text)
        amplitude = 0.05 + 0.9 * (len(text) % 7) / 7
        parts = [np.zeros(ENGINE_HZ // 10, dtype=np.float32)]
        t = np.arange(ENGINE_HZ // 5) / ENGINE_HZ
        for i, _word in enumerate(text.split()):
            parts.append((amplitude * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32))
            parts.append(np.zeros(ENGINE_HZ // 20, dtype=np.float32))
        return np.concatenate(parts), ENGINE_HZ


class SilentSpeaker(FakeSpeaker):
    def synthesize(self, text: str) -> tuple[Samples, int]:
        self.calls.append(text)
        return np.zeros(ENGINE_HZ, dtype=np.float32), ENGINE_HZ


def test_fake_and_real_speakers_satisfy_the_protocol() -> None:
    speakers: list[Speaker] = [FakeSpeaker(), Pyttsx3Speaker()]
    assert all(callable(s.synthesize) for s in speakers)


# ---------------------------------------------------------------- cache (fake engine)


def test_cache_calls_the_engine_once_per_distinct_prompt(tmp_path: Path) -> None:
    speaker = FakeSpeaker()
    cache = ClipCache(tmp_path, speaker, SESSION_HZ)
    first = cache.get("Take a breath.")
    again = cache.get("Take a breath.")
    cache.prepare(["Take a breath.", "Now listen.", "Now listen.", "Thank you."])
    cache.prepare(["Now listen.", "Thank you."])
    assert sorted(speaker.calls) == ["Now listen.", "Take a breath.", "Thank you."]
    assert cache.synth_calls == 3
    assert np.array_equal(first, again)

    # A new cache on the same folder (a later run, another process) finds them all.
    later = ClipCache(tmp_path, speaker, SESSION_HZ)
    later.prepare(["Take a breath.", "Now listen.", "Thank you."])
    assert np.array_equal(later.get("Take a breath."), first)
    assert later.synth_calls == 0
    assert len(speaker.calls) == 3


def test_prepare_reports_progress_over_the_missing_prompts_only(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path, FakeSpeaker(), SESSION_HZ)
    cache.get("one")
    seen: list[tuple[int, int]] = []
    cache.prepare(["one", "two", "three", "two"], lambda done, total: seen.append((done, total)))
    assert seen == [(0, 2), (1, 2), (2, 2)]
    seen.clear()
    cache.prepare(["one", "two"], lambda done, total: seen.append((done, total)))
    assert seen == [(0, 0)]


def test_cache_keys_differ_by_voice_digest_rate_text_rate_and_engine(tmp_path: Path) -> None:
    def key(text: str = "Hello.", rate_hz: int = SESSION_HZ, **speaker: object) -> str:
        return ClipCache(tmp_path, FakeSpeaker(**speaker), rate_hz).key(text)  # type: ignore[arg-type]

    base = key()
    assert key() == base
    others = [
        key(voice_id="fake/de"),
        key(rate_wpm=151),
        key("Hello!"),
        key(rate_hz=44_100),
        key(engine_id="other"),
        key(voice_digest="1" * 64),
    ]
    assert base not in others
    assert len(set(others)) == len(others)
    # Field boundaries cannot be shifted between engine, voice and text.
    assert key(engine_id="a", voice_id="b c") != key(engine_id="a b", voice_id="c")


def test_cached_file_is_complete_and_no_temp_files_remain(tmp_path: Path) -> None:
    folder = tmp_path / "speech" / "nested"  # created on first write
    cache = ClipCache(folder, FakeSpeaker(), SESSION_HZ)
    clip = cache.get("Listen to your partner.")
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"{cache.key('Listen to your partner.')}.wav"]
    stored, rate = read_wav(folder / files[0])
    assert rate == SESSION_HZ
    assert np.array_equal(stored, clip)


def test_cached_clip_is_conditioned(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path, FakeSpeaker(), SESSION_HZ)
    for text in ("a b c", "quiet words here now", "x"):
        clip = cache.get(text)
        assert clip.dtype == np.float32
        assert loudness_lufs(clip, SESSION_HZ) == pytest.approx(speech_loudness_lufs(), abs=0.5)
        assert peak_dbfs(clip) <= PEAK_LIMIT_DBFS + 0.01
        assert abs(float(clip[0])) < 1e-3 and abs(float(clip[-1])) < 1e-3


def test_damaged_cache_file_is_made_again(tmp_path: Path) -> None:
    speaker = FakeSpeaker()
    cache = ClipCache(tmp_path, speaker, SESSION_HZ)
    good = cache.get("Breathe out.")
    cache.path_for("Breathe out.").write_bytes(b"RIFF\x00\x00")
    assert np.array_equal(ClipCache(tmp_path, speaker, SESSION_HZ).get("Breathe out."), good)
    assert len(speaker.calls) == 2


def test_silent_engine_output_is_an_error_naming_the_prompt(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path, SilentSpeaker(), SESSION_HZ)
    with pytest.raises(SpeechEngineError, match=r"no audio for prompt 'Hello there\.'"):
        cache.get("Hello there.")
    assert list(tmp_path.iterdir()) == []


def test_empty_prompt_is_an_error_without_calling_the_engine(tmp_path: Path) -> None:
    speaker = FakeSpeaker()
    with pytest.raises(SpeechEngineError):
        ClipCache(tmp_path, speaker, SESSION_HZ).get("   ")
    assert speaker.calls == []


def test_unwritable_cache_is_an_audio_file_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(AudioFileError, match="speech cache"):
        ClipCache(blocker / "speech", FakeSpeaker(), SESSION_HZ).get("Hello.")


def test_default_cache_dir_follows_voice_guide_home(tmp_path: Path) -> None:
    assert default_cache_dir({"VOICE_GUIDE_HOME": str(tmp_path)}) == tmp_path / "cache"
    elsewhere = default_cache_dir({})
    assert "voice-guide" in str(elsewhere)
    assert not str(elsewhere).startswith(str(tmp_path))


def test_default_cache_dir_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICE_GUIDE_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "cache"


# ---------------------------------------------------------------- real espeak-ng through pyttsx3

SENTENCE = "Take a slow breath, and tell your partner what you heard."


def test_real_speech_is_audible_and_of_plausible_length() -> None:
    samples, rate = Pyttsx3Speaker().synthesize(SENTENCE)
    assert rate > 8000
    assert samples.dtype == np.float32
    assert 0.5 <= samples.size / rate <= 5.0
    assert peak_dbfs(samples) > -20
    assert voiced_rms_dbfs(samples, rate) > -40


def test_real_clips_are_48k_at_the_target_level_and_match_each_other(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path, Pyttsx3Speaker(), SESSION_HZ)
    loud = cache.get("Now switch roles!")
    long = cache.get("When you are ready, say one thing you appreciated about today.")
    for clip in (loud, long):
        assert loudness_lufs(clip, SESSION_HZ) == pytest.approx(speech_loudness_lufs(), abs=0.5)
        assert peak_dbfs(clip) <= PEAK_LIMIT_DBFS + 0.01
    assert loudness_lufs(loud, SESSION_HZ) == pytest.approx(loudness_lufs(long, SESSION_HZ), abs=0.5)
    for path in tmp_path.iterdir():
        assert read_wav(path)[1] == SESSION_HZ
    assert cache.synth_calls == 2


def test_real_speech_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    speaker = Pyttsx3Speaker()
    for text in ("One.", "Two.", "Three."):
        speaker.synthesize(text)
    out, err = capfd.readouterr()
    assert "Audio saved" not in out + err
    assert out == ""


def test_long_prompt_is_complete_and_silent(capfd: pytest.CaptureFixture[str]) -> None:
    # espeak-ng writes the file from its own thread after runAndWait has returned;
    # a long prompt shows whether the speaker waits for the whole utterance.
    samples, rate = Pyttsx3Speaker().synthesize(" ".join([SENTENCE] * 12))
    assert samples.size / rate > 30
    # The end is speech, not a cut: the last second still has sound in it.
    assert peak_dbfs(samples[-rate:]) > -40
    out, err = capfd.readouterr()
    assert "Audio saved" not in out + err


def test_stdout_still_works_after_speech(capfd: pytest.CaptureFixture[str]) -> None:
    Pyttsx3Speaker().synthesize("Hello.")
    print("still here")
    out, _ = capfd.readouterr()
    assert out == "still here\n"


def test_speech_in_a_subprocess_with_piped_stdout_prints_nothing() -> None:
    # Block-buffered stdout (a pipe) is where a late flush would leak the engine's chatter.
    code = (
        "from voice_guide.sound.speech import Pyttsx3Speaker\n"
        "s = Pyttsx3Speaker()\n"
        "for t in ('a b', 'c d'): s.synthesize(t)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_english_voice_by_default() -> None:
    speaker = Pyttsx3Speaker()
    assert speaker.engine_id == "pyttsx3-espeak"
    assert any(lang == "en" or lang.startswith("en-") for lang in speaker.voice.languages)
    # Not simply the engine's first voice (Afrikaans in espeak-ng's list).
    first = list_voices()[0]
    if not any(lang.startswith("en") for lang in first.languages):
        assert speaker.voice_id != first.id
    if any("en-us" in v.languages for v in list_voices()):
        assert speaker.voice.languages == ("en-us",)


def test_voice_by_id_or_by_part_of_a_name() -> None:
    voices = list_voices()
    assert all(isinstance(v, VoiceInfo) for v in voices)
    target = next(v for v in voices if v.id != Pyttsx3Speaker().voice_id)
    assert Pyttsx3Speaker(voice=target.id).voice_id == target.id
    assert Pyttsx3Speaker(voice=target.name.upper()).voice_id == target.id
    assert Pyttsx3Speaker(voice="america").voice.name == "English (America)"


def test_unknown_voice_is_an_error_listing_some_voices() -> None:
    with pytest.raises(VoiceError) as raised:
        Pyttsx3Speaker(voice="no-such-voice-xyz").synthesize("Hello.")
    assert "no-such-voice-xyz" in raised.value.message
    assert "English" in raised.value.hint
    assert raised.value.exit_code == 2


def test_voice_and_rate_change_the_audio() -> None:
    slow, _ = Pyttsx3Speaker(rate_wpm=100).synthesize(SENTENCE)
    fast, _ = Pyttsx3Speaker(rate_wpm=250).synthesize(SENTENCE)
    assert slow.size > 1.6 * fast.size
    us, _ = Pyttsx3Speaker(voice="en-us").synthesize(SENTENCE)
    gb, _ = Pyttsx3Speaker(voice="en-gb").synthesize(SENTENCE)
    assert us.size != gb.size or not np.array_equal(us, gb)


def test_rate_holds_for_every_prompt_when_rates_alternate() -> None:
    # espeak-ng applies settings on its own thread; a rate still queued when the run loop
    # starts used to be dropped, so a few prompts in a hundred came out at the old rate.
    slow, fast = Pyttsx3Speaker(rate_wpm=100), Pyttsx3Speaker(rate_wpm=250)
    sizes: dict[str, list[int]] = {"slow": [], "fast": []}
    for _ in range(30):
        sizes["slow"].append(slow.synthesize("Now switch roles, please.")[0].size)
        sizes["fast"].append(fast.synthesize("Now switch roles, please.")[0].size)
    for name, found in sizes.items():
        assert max(found) < 1.1 * min(found), (name, sorted(found))
    assert min(sizes["slow"]) > 1.6 * max(sizes["fast"])


def test_repeated_speech_in_one_process_is_stable() -> None:
    speaker = Pyttsx3Speaker()
    first, _ = speaker.synthesize("Breathe in.")
    for text in ("Breathe out.", "Hold.", "Breathe in."):
        other = Pyttsx3Speaker().synthesize(text)[0]  # a second speaker in between must not disturb the first
        assert other.size > 0
    again, _ = speaker.synthesize("Breathe in.")
    # espeak-ng varies by a few samples from run to run, so compare length and level.
    assert again.size == pytest.approx(first.size, rel=0.1)
    assert voiced_rms_dbfs(again, ENGINE_HZ) == pytest.approx(voiced_rms_dbfs(first, ENGINE_HZ), abs=0.5)


def test_missing_engine_is_an_error_with_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyttsx3

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("libespeak-ng.so.1: cannot open shared object file")

    monkeypatch.setattr(pyttsx3, "Engine", broken)
    with pytest.raises(SpeechEngineError, match="not available") as raised:
        Pyttsx3Speaker().synthesize("Hello.")
    assert "apt-get install espeak-ng" in raised.value.hint


def test_pyttsx3_is_imported_only_when_the_engine_is_needed() -> None:
    code = (
        "import sys\n"
        "from voice_guide.sound.speech import ClipCache, Pyttsx3Speaker\n"
        "s = Pyttsx3Speaker(voice='whatever', rate_wpm=120)\n"
        "assert 'pyttsx3' not in sys.modules, 'imported too early'\n"
        "print(Pyttsx3Speaker().voice_id)\n"
        "assert 'pyttsx3' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("gmw/en")


# ---------------------------------------------------------------- sentences and pauses


def test_prompts_split_into_sentences_and_end_on_a_full_stop() -> None:
    assert sentences("Timeout. You can both stop now! Ready? Then go") == [
        "Timeout.",
        "You can both stop now!",
        "Ready?",
        "Then go.",
    ]
    assert sentences("Ann, ask Ben: What do you need right now?") == ["Ann, ask Ben: What do you need right now?"]
    assert sentences('He said "stop." Then rest.') == ['He said "stop."', "Then rest."]


def test_sentences_are_spoken_apart_and_joined_with_the_pause(tmp_path: Path) -> None:
    speaker = FakeSpeaker()
    one = ClipCache(tmp_path, speaker, SESSION_HZ).get("Breathe in slowly.")
    two = ClipCache(tmp_path, speaker, SESSION_HZ).get("Breathe in slowly. Breathe in slowly.")
    assert speaker.calls == ["Breathe in slowly.", "Breathe in slowly.", "Breathe in slowly."]
    # Two sentences: twice the speech plus the pause (each sentence trimmed to its sound).
    extra_s = (two.size - 2 * one.size) / SESSION_HZ
    assert extra_s == pytest.approx(SENTENCE_PAUSE_S, abs=0.03)


def library_prompts(every: int) -> list[str]:
    """Return every `every`-th prompt of six words or more from the whole built-in library."""
    lib = Library(builtin_scripts_dir(), Path("/nonexistent"))
    steps = [step for path in lib.ids().values() for step in expand(load_script(path), Names(a="Ann", b="Ben"))]
    return [t for t in spoken_texts(steps) if len(t.split()) >= 6][::every]


def heard_wpm(cache: ClipCache, texts: list[str]) -> float:
    """Return the words per minute of the conditioned clips of `texts`."""
    seconds = sum(cache.get(t).size for t in texts) / cache.sample_rate_hz
    return sum(len(t.split()) for t in texts) / seconds * 60


def test_espeak_default_pace_is_calm_and_rate_is_the_pace_heard(tmp_path: Path) -> None:
    # Over the library's prompts, pauses included, the clips land at --rate.
    texts = library_prompts(every=3)
    assert len(texts) > 40
    default = heard_wpm(ClipCache(tmp_path, Pyttsx3Speaker(), SESSION_HZ), texts)
    assert 130 <= default <= 145
    assert heard_wpm(ClipCache(tmp_path, Pyttsx3Speaker(rate_wpm=170), SESSION_HZ), texts) == pytest.approx(
        170, rel=0.04
    )
