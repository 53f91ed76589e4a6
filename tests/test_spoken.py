"""Durations and numbers said the way people say them, in prompts and closing lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice_guide.errors import UsageError
from voice_guide.script import Names, expand, parse_overrides
from voice_guide.script import load as load_script
from voice_guide.script.durations import number_words, spoken_duration

from .conftest import write


@pytest.mark.parametrize(
    ("seconds", "written", "said"),
    [
        (1, None, "one second"),
        (45, None, "forty-five seconds"),
        (60, None, "one minute"),
        (90, None, "a minute and a half"),
        (90, "1m30s", "a minute and a half"),
        (90, "90s", "ninety seconds"),
        (90, "90", "ninety seconds"),
        (75, None, "seventy-five seconds"),
        (120, None, "two minutes"),
        (120, "120s", "two minutes"),
        (150, None, "two and a half minutes"),
        (130, None, "two minutes and ten seconds"),
        (600, None, "ten minutes"),
        (3600, None, "one hour"),
        (5400, None, "an hour and a half"),
        (4500, None, "an hour and fifteen minutes"),
        (7200, None, "two hours"),
    ],
)
def test_durations_are_said_as_people_say_them(seconds: float, written: str | None, said: str) -> None:
    assert spoken_duration(seconds, written) == said


def test_no_duration_is_said_with_digits() -> None:
    for seconds in range(0, 4 * 3600, 7):
        said = spoken_duration(seconds)
        assert not any(ch.isdigit() for ch in said), said
        assert "1 minute 30" not in said


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety-nine"),
        (100, "a hundred"),
        (215, "two hundred and fifteen"),
    ],
)
def test_numbers_in_words(n: int, words: str) -> None:
    assert number_words(n) == words


SCRIPT = """title: Share
summary: One turn.
params:
  share: 2m
  times: 3
steps:
  - say: "{a}, you have up to {share}, {times} times."
  - listen: a
    for: "{share}"
"""


def test_a_bare_number_for_a_duration_param_is_seconds_with_its_unit(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, "share.yaml", SCRIPT))
    said = expand(script, Names(a="Ann"))[0]
    assert said.text == "Ann, you have up to two minutes, 3 times."  # type: ignore[union-attr]
    for value, spoken, for_s in (
        ("90", "ninety seconds", 90),
        ("1m30s", "a minute and a half", 90),
        ("45", "forty-five seconds", 45),
    ):
        steps = expand(script, Names(a="Ann"), parse_overrides([f"share={value}"], script))
        assert steps[0].text == f"Ann, you have up to {spoken}, 3 times."  # type: ignore[union-attr]
        assert steps[1].for_s == for_s  # type: ignore[union-attr]
    # A plain number param stays a plain number.
    steps = expand(script, Names(a="Ann"), parse_overrides(["times=4"], script))
    assert steps[0].text == "Ann, you have up to two minutes, 4 times."  # type: ignore[union-attr]
    with pytest.raises(UsageError):
        parse_overrides(["share=soon"], script)
