"""Saved preferences (a TOML file in the user's config folder) and the one settings value each command builds.

Every command resolves its settings the same way: the built-in default, then the
config file, then the flags given on this command line. `Resolved` keeps where each
value came from, so `config list` can say.
"""

from __future__ import annotations

import math
import os
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from voice_guide.errors import UsageError
from voice_guide.script import Names
from voice_guide.sound.speech.base import DEFAULT_RATE_WPM, ENGINES
from voice_guide.sound.timeline import DEFAULT_RATE_HZ

if TYPE_CHECKING:
    from voice_guide.journal.store import PlayedWith

Value = str | int | bool
Origin = Literal["default", "config file", "flag"]
DEFAULT_WPM = DEFAULT_RATE_WPM


def parse_mic_channels(spec: str | None, option: str = "--mic-channels") -> dict[str, int]:
    """Parse `a=1,b=2` into zero-based input channels per partner."""
    if not spec:
        return {}
    result: dict[str, int] = {}
    for part in spec.split(","):
        who, sep, channel = part.partition("=")
        if not sep or who.strip() not in ("a", "b") or not channel.strip().isdigit() or int(channel) < 1:
            raise UsageError(f"{option} {spec}: expected a=N,b=M", "input channels count from 1, e.g. a=1,b=2")
        result[who.strip()] = int(channel) - 1
    if len(set(result.values())) != len(result):
        raise UsageError(f"{option} {spec}: two partners on one channel", "give each partner their own channel")
    return result


def _text(raw: str) -> str:
    text = raw.strip()
    if not text or len(text) > 80 or any(ord(c) < 32 for c in text):
        raise ValueError("expected a short line of text")
    return text


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.strip().isdigit() or not low <= int(raw) <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return int(raw)

    return parse


def _bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true or false")


def _engine(raw: str) -> str:
    word = raw.strip().lower()
    if word not in ENGINES:
        raise ValueError(f"expected one of {', '.join(ENGINES)}")
    return word


def _channels(raw: str) -> str:
    try:
        parse_mic_channels(raw)
    except UsageError:
        raise ValueError("expected a=N,b=M, channels counted from 1, e.g. a=1,b=2") from None
    return raw.replace(" ", "")


@dataclass(frozen=True)
class Key:
    """One preference: its default, how to read it from text, and what it means."""

    default: Value | None
    parse: Callable[[str], Value]
    help: str


KEYS: dict[str, Key] = {
    "a": Key(Names.a, _text, "name of the partner who starts (spoken as {a})"),
    "b": Key(Names.b, _text, "name of the other partner (spoken as {b})"),
    "voice": Key(None, _text, "voice: a Piper voice name or .onnx path, or an espeak voice (see 'voice-guide voices')"),
    "engine": Key(None, _engine, "speech engine: piper or espeak (default: piper when installed)"),
    "rate": Key(DEFAULT_WPM, _int_in(60, 400), "speaking pace in words per minute, as heard"),
    "sample_rate": Key(DEFAULT_RATE_HZ, _int_in(8000, 192000), "session sample rate in Hz"),
    "headphones": Key(False, _bool, "the mic cannot hear the guide: listen even while it speaks"),
    "input_device": Key(None, _text, "microphone: index or part of its name (see 'voice-guide devices')"),
    "output_device": Key(None, _text, "speaker: index or part of its name"),
    "mic_channels": Key(None, _channels, "two mics on one interface, e.g. a=1,b=2"),
}


def check_key(key: str) -> Key:
    """Return the definition of `key`; a UsageError naming the known keys otherwise."""
    if key not in KEYS:
        raise UsageError(f"unknown config key '{key}'", f"known keys: {', '.join(KEYS)}")
    return KEYS[key]


def parse_value(key: str, raw: str) -> Value:
    """Read the text `raw` as a value of `key`; a one-line UsageError when it does not fit."""
    spec = check_key(key)
    try:
        return spec.parse(raw)
    except ValueError as exc:
        raise UsageError(f"config {key} = {raw!r}: {exc}", f"{key}: {spec.help}") from None


def read_prefs(path: Path) -> dict[str, Value]:
    """Read saved preferences; a broken file or value is a UsageError naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror}", "check its permissions") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{path}: not valid TOML: {exc}", "fix it, or remove it and use 'voice-guide config set'"
        ) from None
    prefs: dict[str, Value] = {}
    for key, value in doc.items():
        if key not in KEYS:
            raise UsageError(f"{path}: unknown key '{key}'", f"known keys: {', '.join(KEYS)}")
        if not isinstance(value, str | int | bool) or (isinstance(value, float) and not math.isfinite(value)):
            raise UsageError(f"{path}: {key} must be text, a number or true/false", KEYS[key].help)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        try:
            prefs[key] = KEYS[key].parse(text)
        except ValueError as exc:
            raise UsageError(f"{path}: {key} = {value!r}: {exc}", KEYS[key].help) from None
    return prefs


def _toml_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def write_prefs(path: Path, prefs: Mapping[str, Value]) -> None:
    """Write preferences atomically: a temp file beside the target, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# voice-guide preferences; change them with 'voice-guide config set KEY VALUE'"]
    lines += [f"{key} = {_toml_value(prefs[key])}" for key in KEYS if key in prefs]
    fd, temp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Resolved:
    """Every key's value and where it came from: default, config file, or a flag."""

    values: Mapping[str, Value | None]
    origins: Mapping[str, Origin]

    def text(self, key: str) -> str | None:
        """Return a text value (None when unset)."""
        value = self.values[key]
        return None if value is None else str(value)

    def number(self, key: str) -> int:
        """Return a whole-number value."""
        value = self.values[key]
        assert isinstance(value, int) and not isinstance(value, bool)
        return value

    def flag(self, key: str) -> bool:
        """Return a true/false value."""
        return bool(self.values[key])


def resolve(prefs: Mapping[str, Value], flags: Mapping[str, Value | None]) -> Resolved:
    """Layer the defaults, the saved preferences and the flags given (None: not given)."""
    values: dict[str, Value | None] = {}
    origins: dict[str, Origin] = {}
    for key, spec in KEYS.items():
        given = flags.get(key)
        if given is not None:
            values[key], origins[key] = given, "flag"
        elif key in prefs:
            values[key], origins[key] = prefs[key], "config file"
        else:
            values[key], origins[key] = spec.default, "default"
    return Resolved(values, origins)


@dataclass(frozen=True)
class SessionSettings:
    """Everything a command needs to know about how to play: one frozen value, built once per command."""

    names: Names = field(default_factory=Names)
    voice: str | None = None
    engine: str | None = None
    rate_wpm: int = DEFAULT_WPM
    sample_rate_hz: int = DEFAULT_RATE_HZ
    mic: bool = True
    headphones: bool = False
    input_device: str | None = None
    output_device: str | None = None
    # partner ("a"/"b") -> zero-based input channel; empty: one mic for whoever's turn it is
    mic_channels: Mapping[str, int] = field(default_factory=dict)
    sets: tuple[str, ...] = ()
    offline: bool = False
    apart: str | None = None
    # True when neither a flag nor the config file named the partners
    default_names: bool = False
    # the keys whose value came from the config file (an error about them should say so)
    saved: frozenset[str] = frozenset()

    @classmethod
    def from_resolved(
        cls, resolved: Resolved, *, mic: bool = True, sets: tuple[str, ...] = (), offline: bool = False
    ) -> SessionSettings:
        """Build the settings from resolved preferences and the command's own choices."""
        return cls(
            names=Names(a=resolved.text("a") or Names.a, b=resolved.text("b") or Names.b),
            voice=resolved.text("voice"),
            engine=resolved.text("engine"),
            rate_wpm=resolved.number("rate"),
            sample_rate_hz=resolved.number("sample_rate"),
            mic=mic,
            headphones=resolved.flag("headphones"),
            input_device=resolved.text("input_device"),
            output_device=resolved.text("output_device"),
            mic_channels=parse_mic_channels(
                resolved.text("mic_channels"),
                "--mic-channels" if resolved.origins["mic_channels"] == "flag" else "config mic_channels",
            ),
            sets=sets,
            offline=offline,
            default_names=resolved.origins["a"] == "default" and resolved.origins["b"] == "default",
            saved=frozenset(key for key, origin in resolved.origins.items() if origin == "config file"),
        )

    @property
    def input_channels(self) -> int:
        """Return how many input channels to open (at least one)."""
        return max(self.mic_channels.values(), default=0) + 1

    def journal_settings(self) -> PlayedWith:
        """Return what the journal keeps about how the session was played."""
        from voice_guide.journal.store import PlayedWith  # loaded only by the commands that keep a session

        return PlayedWith(
            voice=self.voice,
            engine=self.engine,
            rate_wpm=self.rate_wpm,
            sample_rate_hz=self.sample_rate_hz,
            mic=self.mic,
            headphones=self.headphones,
            sets=self.sets,
            offline=self.offline,
            apart=self.apart,
        )
