"""Property: whatever is done to a valid script, the loader raises ScriptError or nothing else."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voice_guide.errors import ScriptError
from voice_guide.script import expand, load

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
