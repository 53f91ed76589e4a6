"""Rules every built-in exercise keeps, read as a couple hears it once with eyes closed.

Turn kinds are told apart by the prompt that opens the turn, so a new built-in is held
to the same rules without being listed here:
- a heavy turn (a hurt, a betrayal, a hard day) waits at least 20 s of silence before it
  ends and is never followed by the time-up bell;
- a turn that answers a question waits at least 12 s, so thinking is not taken for an end;
- a thinking pause lasts long enough for what it asks (longer for a week or a childhood).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from voice_guide.script import expand, load

from .conftest import REPO, CliResult

Cli = Callable[..., CliResult]
SCRIPTS = sorted((REPO / "scripts").glob("*.yaml"))
IDS = [p.stem for p in SCRIPTS]

HEAVY = re.compile(
    r"\b(hurts?|hurting|betray\w*|pain\w*|hard|harder|hardest|weighed|weighs|difficult|struggl\w*)\b", re.IGNORECASE
)
THINKING = re.compile(r"\b(think|recall|remember|picture|imagine|find|look back|choose|pick)\b", re.IGNORECASE)
LONG_SPAN = re.compile(
    r"\b(last|past|over the|over this) (seven days|week|month)\b|\b(grew up|growing up|childhood)\b", re.IGNORECASE
)
DIGIT_DURATION = re.compile(r"\d+(?:[.,]\d+)?\s*(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|s|m|h)\b", re.IGNORECASE)

HEAVY_SILENCE_S = 20.0
ANSWER_SILENCE_S = 12.0
TOGETHER_SILENCE_S = 12.0  # two people deciding something together pause to think too
ANY_TURN_SILENCE_S = 6.0
THINKING_PAUSE_S = 20.0
LONG_SPAN_PAUSE_S = 45.0
YES_NO_PAUSE_S = 6.0
CLOSING_QUIET_S = 3.0


def kind(step: Any) -> str:
    return type(step).__name__.lower()


def plan(path: Path) -> Sequence[Any]:
    return expand(load(path))


def opening_prompt(steps: Sequence[Any], index: int) -> str | None:
    """Return the prompt that opens the step at `index`: the nearest say before it, across chimes only."""
    for step in reversed(steps[:index]):
        if kind(step) == "say":
            return str(step.text)
        if kind(step) != "chime":
            return None
    return None


def is_heavy(prompt: str) -> bool:
    return HEAVY.search(prompt) is not None


def is_question(prompt: str) -> bool:
    return "?" in prompt


def partner_names(steps: Sequence[Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for step in steps:
        if kind(step) == "listen" and step.who in ("a", "b"):
            names[step.who] = step.who_name
    return names


@pytest.mark.parametrize("path", SCRIPTS, ids=IDS)
def test_no_turn_opens_with_the_other_partner_asking(path: Path) -> None:
    steps = plan(path)
    names = partner_names(steps)
    for i, step in enumerate(steps):
        if kind(step) != "listen" or step.who not in ("a", "b"):
            continue
        prompt = opening_prompt(steps, i)
        if prompt is None:
            continue
        talker = step.who_name
        other = names.get("b" if step.who == "a" else "a")
        assert not re.search(rf"\bask {re.escape(talker)}\b", prompt, re.IGNORECASE), (path.name, prompt)
        for sentence in re.split(r"(?<=[.?!:])\s+", prompt):
            if other and sentence.startswith(f"{other},"):
                assert not re.search(r"\bask\b", sentence, re.IGNORECASE), (path.name, step.line, prompt)


@pytest.mark.parametrize("path", SCRIPTS, ids=IDS)
def test_every_swap_cue_is_followed_by_one_partner_talking(path: Path) -> None:
    steps = plan(path)
    for i, step in enumerate(steps):
        if kind(step) == "chime" and step.name == "swap":
            later = [s for s in steps[i + 1 :] if kind(s) == "listen"]
            assert later, f"{path.name}: swap cue at line {step.line} but nobody talks after it"
            assert later[0].who in ("a", "b"), f"{path.name}: swap cue at line {step.line} leads to a shared turn"


@pytest.mark.parametrize("path", SCRIPTS, ids=IDS)
def test_silence_waits_by_turn_kind(path: Path) -> None:
    steps = plan(path)
    for i, step in enumerate(steps):
        if kind(step) != "listen" or step.until_silence_s is None:
            continue
        prompt = opening_prompt(steps, i) or ""
        where = f"{path.name}:{step.line}: {prompt!r}"
        silence_s = step.until_silence_s
        assert silence_s >= ANY_TURN_SILENCE_S, where
        if is_heavy(prompt):
            assert silence_s >= HEAVY_SILENCE_S, where
            following = steps[i + 1] if i + 1 < len(steps) else None
            assert not (following is not None and kind(following) == "chime" and following.name == "time-up"), (
                f"time-up bell after a heavy turn: {where}"
            )
        if is_question(prompt):
            assert silence_s >= ANSWER_SILENCE_S, where
        if step.who in ("both", "anyone"):
            assert silence_s >= TOGETHER_SILENCE_S, where


@pytest.mark.parametrize("path", SCRIPTS, ids=IDS)
def test_thinking_pauses_are_long_enough(path: Path) -> None:
    steps = plan(path)
    for i, step in enumerate(steps):
        if kind(step) != "pause" or i == 0 or kind(steps[i - 1]) != "say":
            continue
        prompt = str(steps[i - 1].text)
        where = f"{path.name}:{step.line}: {prompt!r}"
        pause_s = step.duration_s
        if THINKING.search(prompt):
            assert pause_s >= THINKING_PAUSE_S, where
            if LONG_SPAN.search(prompt):
                assert pause_s >= LONG_SPAN_PAUSE_S, where
        if is_question(prompt):
            assert pause_s >= YES_NO_PAUSE_S, where


@pytest.mark.parametrize("path", SCRIPTS, ids=IDS)
def test_every_exercise_ends_gently(path: Path) -> None:
    steps = plan(path)
    talk = [i for i, s in enumerate(steps) if kind(s) == "listen"]
    closing = steps[talk[-1] + 1 :] if talk else steps
    kinds = [kind(s) for s in closing]
    assert "breathe" in kinds, f"{path.name}: no breath after the last turn"
    assert any(kind(s) == "say" and "thank" in s.text.lower() for s in closing), (
        f"{path.name}: no thank-you after the last turn"
    )
    ends = [i for i, s in enumerate(closing) if kind(s) == "chime" and s.name == "end"]
    assert ends, f"{path.name}: no end cue"
    end = ends[-1]
    after = closing[end + 1 :]
    assert all(kind(s) == "pause" for s in after), f"{path.name}: something after the end cue"
    quiet_s = sum(s.duration_s for s in after)
    if end > 0 and kind(closing[end - 1]) == "pause":
        quiet_s += closing[end - 1].duration_s
    assert quiet_s >= CLOSING_QUIET_S, f"{path.name}: only {quiet_s:g} s of quiet around the end cue"
    swaps = [s for s in closing if kind(s) == "chime" and s.name == "swap"]
    assert not swaps, f"{path.name}: a swap cue after the last turn"


@pytest.mark.parametrize("path", SCRIPTS, ids=IDS)
def test_no_prompt_speaks_a_duration_in_digits(path: Path) -> None:
    for step in plan(path):
        if kind(step) == "say":
            found = DIGIT_DURATION.search(step.text)
            assert found is None, f"{path.name}:{step.line}: {found.group(0)!r} in {step.text!r}"


# A sentence starter offered to a partner ("You might begin with: ...") must be whole when heard once.
DANGLING = re.compile(r":\s*[^.?!:]*\b(because|but|that|and|or|with|like|feel|felt)[.?!]?$", re.IGNORECASE)


@pytest.mark.parametrize("path", SCRIPTS, ids=IDS)
def test_no_suggested_opening_trails_off(path: Path) -> None:
    for step in plan(path):
        if kind(step) == "say":
            for sentence in re.split(r"(?<=[.?!])\s+", step.text):
                assert not DANGLING.search(sentence), f"{path.name}:{step.line}: {sentence!r}"
            assert not re.search(r"\b(because|but)[.?!]?$", step.text.strip()), f"{path.name}:{step.line}"


def test_the_rules_catch_what_they_are_for() -> None:
    # The classifiers themselves, on lines from the first edition that broke the rules.
    assert is_heavy("Ben, tell Ann how this felt for you. Say what hurt, not what they should have done.")
    assert is_heavy("And what was the hardest part?")
    assert not is_heavy("Ann, name one high from today.")
    assert is_question("Ben, did that fit? Say what was right.")
    assert not is_question("Ben, say what was right.")
    assert DIGIT_DURATION.search("you have up to 1 minute 30 seconds")
    assert DIGIT_DURATION.search("about 90s each")
    assert not DIGIT_DURATION.search("take ten slow breaths, seven or more yeses")
    assert DANGLING.search("You might begin with: it sounds like you felt.")
    assert DANGLING.search("Start with: I feel.")
    assert DANGLING.search("You might start with: it makes sense that you feel that, because.")
    assert not DANGLING.search("You might start with: it makes sense that you would feel that way.")
    assert LONG_SPAN.search("Think over this past week.") and LONG_SPAN.search("the home you grew up in")
    assert not LONG_SPAN.search("practise that one this week")
    steps = [
        type("Say", (), {"text": "Ben, ask Ann: what do you need right now?"})(),
        type("Chime", (), {"name": "soft"})(),
    ]
    assert opening_prompt(steps, 2) == "Ben, ask Ann: what do you need right now?"


def test_every_builtin_passes_check(cli: Cli) -> None:
    result = cli("check", *[str(p) for p in SCRIPTS])
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == len(SCRIPTS)


FACE_TO_FACE = re.compile(
    r"facing each other|next to each other|sit close|phones? (away|aside|out of reach)"
    r"|cannot see your face|at the table"
    r"|\b(hold|touch) (hands|each other)\b",
    re.IGNORECASE,
)


APART = [p for p in SCRIPTS if "apart" in load(p).tags]


@pytest.mark.parametrize("path", APART, ids=[p.stem for p in APART])
def test_apart_exercises_have_call_friendly_wording(path: Path) -> None:
    for step in plan(path):
        if kind(step) == "say":
            assert not FACE_TO_FACE.search(step.text), f"{path.name}:{step.line}: {step.text!r}"


NEW_EXERCISES = {
    "quick-repair": {"repair", "daily"},
    "two-minute-check-in": {"daily", "short", "check-in"},
    "empathy-boundaries": {"boundaries", "self-care"},
    "empathy-not-sympathy": {"listening", "support"},
    "monthly-check-in": {"monthly", "reflection", "ritual"},
    "help-me-understand": {"curiosity", "difference"},
    "needs-before-logistics": {"planning", "stress", "conflict"},
    "voice-note-exchange": {"apart", "ritual"},
}
ON_A_CALL = {
    "quick-repair",
    "two-minute-check-in",
    "empathy-boundaries",
    "empathy-not-sympathy",
    "monthly-check-in",
    "help-me-understand",
    "needs-before-logistics",
    "voice-note-exchange",
}


@pytest.mark.parametrize("script_id", sorted(NEW_EXERCISES))
def test_second_edition_exercises_are_found_by_their_tags(cli: Cli, script_id: str) -> None:
    for tag in NEW_EXERCISES[script_id]:
        found = json.loads(cli("list", "--json", "--tag", tag).out)
        assert script_id in [row["id"] for row in found], (script_id, tag)


def test_the_new_exercises_and_most_of_the_library_work_apart(cli: Cli) -> None:
    apart = {row["id"] for row in json.loads(cli("list", "--json", "--tag", "apart").out)}
    assert ON_A_CALL.issubset(apart)
    assert "dinner-listening" not in apart  # it is about one table
    assert len(apart) >= len(IDS) // 2
