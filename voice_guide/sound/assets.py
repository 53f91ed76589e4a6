"""Write the fixed cue sounds to audio_assets/ (the files that ship): the disk side of sound.tones, kept out of it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from voice_guide.sound.tones import CUE_NAMES, DEFAULT_SAMPLE_RATE_HZ, synth_cue
from voice_guide.sound.wavfile import write_wav


def write_assets(
    folder: Path, sample_rate_hz: int = DEFAULT_SAMPLE_RATE_HZ, names: Sequence[str] = CUE_NAMES
) -> list[Path]:
    """Write `<name>.wav` (16-bit PCM at `sample_rate_hz`) for each cue into `folder`; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.wav"
        write_wav(path, synth_cue(name, sample_rate_hz), sample_rate_hz)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Write the fixed cues at 48 kHz into FOLDER (default audio_assets); return an exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or any(a in ("-h", "--help") for a in args):
        print("usage: python -m voice_guide.sound.assets [FOLDER]", file=sys.stderr)
        return 2
    folder = Path(args[0] if args else "audio_assets")
    for path in write_assets(folder):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
