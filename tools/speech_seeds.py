"""Make the shipped clips of the prompts `voice-guide timeout` opens with (audio_assets/speech).

Run after changing those prompts, the bundled voice, the default rate or anything in
the cache key (CLIP_FORMAT_VERSION): `.venv/bin/python tools/speech_seeds.py`. Each clip
is what the speech cache makes for the bundled Piper voice at the default rate and
48 kHz, under the same file name (its cache key), so a first run finds it as if cached.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from voice_guide.cli.build import speech_seeds_dir
from voice_guide.cli.env import Env
from voice_guide.cli.play import opening_prompts
from voice_guide.paths import UserDirs
from voice_guide.sound.speech import ClipCache, SpeechSettings, make_speaker
from voice_guide.sound.speech.base import DEFAULT_RATE_WPM
from voice_guide.sound.speech.cache import SEED_INDEX
from voice_guide.sound.timeline import DEFAULT_RATE_HZ


def main() -> int:
    """Write one clip per opening prompt into the seeds folder and remove any other; return an exit status."""
    folder = speech_seeds_dir()
    with tempfile.TemporaryDirectory() as scratch:
        dirs = UserDirs(Path(scratch) / "scripts", Path(scratch) / "cache", Path(scratch) / "data")
        speaker = make_speaker(SpeechSettings(engine="piper", rate_wpm=DEFAULT_RATE_WPM), dirs)
        cache = ClipCache(folder, speaker, DEFAULT_RATE_HZ)
        index: dict[str, str] = {}
        for text in opening_prompts(Env.from_process()):
            path = cache.path_for(text)
            path.unlink(missing_ok=True)  # made anew, never kept from an older run
            cache.get(text)
            index[text] = path.name
            print(f"{path}: {text}")
    (folder / SEED_INDEX).write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for stale in folder.glob("*.wav"):
        if stale.name not in index.values():
            stale.unlink()
            print(f"removed {stale}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
