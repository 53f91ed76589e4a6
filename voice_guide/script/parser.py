"""Read and validate a script file into a frozen `Script`, naming file and line in every error."""

from __future__ import annotations

import difflib
import os
import re
import stat
import string
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from voice_guide.errors import ScriptError
from voice_guide.script.durations import DURATION_HINT, parse_duration_s
from voice_guide.script.expand import expand
from voice_guide.script.model import (
    BREATHE_KEYS,
    BUILTIN_PLACEHOLDERS,
    COUNTING,
    CUE_FILE_SUFFIXES,
    LISTEN_OPTIONS,
    LISTENERS,
    MAX_PROMPT_CHARS,
    MAX_REPEAT,
    MAX_SCRIPT_BYTES,
    MAX_SESSION_S,
    MAX_STEPS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    REPEAT_OPTIONS,
    SCRIPT_CUES,
    STEP_KINDS,
    TOP_KEYS,
    BreatheStep,
    ChimeStep,
    Duration,
    ListenStep,
    Param,
    PauseStep,
    RepeatStep,
    SayStep,
    Script,
    StepSpec,
    first_unsafe_char,
)
from voice_guide.script.yamlsource import LineDict, LineList, load_yaml

# Reading a script may take this long at most (a slow network mount, a stalled disk).
READ_TIMEOUT_S = 5.0
_READ_CHUNK = 64 * 1024


def load(path: str | Path) -> Script:
    """Read and validate the script at `path`; raise ScriptError naming file and line."""
    path = Path(path)
    shown = str(path)
    try:
        raw = _read_bounded(path, shown)
    except FileNotFoundError:
        raise ScriptError("no such script file", "give a built-in id, a user script id or a path", file=shown) from None
    except IsADirectoryError:
        raise ScriptError("is a folder, not a script file", "give a .yaml file", file=shown) from None
    except OSError as exc:
        raise ScriptError(f"cannot read it: {exc.strerror}", "check the path and its permissions", file=shown) from None
    return parse(raw, path)


def _read_bounded(path: Path, shown: str) -> bytes:
    """Read a regular file of at most MAX_SCRIPT_BYTES within READ_TIMEOUT_S; FIFOs and devices end at once."""
    # Non-blocking open: a FIFO would otherwise wait for a writer forever.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(info.st_mode):
            raise ScriptError("is not a regular file (a pipe or a device?)", "give a .yaml file", file=shown)
        if info.st_size > MAX_SCRIPT_BYTES:
            raise _too_big(shown)
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size, deadline = 0, time.monotonic() + READ_TIMEOUT_S
        while chunk := os.read(fd, _READ_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_SCRIPT_BYTES:  # it grew while being read
                raise _too_big(shown)
            if time.monotonic() > deadline:
                raise ScriptError(
                    f"reading it took over {READ_TIMEOUT_S:g} s", "copy the script to a local disk", file=shown
                )
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_big(shown: str) -> ScriptError:
    return ScriptError(
        f"the file is larger than {MAX_SCRIPT_BYTES // 1000} kB", "a script is a short YAML text file", file=shown
    )


def parse(raw: bytes, path: Path) -> Script:
    """Validate the bytes of a script that lives (or would live) at `path`."""
    return _Parser(path).parse(raw)


def _did_you_mean(word: object, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else "expected one of " + ", ".join(choices)


class _Parser:
    """Validates one file; holds the file name so every error can name it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = str(path)
        self.params: dict[str, Param] = {}

    def fail(self, line: int | None, what: str, expected: str) -> ScriptError:
        return ScriptError(what, expected, file=self.file, line=line)

    def parse(self, raw: bytes) -> Script:
        if len(raw) > MAX_SCRIPT_BYTES:  # a script sent over the link is held to the same bound
            raise _too_big(self.file)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise self.fail(line, "the file is not UTF-8 text", "save the script as UTF-8") from None
        if "\x00" in text:
            line = text[: text.index("\x00")].count("\n") + 1
            raise self.fail(line, "the file is not text (it holds NUL bytes)", "a YAML text file")
        try:
            doc = load_yaml(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            what = exc.problem or exc.context or "YAML syntax error"
            line, what, fix = _yaml_fix(text, line, what)
            raise self.fail(line, what, fix) from None
        except yaml.reader.ReaderError as exc:
            line = text[: exc.position].count("\n") + 1
            raise self.fail(
                line, f"the file holds a control character ({exc.character!r})", "plain text; remove the character"
            ) from None
        except yaml.YAMLError as exc:
            raise self.fail(1, f"YAML syntax error: {exc}", "valid YAML") from None
        except RecursionError:
            raise self.fail(1, "YAML nests too deeply", "a flat list of steps") from None
        except ValueError as exc:
            # The YAML library turns digits into an int, which Python refuses past 4300
            # digits, and dates into datetimes, which refuse a 13th month.
            long_number = re.search(r"\d{100,}", text)
            if long_number and "digits" in str(exc):
                line = text[: long_number.start()].count("\n") + 1
                raise self.fail(line, "a number is far too long", "a whole number such as 3") from None
            raise self.fail(1, f"a value YAML cannot read ({exc})", "put the value in quotes") from None
        if not isinstance(doc, LineDict):
            raise self.fail(
                1, "the script is not a mapping", "top-level keys title, summary, steps (see docs/SCRIPT_FORMAT.md)"
            )
        return self._script(doc)

    # -- top level

    def _script(self, doc: LineDict) -> Script:
        for key in doc:
            if key not in TOP_KEYS:
                raise self.fail(doc.line_of(key), f"unknown top-level key '{key}'", _did_you_mean(key, TOP_KEYS))
        for key in ("title", "summary", "steps"):
            if key not in doc:
                raise self.fail(doc.line, f"missing '{key}'", f"every script needs {key}")
        title = self._text(doc, "title")
        summary = self._text(doc, "summary")
        tags = self._tags(doc)
        self.params = self._params(doc)
        steps = self._steps(doc["steps"], doc.line_of("steps"), "steps")
        self._bound_steps(steps)
        script = Script(
            id=self.path.stem,
            path=self.path,
            title=title,
            summary=summary,
            steps=steps,
            tags=tags,
            params=dict(self.params),
        )
        # Expanding with the defaults checks what only a concrete plan can
        # (params inside durations, until_silence against for).
        expand(script)
        return script

    def _bound_steps(self, steps: tuple[StepSpec, ...]) -> None:
        """Refuse a script whose repeats unroll to more than MAX_STEPS steps, before unrolling them."""
        total = 0
        for spec in steps:
            total += _unrolled(spec)
            if total > MAX_STEPS:
                raise self.fail(
                    spec.line,
                    f"the session unrolls to more than {MAX_STEPS} steps",
                    "nested repeats multiply; use fewer or smaller repeats",
                )

    def _text(self, doc: LineDict, key: str) -> str:
        value = doc[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(doc.line_of(key), f"'{key}' must be text", f"a non-empty line of text for {key}")
        limit = MAX_TITLE_CHARS if key == "title" else MAX_SUMMARY_CHARS
        return self._clean(value.strip(), doc.line_of(key), key, limit)

    def _clean(self, text: str, line: int, what: str, limit: int) -> str:
        """Return `text` if it is short enough and holds no control character or lone surrogate."""
        bad = first_unsafe_char(text)
        if bad is not None:
            raise self.fail(line, f"{what} holds the control character '{bad}'", "plain text; remove it")
        if len(text) > limit:
            raise self.fail(line, f"{what} is {len(text)} characters long", f"at most {limit}; split it into steps")
        return text

    def _tags(self, doc: LineDict) -> tuple[str, ...]:
        if "tags" not in doc or doc["tags"] is None:
            return ()
        tags = doc["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
            raise self.fail(doc.line_of("tags"), "'tags' must be a list of words", "for example [listening, daily]")
        return tuple(self._clean(t.strip(), doc.line_of("tags"), "a tag", MAX_TITLE_CHARS) for t in tags)

    def _params(self, doc: LineDict) -> dict[str, Param]:
        if "params" not in doc or doc["params"] is None:
            return {}
        params = doc["params"]
        if not isinstance(params, LineDict):
            raise self.fail(doc.line_of("params"), "'params' must be a mapping", "name: default, for example share: 2m")
        result: dict[str, Param] = {}
        for name, value in params.items():
            line = params.line_of(name)
            if not isinstance(name, str) or not name.isidentifier():
                raise self.fail(line, f"bad param name '{name}'", "a word of letters, digits and _")
            if name in BUILTIN_PLACEHOLDERS:
                raise self.fail(
                    line,
                    f"param '{name}' shadows a built-in placeholder",
                    "pick another name; " + ", ".join(BUILTIN_PLACEHOLDERS) + " are taken",
                )
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise self.fail(line, f"param '{name}' must be a duration, a number or text", "for example share: 2m")
            raw = self._clean(str(value), line, f"param '{name}'", MAX_PROMPT_CHARS)
            if isinstance(value, str) and "{" in value:
                raise self.fail(line, f"param '{name}' may not hold placeholders", "a plain value")
            seconds = parse_duration_s(value)
            if seconds is not None and seconds > MAX_SESSION_S:
                raise self.fail(line, f"param '{name}' is longer than a day", "a session lasts at most 24h")
            result[name] = Param(raw=raw, duration_s=seconds, line=line)
        return result

    # -- steps

    def _steps(self, value: Any, line: int, where: str) -> tuple[StepSpec, ...]:
        if not isinstance(value, LineList):
            raise self.fail(line, f"'{where}' must be a list of steps", "a YAML list: lines starting with '- '")
        if not value:
            raise self.fail(line, f"'{where}' is empty", "at least one step")
        return tuple(self._step(item, value.line_of(i)) for i, item in enumerate(value))

    def _step(self, item: Any, line: int) -> StepSpec:
        if not isinstance(item, LineDict):
            raise self.fail(
                line,
                f"a step must be a mapping, not {_describe(item)}",
                "a kind and its value, for example '- say: Hello'",
            )
        kinds = [k for k in item if k in STEP_KINDS]
        if not kinds:
            first = next(iter(item), "")
            raise self.fail(
                line,
                "step has no kind",
                _did_you_mean(first, STEP_KINDS) if first else "one of " + ", ".join(STEP_KINDS),
            )
        if len(kinds) > 1:
            raise self.fail(
                item.line_of(kinds[1]),
                f"step has two kinds, '{kinds[0]}' and '{kinds[1]}'",
                "exactly one kind per step; split it into two steps",
            )
        kind = kinds[0]
        allowed = {"listen": LISTEN_OPTIONS, "repeat": REPEAT_OPTIONS}.get(kind, ())
        for key in item:
            if key != kind and key not in allowed:
                hint = _did_you_mean(key, allowed) if allowed else f"{kind} takes no options"
                raise self.fail(item.line_of(key), f"unknown option '{key}' for {kind}", hint)
        line = item.line_of(kind)
        value = item[kind]
        if kind == "say":
            return SayStep(self._template(value, line, "say"), line)
        if kind == "chime":
            return self._chime(value, line)
        if kind == "pause":
            return PauseStep(self._duration(value, line, "pause"), line)
        if kind == "listen":
            return self._listen(item, value, line)
        if kind == "breathe":
            return self._breathe(value, line)
        return self._repeat(item, value, line)

    def _template(self, value: Any, line: int, what: str) -> str:
        self._unquoted_placeholder(value, line, what)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
            raise self.fail(line, f"{what} needs text", "a sentence for the guide to speak")
        text = self._clean(str(value).strip(), line, what, MAX_PROMPT_CHARS)
        try:
            fields = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise self.fail(
                line, f"bad braces in text: {exc}", "placeholders look like {a}; write {{ or }} for a literal brace"
            ) from None
        known = (*BUILTIN_PLACEHOLDERS, *self.params)
        for _, name, spec, conversion in fields:
            if name is None:
                continue
            if name not in known:
                raise self.fail(
                    line,
                    f"unknown placeholder '{{{name}}}'",
                    _did_you_mean(name, known) if name else "a name inside the braces",
                )
            if spec or conversion:
                raise self.fail(line, f"placeholder '{{{name}}}' has a format spec", "write just {" + name + "}")
        return text

    def _duration(self, value: Any, line: int, what: str, allow_zero: bool = False) -> Duration:
        self._unquoted_placeholder(value, line, what)
        if isinstance(value, str) and value.strip().startswith("{"):
            match = re.fullmatch(r"\{(\w+)\}", value.strip())
            name = match.group(1) if match else ""
            if name not in self.params:
                raise self.fail(
                    line,
                    f"{what}: unknown param in '{value}'",
                    _did_you_mean(name, self.params) if self.params else "declare it under params",
                )
            seconds = self.params[name].duration_s
            if seconds is None or (seconds == 0 and not allow_zero):
                raise self.fail(
                    line, f"{what}: param '{name}' is '{self.params[name].raw}', not a duration", DURATION_HINT
                )
            return Duration(param=name)
        seconds = parse_duration_s(value)
        if seconds is None:
            raise self.fail(line, f"{what}: '{_short(value)}' is not a duration", DURATION_HINT)
        if seconds > MAX_SESSION_S:
            raise self.fail(line, f"{what}: '{_short(value)}' is longer than a day", "a session lasts at most 24h")
        if seconds == 0 and not allow_zero:
            raise self.fail(line, f"{what}: duration must be more than zero", DURATION_HINT)
        return Duration(seconds=seconds)

    def _unquoted_placeholder(self, value: Any, line: int, what: str) -> None:
        """Catch `{name}` without quotes, which YAML reads as a mapping {name: None}."""
        if isinstance(value, LineDict) and value and all(v is None for v in value.values()):
            shown = ", ".join(f"{{{k}}}" for k in value)
            raise self.fail(
                line,
                f"{what}: {shown} without quotes is read as a YAML mapping, not a placeholder",
                f'put the value in quotes: {what}: "{shown}"',
            )

    def _chime(self, value: Any, line: int) -> ChimeStep:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(line, "chime needs a cue name", "one of " + ", ".join(SCRIPT_CUES) + " or a .wav/.ogg file")
        cue = self._clean(value.strip(), line, "chime", MAX_TITLE_CHARS)
        if cue.lower().endswith(CUE_FILE_SUFFIXES) or "/" in cue:
            file = (self.path.parent / cue).resolve()
            if not file.is_file():
                raise self.fail(
                    line,
                    f"cue file '{cue}' does not exist",
                    f"a WAV or OGG file relative to the script, looked in {self.path.parent}",
                )
            if not cue.lower().endswith(CUE_FILE_SUFFIXES):
                raise self.fail(line, f"cue file '{cue}' is not a .wav or .ogg file", "a WAV or OGG file")
            return ChimeStep(cue, line, path=file)
        if cue not in SCRIPT_CUES:
            raise self.fail(line, f"unknown cue '{cue}'", _did_you_mean(cue, SCRIPT_CUES))
        return ChimeStep(cue, line)

    def _listen(self, item: LineDict, who: Any, line: int) -> ListenStep:
        if who not in LISTENERS:
            raise self.fail(line, f"listen: unknown partner '{who}'", _did_you_mean(who, LISTENERS))
        if "for" not in item:
            raise self.fail(line, "listen needs 'for'", "the most the turn may take, for example for: 2m")

        def opt(key: str) -> Duration | None:
            if key not in item:
                return None
            return self._duration(item[key], item.line_of(key), key)

        for_ = self._duration(item["for"], item.line_of("for"), "for")
        return ListenStep(
            who=str(who),
            for_=for_,
            line=line,
            until_silence=opt("until_silence"),
            wait_for_speech=opt("wait_for_speech"),
            remind=opt("remind"),
            grace=opt("grace"),
        )

    def _breathe(self, value: Any, line: int) -> BreatheStep:
        if not isinstance(value, LineDict):
            raise self.fail(line, "breathe needs a mapping", "for example {in: 4s, hold: 2s, out: 6s, count: 3}")
        for key in value:
            if key not in BREATHE_KEYS:
                raise self.fail(
                    value.line_of(key), f"unknown option '{key}' for breathe", _did_you_mean(key, BREATHE_KEYS)
                )
        for key in ("in", "out"):
            if key not in value:
                raise self.fail(value.line, f"breathe needs '{key}'", "for example {in: 4s, out: 6s}")

        def dur(key: str, allow_zero: bool) -> Duration:
            if key not in value:
                return Duration(0.0)
            return self._duration(value[key], value.line_of(key), f"breathe {key}", allow_zero)

        count = value.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_REPEAT:
            raise self.fail(
                value.line_of("count"),
                f"breathe count '{count}' is out of range",
                f"a whole number of breaths from 1 to {MAX_REPEAT}",
            )
        counting = value.get("counting", "tones")
        if counting not in COUNTING:
            raise self.fail(
                value.line_of("counting"), f"unknown counting '{counting}'", _did_you_mean(counting, COUNTING)
            )
        return BreatheStep(
            in_=dur("in", False),
            out=dur("out", False),
            line=line,
            hold=dur("hold", True),
            hold_out=dur("hold_out", True),
            count=count,
            counting=str(counting),
        )

    def _repeat(self, item: LineDict, count: Any, line: int) -> RepeatStep:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_REPEAT:
            raise self.fail(line, f"repeat count '{count}' is out of range", f"a whole number from 1 to {MAX_REPEAT}")
        swap = item.get("swap", False)
        if not isinstance(swap, bool):
            raise self.fail(item.line_of("swap"), f"swap must be true or false, not '{swap}'", "true or false")
        if "steps" not in item:
            raise self.fail(line, "repeat needs 'steps'", "a list of steps to repeat")
        steps = self._steps(item["steps"], item.line_of("steps"), "steps")
        return RepeatStep(count=count, steps=steps, line=line, swap=swap)


_INDENT_FIX = "line it up with the lines above: each step starts with a dash, its options two spaces right of the dash"


def _yaml_fix(text: str, line: int, problem: str) -> tuple[int, str, str]:
    """Turn the YAML parser's complaint into what went wrong and how to fix it: (line, what, fix)."""
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    # PyYAML names a tab as '\t'; it may trip over it later than the line that holds it.
    tabbed = [n for n, t in enumerate(lines, 1) if "\t" in t[: len(t) - len(t.lstrip())]]
    if "\\t" in problem or (tabbed and tabbed[0] <= line):
        at = tabbed[0] if tabbed else line
        return at, "a tab in the indentation (YAML allows only spaces there)", "indent with spaces instead of tabs"
    key, colon, value = source.partition(": ")
    key, value = key.strip().lstrip("- "), value.strip()
    quoted = value[:1] in ('"', "'")
    if "mapping values are not allowed" in problem:
        if colon and ":" in value and not quoted:
            return line, "a colon inside unquoted text ends the text early", f'put the text in quotes: {key}: "{value}"'
        return line, "the indentation does not line up", _INDENT_FIX
    if value.startswith("{") and not quoted:
        return (
            line,
            "text that starts with a {placeholder} must be quoted (YAML reads the braces as a mapping)",
            f'put the text in quotes: {key}: "{value}"',
        )
    if "expected <block end>" in problem or "block mapping" in problem or "block collection" in problem:
        return line, "the indentation does not line up", _INDENT_FIX
    return line, f"YAML syntax error: {problem}", "valid YAML, see docs/SCRIPT_FORMAT.md"


def _unrolled(spec: StepSpec) -> int:
    """Count the steps `spec` becomes, stopping early once past MAX_STEPS."""
    if not isinstance(spec, RepeatStep):
        return 1
    inner = 0
    for child in spec.steps:
        inner += _unrolled(child)
        if inner > MAX_STEPS:
            break
    return spec.count * inner


def _short(value: Any) -> str:
    text = str(value) if not isinstance(value, int) or abs(value) < 10**50 else "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the text '{value[:30]}'"
    if isinstance(value, list):
        return "a list"
    return f"'{value}'"
