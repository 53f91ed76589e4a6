"""The import contract: arrows run downward only, and the pure core touches no device, engine, disk or network.

Every `import` in every module counts, including the lazy ones inside functions, so a
shortcut taken deep in a command still shows up here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "voice_guide"

# What each layer may import from inside the package (a layer may always import itself).
# cli builds everything; apart runs live sessions over a link; the journal reads the
# records a session hands out but never the session engine.
LAYER_MAY_IMPORT: dict[str, set[str]] = {
    "cli": {"apart", "live", "journal", "sound", "script", "base"},
    "apart": {"live", "sound", "script", "base"},
    "live": {"sound", "script", "base"},
    "journal": {"live.records", "live.recap", "live.turns", "sound", "script", "base"},
    "sound": {"script", "base"},
    "script": {"base"},
    "base": set(),
}

# The pure core: given the same values it returns the same values.
PURE_CORE = [
    "script",
    "sound/timeline.py",
    "sound/tones.py",
    "sound/levels.py",
    "sound/clips.py",
    "live/vad/__init__.py",
    "live/vad/frames.py",
    "live/vad/bands.py",
    "live/vad/floor.py",
    "live/vad/detector.py",
    "live/vad/report.py",
    "live/vad/claps.py",
    "live/turns.py",
    "live/gates.py",
    "script/durations.py",
]
# Packages that reach a device, an engine, a database, a network or another process.
IMPURE = {
    "sounddevice",
    "pyttsx3",
    "piper",
    "onnxruntime",
    "pydub",
    "sqlite3",
    "socket",
    "websockets",
    "asyncio",
    "subprocess",
    "threading",
    "wave",
    "matplotlib",
    "urllib",
    "http",
    "shutil",
    "tempfile",
}
# Modules of ours the core may not use either: they do the impure things above.
IMPURE_OURS = {
    "voice_guide.sound.wavfile",
    "voice_guide.sound.encode",
    "voice_guide.sound.speech",
    "voice_guide.sound.render",
    "voice_guide.sound.assets",
    "voice_guide.live.audio",
    "voice_guide.live.session",
    "voice_guide.journal",
    "voice_guide.apart",
    "voice_guide.cli",
}
# Readers of session records, which must not load the session engine.
RECORD_READERS = ["journal", "live/display.py", "live/keys.py", "live/recap.py"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module_name: str | None = None) -> set[str]:
    """Return every module `path` imports, as absolute dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            # `from voice_guide.live import session` imports the submodule.
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def _files(target: str) -> list[Path]:
    path = PACKAGE / target
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in LAYER_MAY_IMPORT:
        return "base"
    return parts[1]


def _within(module: str, allowed: set[str]) -> bool:
    return any(module == f"voice_guide.{a}" or module.startswith(f"voice_guide.{a}.") for a in allowed)


ALL_FILES = sorted(p for p in PACKAGE.rglob("*.py") if "_data" not in p.parts)


def _ours(imported: set[str]) -> set[str]:
    """Keep the imports of real modules of ours (not names imported from them)."""
    real = {_module_name(p) for p in ALL_FILES}
    return {m for m in imported if m in real}


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_arrows_run_downward(path: Path) -> None:
    me = _module_name(path)
    layer = _layer(me)
    if me == "voice_guide.__main__":
        return  # the entry point starts the CLI
    allowed = LAYER_MAY_IMPORT[layer] | {layer}
    wrong = sorted(
        m
        for m in _ours(_imports(path))
        if _layer(m) != layer and not _within(m, allowed) and not (_layer(m) == "base" and "base" in allowed)
    )
    assert not wrong, f"{me} ({layer}) imports {wrong}"


@pytest.mark.parametrize("path", [f for t in PURE_CORE for f in _files(t)], ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_core_touches_no_device_engine_disk_or_network(path: Path) -> None:
    imported = _imports(path)
    outside = sorted(m for m in imported if m.split(".")[0] in IMPURE)
    ours = sorted(m for m in _ours(imported) if any(m == o or m.startswith(o + ".") for o in IMPURE_OURS))
    assert not outside and not ours, f"{_module_name(path)} imports {outside + ours}"


def test_every_module_of_the_detectors_is_in_the_pure_core() -> None:
    listed = {PACKAGE / t for t in PURE_CORE}
    assert [p for p in sorted((PACKAGE / "live" / "vad").glob("*.py")) if p not in listed] == []


@pytest.mark.parametrize(
    "path", [f for t in RECORD_READERS for f in _files(t)], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_record_readers_do_not_import_the_session_engine(path: Path) -> None:
    assert "voice_guide.live.session" not in _ours(_imports(path))


def test_the_contract_sees_a_wrong_arrow(tmp_path: Path) -> None:
    # The walker itself must find imports at every depth, or every test above passes vacuously.
    sample = PACKAGE / "live" / "vad" / "detector.py"
    assert "numpy" in _imports(sample)
    fake = tmp_path / "x.py"
    fake.write_text("def f():\n    from ..cli import main\n", encoding="utf-8")
    assert "voice_guide.cli" in _ours(_imports(fake, "voice_guide.live.fake"))
