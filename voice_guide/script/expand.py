"""Fill in names and `--set` values and unroll repeats: a `Script` becomes the flat steps the timeline places."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from voice_guide.errors import ScriptError, UsageError
from voice_guide.script.durations import DURATION_HINT, parse_duration_s, spoken_duration
from voice_guide.script.model import (
    MAX_NAME_CHARS,
    MAX_PROMPT_CHARS,
    MAX_SESSION_S,
    Breathe,
    BreatheStep,
    Chime,
    ChimeStep,
    Duration,
    Listen,
    ListenStep,
    Names,
    Param,
    Pause,
    PauseStep,
    RepeatStep,
    Say,
    SayStep,
    Script,
    Step,
    StepSpec,
    Who,
    first_unsafe_char,
)


def parse_overrides(pairs: Iterable[str], script: Script) -> dict[str, Param]:
    """Turn `--set name=value` options into params; raise UsageError naming the option."""
    result: dict[str, Param] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise UsageError(f"--set {pair}: expected name=value", "for example --set share=90s")
        if name not in script.params:
            known = ", ".join(script.params) or "none"
            raise UsageError(f"--set {pair}: '{script.id}' has no param '{name}'", f"its params: {known}")
        default = script.params[name]
        seconds = parse_duration_s(value)
        if default.duration_s is not None and not seconds:
            raise UsageError(f"--set {pair}: '{value}' is not a duration", DURATION_HINT)
        if default.duration_s is not None and not _is_plain_number(default.raw) and _is_plain_number(value):
            value = f"{value}s"  # a bare number for a duration param is seconds, and is spoken with its unit
        if seconds is not None and seconds > MAX_SESSION_S:
            raise UsageError(f"--set {pair}: longer than a day", "a session lasts at most 24h")
        bad = first_unsafe_char(value)
        if bad is not None or len(value) > MAX_PROMPT_CHARS:
            what = f"holds the control character '{bad}'" if bad else f"is {len(value)} characters long"
            raise UsageError(f"--set {name}: the value {what}", f"plain text of at most {MAX_PROMPT_CHARS} characters")
        result[name] = Param(raw=value, duration_s=seconds, line=default.line)
    return result


@dataclass(frozen=True)
class _Roles:
    speaker: Literal["a", "b"] = "a"
    round: int = 1
    rounds: int = 1

    @property
    def listener(self) -> Literal["a", "b"]:
        return "b" if self.speaker == "a" else "a"


def expand(script: Script, names: Names = Names(), overrides: Mapping[str, Param] | None = None) -> tuple[Step, ...]:
    """Unroll repeats, fill placeholders and params; return the steps in play order."""
    check_names(names)
    params = {**script.params, **(overrides or {})}
    out: list[Step] = []
    _expand_into(out, script.steps, _Roles(), params, names, str(script.path))
    _check_plan(out, str(script.path))
    return tuple(out)


def check_names(names: Names) -> None:
    """Refuse partner names that are too long or hold control characters (they are spoken and printed)."""
    for option, name in (("--a", names.a), ("--b", names.b)):
        bad = first_unsafe_char(name)
        if not name.strip() or bad is not None or len(name) > MAX_NAME_CHARS:
            what = f"holds the control character '{bad}'" if bad else "is empty" if not name.strip() else "is too long"
            raise UsageError(f"{option}: the name {what}", f"a name of 1 to {MAX_NAME_CHARS} plain characters")


# Rough speaking pace for the bound below (espeak at 150 wpm says about 15 characters a second).
_CHARS_PER_S = 10.0


def _check_plan(steps: Iterable[Step], file: str) -> None:
    """Refuse a plan longer than a day, and prompts that filling in params made too long."""
    total_s = 0.0
    for step in steps:
        if isinstance(step, Say):
            if len(step.text) > MAX_PROMPT_CHARS:
                raise ScriptError(
                    f"the prompt is {len(step.text)} characters long once filled in",
                    f"at most {MAX_PROMPT_CHARS}; shorten the text or its params",
                    file=file,
                    line=step.line,
                )
            total_s += len(step.text) / _CHARS_PER_S
        elif isinstance(step, Pause):
            total_s += step.duration_s
        elif isinstance(step, Listen):
            total_s += step.for_s
        elif isinstance(step, Breathe):
            total_s += step.count * step.breath_s
        if total_s > MAX_SESSION_S:
            raise ScriptError(
                "the session would last more than a day",
                "shorten its pauses, turns or repeats",
                file=file,
                line=step.line,
            )


def _expand_into(
    out: list[Step], steps: tuple[StepSpec, ...], roles: _Roles, params: Mapping[str, Param], names: Names, file: str
) -> _Roles:
    for spec in steps:
        if isinstance(spec, RepeatStep):
            for n in range(1, spec.count + 1):
                inner = _Roles(roles.speaker, n, spec.count)
                inner = _expand_into(out, spec.steps, inner, params, names, file)
                roles = _Roles(inner.speaker, roles.round, roles.rounds)
                if spec.swap:
                    roles = _Roles(roles.listener, roles.round, roles.rounds)
        else:
            out.append(_concrete(spec, roles, params, names, file))
    return roles


def _concrete(spec: StepSpec, roles: _Roles, params: Mapping[str, Param], names: Names, file: str) -> Step:
    def seconds(d: Duration) -> float:
        if d.param is None:
            return d.seconds or 0.0
        value = params[d.param].duration_s
        assert value is not None  # checked when loaded and when overridden
        return value

    def opt(d: Duration | None) -> float | None:
        return None if d is None else seconds(d)

    if isinstance(spec, SayStep):
        return Say(_fill(spec.text, roles, params, names), spec.line)
    if isinstance(spec, ChimeStep):
        return Chime(spec.path.name if spec.path else spec.cue, spec.line, spec.path)
    if isinstance(spec, PauseStep):
        return Pause(seconds(spec.duration), spec.line)
    if isinstance(spec, BreatheStep):
        return Breathe(
            seconds(spec.in_),
            seconds(spec.hold),
            seconds(spec.out),
            seconds(spec.hold_out),
            spec.count,
            spec.counting,
            spec.line,
        )
    assert isinstance(spec, ListenStep)
    who = _resolve_who(spec.who, roles)
    who_name = {"a": names.a, "b": names.b}.get(who, who)
    listen = Listen(
        who=who,
        who_name=who_name,
        for_s=seconds(spec.for_),
        line=spec.line,
        until_silence_s=opt(spec.until_silence),
        wait_for_speech_s=opt(spec.wait_for_speech),
        remind_s=opt(spec.remind),
        grace_s=opt(spec.grace),
    )
    for option, value in (("until_silence", listen.until_silence_s), ("remind", listen.remind_s)):
        if value is not None and value >= listen.for_s:
            raise ScriptError(
                f"{option} ({value:g}s) is not shorter than for ({listen.for_s:g}s)",
                f"{option} must be shorter than the turn",
                file=file,
                line=spec.line,
            )
    return listen


def _resolve_who(written: str, roles: _Roles) -> Who:
    if written == "speaker":
        return roles.speaker
    if written == "listener":
        return roles.listener
    assert written in ("a", "b", "both", "anyone")
    return written  # type: ignore[return-value]  # narrowed by the assert above


def _fill(text: str, roles: _Roles, params: Mapping[str, Param], names: Names) -> str:
    values: dict[str, str] = {
        name: spoken_duration(p.duration_s, p.raw)
        if p.duration_s is not None and not _is_plain_number(p.raw)
        else p.raw
        for name, p in params.items()
    }
    role_name = {"a": names.a, "b": names.b}
    values.update(
        a=names.a,
        b=names.b,
        speaker=role_name[roles.speaker],
        listener=role_name[roles.listener],
        round=str(roles.round),
        rounds=str(roles.rounds),
    )
    return text.format_map(values)


def _is_plain_number(raw: str) -> bool:
    try:
        float(raw)
    except ValueError:
        return False
    return True


def step_kind(step: Step) -> str:
    """Return the script keyword for a concrete step: say, chime, pause, listen or breathe."""
    return type(step).__name__.lower()


def step_details(step: Step) -> dict[str, str]:
    """Return the fields that describe a step to people and JSON: text, name or who."""
    if isinstance(step, Say):
        return {"text": step.text}
    if isinstance(step, Chime):
        return {"name": step.name}
    if isinstance(step, Listen):
        return {"who": step.who_name if step.who in ("a", "b") else step.who}
    return {}


def step_label(step: Step) -> str:
    """Return a short human label for a step, as shown in lists and chapters."""
    if isinstance(step, Say):
        return step.text
    if isinstance(step, Chime):
        return f"{step.name} chime"
    if isinstance(step, Pause):
        return f"pause {spoken_duration(step.duration_s)}"
    if isinstance(step, Listen):
        who = step.who_name if step.who in ("a", "b") else step.who
        return f"{who} talks (up to {spoken_duration(step.for_s)})"
    return "breathe once" if step.count == 1 else f"breathe {step.count} times"
