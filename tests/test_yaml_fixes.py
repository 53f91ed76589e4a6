"""The common YAML mistakes get a one-line error with file:line that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice_guide.errors import ScriptError
from voice_guide.script import load

HEAD = "title: T\nsummary: S\nparams:\n  share: 30s\nsteps:\n"


@pytest.mark.parametrize(
    ("body", "line", "what", "fix"),
    [
        ("  - say: {a} starts now\n", 6, "must be quoted", 'put the text in quotes: say: "{a} starts now"'),
        ("  - say: {a}\n", 6, "without quotes is read as a YAML mapping", 'put the value in quotes: say: "{a}"'),
        (
            "  - listen: a\n    for: {share}\n",
            7,
            "without quotes is read as a YAML mapping",
            'put the value in quotes: for: "{share}"',
        ),
        (
            "  - say: Remember: breathe slowly\n",
            6,
            "a colon inside unquoted text",
            'put the text in quotes: say: "Remember: breathe slowly"',
        ),
        ("  - say: hi\n   chime: start\n", 7, "indentation does not line up", "line it up with the lines above"),
        ("  - say: hi\n  - chime: start\n     - pause: 2s\n", 8, "indentation does not line up", "line it up"),
        ("\t- say: hi\n", 6, "a tab in the indentation", "indent with spaces instead of tabs"),
        ("  - say: hi\n    \tchime: start\n", 7, "a tab in the indentation", "indent with spaces instead of tabs"),
    ],
)
def test_common_mistakes_say_what_to_do(tmp_path: Path, body: str, line: int, what: str, fix: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    with pytest.raises(ScriptError) as caught:
        load(path)
    error = caught.value
    assert error.line == line
    assert what in error.message
    assert fix in error.hint
    text = error.one_line()
    assert text.startswith(f"{path}:{line}: ")
    assert "\n" not in text
    assert "mapping values are not allowed" not in text and "'{'" not in text


def test_quoted_text_with_a_colon_and_a_placeholder_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(HEAD + '  - say: "{a}: breathe"\n  - listen: a\n    for: "{share}"\n', encoding="utf-8")
    assert len(load(path).steps) == 2
