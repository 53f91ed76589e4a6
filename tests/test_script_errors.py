"""Every error class of the script format names the file, the line and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice_guide.errors import ScriptError
from voice_guide.script import load

from .conftest import write

VALID = """\
title: T
summary: S
params:
  share: 2m
steps:
  - say: Hello {a}.
  - listen: speaker
    for: "{share}"
    until_silence: 8s
  - chime: start
"""


def error_for(tmp_path: Path, text: str | bytes, name: str = "s.yaml") -> ScriptError:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ScriptError) as info:
        load(path)
    return info.value


def test_valid_script_loads(tmp_path: Path) -> None:
    script = load(write(tmp_path, "ok.yaml", VALID))
    assert script.id == "ok" and len(script.steps) == 3


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("title: T\nsummary: S\nsteps:\n  - say: [unclosed\n", 5, "YAML syntax error"),
        ("title: T\nsummary: S\nsteps:\n  - for: 2m\n", 4, "step has no kind"),
        ("title: T\nsummary: S\nsteps:\n  - say: hi\n    pause: 2s\n", 5, "two kinds, 'say' and 'pause'"),
        (
            "title: T\nsummary: S\nsteps:\n  - listen: a\n    for: 2m\n    untill_silence: 8s\n",
            6,
            "unknown option 'untill_silence' for listen (did you mean 'until_silence'?)",
        ),
        ("title: T\nsumary: S\nsteps:\n  - say: hi\n", 2, "unknown top-level key 'sumary' (did you mean 'summary'?)"),
        ("title: T\nsummary: S\nsteps:\n  - chime: bong\n", 4, "unknown cue 'bong'"),
        ("title: T\nsummary: S\nsteps:\n  - pause: soon\n", 4, "'soon' is not a duration"),
        ("title: T\nsummary: S\nsteps:\n  - pause: 0s\n", 4, "must be more than zero"),
        ("title: T\nsummary: S\nsteps:\n  - pause: -3\n", 4, "is not a duration"),
        (
            "title: T\nsummary: S\nsteps:\n  - listen: a\n    for: 10s\n    until_silence: 10s\n",
            4,
            "until_silence (10s) is not shorter than for (10s)",
        ),
        (
            "title: T\nsummary: S\nsteps:\n  - say: Hello {speakr}\n",
            4,
            "unknown placeholder '{speakr}' (did you mean 'speaker'?)",
        ),
        ("title: T\nsummary: S\nsteps: []\n", 3, "'steps' is empty"),
        (
            "title: T\nsummary: S\nsteps:\n  - repeat: 0\n    steps:\n      - say: hi\n",
            4,
            "repeat count '0' is out of range",
        ),
        ("title: T\nsummary: S\nsteps:\n  - repeat: 101\n    steps:\n      - say: hi\n", 4, "from 1 to 100"),
        ("title: T\nsummary: S\nsteps:\n  - repeat: 2\n    steps: []\n", 5, "'steps' is empty"),
        ("title: T\nsummary: S\nsteps:\n  - chime: sounds/gong.wav\n", 4, "cue file 'sounds/gong.wav' does not exist"),
        ("title: T\nsteps:\n  - say: hi\n", 1, "missing 'summary'"),
        ("title: T\nsummary: S\nsteps:\n  - listen: c\n    for: 1m\n", 4, "unknown partner 'c'"),
        ("title: T\nsummary: S\nsteps:\n  - listen: a\n", 4, "listen needs 'for'"),
        ("title: T\nsummary: S\nsteps:\n  - breathe: {in: 4s, out: 6s, count: 0}\n", 4, "breathe count '0'"),
        ("title: T\nsummary: S\nsteps:\n  - breathe: {in: 4s, out: 6s, counting: loud}\n", 4, "unknown counting"),
        ("title: T\nsummary: S\nsteps:\n  - say: hi\n    for: 2s\n", 5, "unknown option 'for' for say"),
        ("title: T\nsummary: S\nsteps:\n  - listen: a\n    for: '{shar}'\n", 5, "unknown param"),
        ("title: T\nsummary: S\ntitle: U\nsteps:\n  - say: hi\n", 3, "duplicate key 'title'"),
        ("- just\n- a list\n", 1, "not a mapping"),
        ("title: T\nsummary: S\nsteps:\n  - hello\n", 4, "a step must be a mapping"),
        (
            "title: T\nsummary: S\nparams:\n  share: lots\nsteps:\n  - listen: a\n    for: '{share}'\n",
            7,
            "param 'share' is 'lots', not a duration",
        ),
    ],
)
def test_error_names_file_line_and_what(tmp_path: Path, text: str, line: int, words: str) -> None:
    err = error_for(tmp_path, text)
    assert err.file.endswith("s.yaml")
    assert err.line == line, err.one_line()
    assert words in err.one_line()
    assert err.one_line().startswith(f"{tmp_path / 's.yaml'}:{line}: ")


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    err = error_for(tmp_path, b"title: T\nsummary: caf\xe9\nsteps:\n  - say: hi\n")
    assert err.line == 2
    assert "not UTF-8" in err.message


def test_missing_file_is_a_script_error(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="no such script file"):
        load(tmp_path / "absent.yaml")


def test_custom_cue_file_relative_to_script(tmp_path: Path) -> None:
    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "gong.wav").write_bytes(b"RIFF")
    script = load(write(tmp_path, "c.yaml", "title: T\nsummary: S\nsteps:\n  - chime: sounds/gong.wav\n"))
    step = script.steps[0]
    assert getattr(step, "path", None) == (tmp_path / "sounds" / "gong.wav").resolve()
