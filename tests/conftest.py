"""Shared fixtures: an isolated user home and an in-process CLI runner."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from voice_guide.cli import Env, main
from voice_guide.paths import UserDirs

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point VOICE_GUIDE_HOME at a fresh folder so no test touches a real home."""
    folder = tmp_path / "home"
    monkeypatch.setenv("VOICE_GUIDE_HOME", str(folder))
    return folder


@pytest.fixture
def cli(home: Path) -> Callable[..., CliResult]:
    """Run the CLI in-process with captured output; return code, stdout, stderr."""

    def run(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        env = Env(stdout=out, stderr=err, dirs=UserDirs.from_environ({"VOICE_GUIDE_HOME": str(home)}))
        with pytest.raises(SystemExit) as exited:
            main(list(args), env)
        code = exited.value.code
        return CliResult(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())

    return run


def write(folder: Path, name: str, text: str) -> Path:
    """Write a script file and return its path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
