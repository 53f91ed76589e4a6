"""Expansion: repeats and swaps, placeholders, params and --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice_guide.errors import ScriptError, UsageError
from voice_guide.script import Breathe, Listen, Names, Say, expand, load, parse_overrides
from voice_guide.script.durations import format_duration, parse_duration_s

from .conftest import write

RELAY = """\
title: Relay
summary: S
params:
  share: 2m
  topic: money
steps:
  - say: "{a} first, {b} second."
  - repeat: 3
    swap: true
    steps:
      - say: "Round {round} of {rounds}: {speaker} talks to {listener} for {share} about {topic}."
      - listen: speaker
        for: "{share}"
        until_silence: 8s
        remind: 20s
  - say: "Now {speaker} again."
  - breathe: {in: 4s, hold: 2s, out: 6s, count: 3, counting: spoken}
"""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("2m", 120), ("1m30s", 90), ("1.5s", 1.5), (45, 45), (2.5, 2.5), ("1h", 3600), ("10", 10)],
)
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "2x", "-1", True, None, "1m1m", "inf", "nan"])
def test_bad_durations_are_none(text: object) -> None:
    assert parse_duration_s(text) is None


def test_format_duration() -> None:
    assert [format_duration(s) for s in (45, 90, 120, 3900, 1.5)] == ["45s", "1m30s", "2m", "1h05m", "1.5s"]


def test_repeat_swaps_roles_and_counts_rounds(tmp_path: Path) -> None:
    steps = expand(load(write(tmp_path, "r.yaml", RELAY)), Names(a="Ann", b="Bo"))
    says = [s.text for s in steps if isinstance(s, Say)]
    assert says[0] == "Ann first, Bo second."
    assert says[1] == "Round 1 of 3: Ann talks to Bo for two minutes about money."
    assert says[2] == "Round 2 of 3: Bo talks to Ann for two minutes about money."
    assert says[3] == "Round 3 of 3: Ann talks to Bo for two minutes about money."
    # Three swaps leave the roles traded.
    assert says[4] == "Now Bo again."
    listens = [s for s in steps if isinstance(s, Listen)]
    assert [(t.who, t.who_name) for t in listens] == [("a", "Ann"), ("b", "Bo"), ("a", "Ann")]
    assert all(t.for_s == 120 and t.until_silence_s == 8 and t.remind_s == 20 for t in listens)
    breathe = steps[-1]
    assert isinstance(breathe, Breathe) and breathe.breath_s == 12 and breathe.counting == "spoken"


def test_set_overrides_params(tmp_path: Path) -> None:
    script = load(write(tmp_path, "r.yaml", RELAY))
    steps = expand(script, Names(), parse_overrides(["share=90s", "topic=chores"], script))
    listen = next(s for s in steps if isinstance(s, Listen))
    assert listen.for_s == 90
    assert "for ninety seconds about chores" in next(s.text for s in steps if isinstance(s, Say) and "Round" in s.text)


@pytest.mark.parametrize(
    ("pair", "words"),
    [
        ("share=abc", "--set share=abc: 'abc' is not a duration"),
        ("nope=1", "has no param 'nope'"),
        ("share", "expected name=value"),
    ],
)
def test_bad_overrides_name_the_option(tmp_path: Path, pair: str, words: str) -> None:
    script = load(write(tmp_path, "r.yaml", RELAY))
    with pytest.raises(UsageError) as info:
        parse_overrides([pair], script)
    assert words in info.value.one_line()


def test_override_that_breaks_until_silence_is_caught(tmp_path: Path) -> None:
    script = load(write(tmp_path, "r.yaml", RELAY))
    with pytest.raises(ScriptError, match="not shorter than for"):
        expand(script, Names(), parse_overrides(["share=5s"], script))
