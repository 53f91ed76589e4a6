"""The command line: list, show, check, new, and the one-line error contract."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from voice_guide.script import load

from .conftest import REPO, CliResult, write

Cli = Callable[..., CliResult]
BUILTIN_IDS = sorted(p.stem for p in (REPO / "scripts").glob("*.yaml"))


def test_list_json_has_every_builtin(cli: Cli) -> None:
    result = cli("list", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert [r["id"] for r in rows] == BUILTIN_IDS
    for row in rows:
        assert set(row) == {"id", "title", "summary", "tags", "duration_s", "path", "source", "overrides_builtin"}
        assert row["duration_s"] > 30
        assert Path(row["path"]).is_file()


def test_list_text_and_tag_filter(cli: Cli) -> None:
    text = cli("list").out.splitlines()
    assert len(text) == len(BUILTIN_IDS)
    tagged = json.loads(cli("list", "--json", "--tag", "apart").out)
    assert "high-low" in [r["id"] for r in tagged]
    assert all("apart" in r["tags"] for r in tagged)
    assert cli("list", "--tag", "no-such-tag").out == ""


def test_show_json_expands_repeats_and_names(cli: Cli) -> None:
    result = cli("show", "active-listening-relay", "--json", "--a", "Ann", "--b", "Bo", "--set", "share=90s")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert plan["id"] == "active-listening-relay"
    steps = plan["steps"]
    assert [s["index"] for s in steps] == list(range(len(steps)))
    listens = [s for s in steps if s["kind"] == "listen"]
    assert {s["who"] for s in listens} == {"Ann", "Bo"}
    assert any(s["duration_s"] == 90 for s in listens)
    assert not any("{" in s.get("text", "") for s in steps)
    for before, after in itertools.pairwise(steps):
        assert after["start_s"] == pytest.approx(before["start_s"] + before["duration_s"], abs=1e-3)
    assert plan["duration_s"] == pytest.approx(steps[-1]["start_s"] + steps[-1]["duration_s"], abs=1e-3)


def test_show_text(cli: Cli) -> None:
    result = cli("show", "timeout-breathing")
    assert result.code == 0
    assert "breathe" in result.out


def test_unknown_id_suggests_and_exits_2(cli: Cli) -> None:
    result = cli("show", "active-listening-rely")
    assert result.code == 2
    assert result.err.strip() == (
        "voice-guide: error: no exercise called 'active-listening-rely' "
        "(did you mean 'active-listening-relay'? run 'voice-guide list' to see them all)"
    )


def test_check_builtins_all_ok(cli: Cli) -> None:
    paths = [str(p) for p in sorted((REPO / "scripts").glob("*.yaml"))]
    result = cli("check", *paths)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == len(paths)
    assert all(line.startswith("ok ") and " steps, " in line for line in lines)


def test_check_reports_each_bad_file_and_exits_2(cli: Cli, tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", "title: T\nsummary: S\nsteps:\n  - say: hi\n")
    bad = write(tmp_path, "bad.yaml", "title: T\nsummary: S\nsteps:\n  - chime: bong\n")
    result = cli("check", str(good), str(bad))
    assert result.code == 2
    assert result.out.startswith(f"ok {good}: 1 step,")
    assert result.err.strip() == (
        f"voice-guide: error: {bad}:4: unknown cue 'bong' (expected one of start, swap, time-up, remind, end, soft)"
    )


def test_bad_set_value_is_one_line_exit_2(cli: Cli) -> None:
    result = cli("show", "active-listening-relay", "--set", "share=lots")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "--set share=lots: 'lots' is not a duration" in result.err


def test_unknown_option_is_one_line_exit_2(cli: Cli) -> None:
    result = cli("show", "timeout-breathing", "--bogus")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "--bogus" in result.err


def test_new_writes_a_valid_starter_in_the_user_folder(cli: Cli, home: Path) -> None:
    result = cli("new", "our-check-in")
    assert result.code == 0, result.err
    path = home / "scripts" / "our-check-in.yaml"
    assert result.out.strip() == f"wrote {path}"
    assert len(load(path).steps) > 3
    # The user's script is now an id like any other.
    assert cli("show", "our-check-in", "--json").code == 0
    assert "our-check-in" in [r["id"] for r in json.loads(cli("list", "--json").out)]
    again = cli("new", "our-check-in")
    assert again.code == 2 and "already exists" in again.err


def test_new_rejects_a_bad_name(cli: Cli) -> None:
    result = cli("new", "Bad Name!")
    assert result.code == 2 and "bad script name" in result.err


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOICE_GUIDE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "voice_guide", *args], capture_output=True, text=True, env=env, check=False, timeout=60
    )


def test_real_process_errors_have_no_traceback(tmp_path: Path, home: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "title: T\nsummary: S\nsteps:\n  - say: [oops\n")
    proc = _run("show", str(bad), home=home)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"voice-guide: error: {bad}:5: YAML syntax error")
    assert proc.stderr.count("\n") == 1


def test_debug_shows_the_traceback(tmp_path: Path, home: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "title: T\nsummary: S\nsteps:\n  - say: [oops\n")
    proc = _run("--debug", "show", str(bad), home=home)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_help_on_every_command(home: Path) -> None:
    for command in ("list", "show", "check", "new"):
        proc = _run(command, "--help", home=home)
        assert proc.returncode == 0 and "Usage" in proc.stdout, command


def test_a_command_imports_only_the_module_that_registers_it() -> None:
    code = (
        "import importlib, sys, typer\n"
        "from voice_guide.cli import COMMAND_MODULES, MODULE_OF_COMMAND, register_commands\n"
        "from voice_guide.cli.app import app\n"
        "register_commands(['timeout', '--no-mic'])\n"
        "assert 'voice_guide.apart.link' not in sys.modules and 'voice_guide.cli.catalog' not in sys.modules\n"
        "names = set(typer.main.get_command(app).commands)\n"
        "assert names == {'run', 'timeout'}, names\n"
        "seen = dict.fromkeys(names, 'play')\n"
        "for module in COMMAND_MODULES:\n"
        "    importlib.import_module(f'voice_guide.cli.{module}')\n"
        "    now = set(typer.main.get_command(app).commands)\n"
        "    seen.update({name: module for name in now - names})\n"
        "    names = now\n"
        "assert seen == MODULE_OF_COMMAND, seen\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_timeout_parses_its_options_without_pydantic_or_rich() -> None:
    # Both cost `timeout` time before its first sound; the options left out need neither.
    code = (
        "import sys, typer\n"
        "from voice_guide.cli import register_commands\n"
        "from voice_guide.cli.app import app\n"
        "register_commands(['timeout'])\n"
        "group = typer.main.get_command(app)\n"
        "root = group.make_context('voice-guide', ['timeout'])\n"
        "def parse(*args):\n"
        "    return group.commands['timeout'].make_context('timeout', list(args), parent=root).params\n"
        "p = parse('--no-mic')\n"
        "assert p['no_mic'] is True and p['a'] is None and p['rate'] is None and p['sets'] == (), p\n"
        "loaded = {m.split('.')[0] for m in sys.modules} & {'pydantic', 'rich'}\n"
        "assert not loaded, loaded\n"
        "p = parse('--no-mic', '--a', 'Sam', '--rate', '150')\n"  # given values take Typer's own path
        "assert p['a'] == 'Sam' and p['rate'] == 150 and 'pydantic' in sys.modules, p\n"
        "assert parse()['a'] is None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_an_option_given_is_still_checked_by_typer(cli: Cli) -> None:
    result = cli("timeout", "--no-mic", "--rate", "20", "--out", "x.wav")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "Invalid value for '--rate'" in result.err and "greater than or equal to 60" in result.err
    result = cli("timeout", "--no-mic", "--rate", "abc")
    assert result.code == 2 and "Invalid value for '--rate'" in result.err
