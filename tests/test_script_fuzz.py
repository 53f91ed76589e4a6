"""Property: whatever is done to a valid script, the loader raises ScriptError or nothing else."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voice_guide.errors import ScriptError
from voice_guide.script import Say, expand, load
from voice_guide.script.model import MAX_PROMPT_CHARS, MAX_SESSION_S, MAX_STEPS, first_unsafe_char

from .conftest import REPO

SEEDS = [p.read_bytes() for p in sorted((REPO / "scripts").glob("*.yaml"))] or [
    b"title: T\nsummary: S\nsteps:\n  - say: hi {a}\n  - listen: a\n    for: 1m\n"
]
FOLDER = Path(tempfile.mkdtemp(prefix="vg-fuzz-"))

# Values hypothesis may put anywhere in a script's structure.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["2m", "0s", "{share}", "{x}", "say", "listen", "start", "a", "speaker"]),
)
values = st.recursive(
    scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=8), kids, max_size=3)),
    max_leaves=8,
)


def check_loader(raw: bytes) -> None:
    path = FOLDER / "mutant.yaml"
    path.write_bytes(raw)
    try:
        expand(load(path))
    except ScriptError as exc:
        assert exc.line is None or exc.line >= 1
        assert "\n" not in exc.one_line()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_byte_mutations_raise_only_script_errors(seed: bytes, data: st.DataObject) -> None:
    raw = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["delete", "insert", "replace", "dup-line", "cut"]))
        at = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "delete" and raw:
            del raw[at : at + data.draw(st.integers(1, 8))]
        elif op == "insert":
            snippet = st.binary(min_size=1, max_size=4) | st.sampled_from([b":", b"- ", b"\n  ", b"{", b"}"])
            raw[at:at] = data.draw(snippet)
        elif op == "replace" and raw:
            raw[at] = data.draw(st.integers(0, 255))
        elif op == "dup-line":
            lines = bytes(raw).split(b"\n")
            i = data.draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            raw = bytearray(b"\n".join(lines))
        else:
            raw = raw[:at]
    check_loader(bytes(raw))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_structure_mutations_raise_only_script_errors(seed: bytes, data: st.DataObject) -> None:
    doc = yaml.safe_load(seed)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        new = data.draw(values)
        if not path:
            doc = new
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = new
    check_loader(yaml.safe_dump(doc, allow_unicode=True).encode())


# ---------------------------------------------------------------- hostile structure and text

durations = st.one_of(
    st.sampled_from(["1s", "90s", "2m", "1h", "23h", "25h", "9999999h", "1e300", "0.5s"]),
    st.floats(0.1, 1e12),
)


@st.composite
def nested_repeats(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """A repeat whose steps may be repeats again: counts multiply, as they do when unrolled."""
    inner: list[Any] = []
    for _ in range(draw(st.integers(1, 3))):
        if depth < 4 and draw(st.booleans()):
            inner.append(draw(nested_repeats(depth + 1)))
        else:
            inner.append(draw(st.sampled_from([{"say": "hi"}, {"pause": draw(durations)}, {"chime": "soft"}])))
    return {"repeat": draw(st.integers(1, 100)), "steps": inner}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(top=st.lists(nested_repeats(), min_size=1, max_size=3))
def test_nested_repeats_never_unroll_past_the_bounds(top: list[Any]) -> None:
    path = FOLDER / "nested.yaml"
    path.write_text(yaml.safe_dump({"title": "T", "summary": "S", "steps": top}), encoding="utf-8")
    try:
        steps = expand(load(path))
    except ScriptError as exc:
        assert exc.line is not None and exc.line >= 1 and "\n" not in exc.one_line()
        return
    assert len(steps) <= MAX_STEPS
    assert sum(getattr(s, "duration_s", 0.0) for s in steps) <= MAX_SESSION_S


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    where=st.sampled_from(["title", "summary", "say", "tag", "param"]),
    text=st.one_of(
        st.text(min_size=1, max_size=40),
        st.text(st.characters(codec=None), min_size=1, max_size=10),
        st.integers(1900, 70_000).map(lambda n: ("word " * n)[:n]),
    ),
)
def test_any_text_loads_clean_or_is_refused_with_its_line(where: str, text: str) -> None:
    # json.dumps writes every odd character as a \u escape, which YAML's double quotes decode:
    # so the loader really meets escapes, controls and lone surrogates, not a file that fails to encode.
    quoted = json.dumps(text)
    doc = {"title": "T", "summary": "S", "tags": "[t]", "params": "{}", "steps": "\n  - say: hi"}
    value = {"title": quoted, "summary": quoted, "tag": f"[{quoted}]", "param": "{p: " + quoted + "}"}.get(where)
    if where == "say":
        doc["steps"] = f"\n  - say: {quoted}"
    else:
        doc["tags" if where == "tag" else "params" if where == "param" else where] = value or quoted
    raw = "".join(f"{key}: {val}\n" for key, val in doc.items())
    path = FOLDER / "text.yaml"
    path.write_text(raw, encoding="utf-8")
    try:
        script = load(path)
    except ScriptError as exc:
        assert exc.line is not None and exc.line >= 1 and "\n" not in exc.one_line()
        return
    texts = [script.title, script.summary, *script.tags, *(p.raw for p in script.params.values())]
    texts += [s.text for s in expand(script) if isinstance(s, Say)]
    assert all(first_unsafe_char(t) is None and len(t) <= MAX_PROMPT_CHARS for t in texts)
