"""Saved preferences: config set/get/unset/list, and every command reading them with flags on top."""

from __future__ import annotations

import json
import sqlite3
import stat
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import typer

from tests.conftest import CliResult
from voice_guide.cli import register_commands
from voice_guide.cli.app import app
from voice_guide.cli.settings import DEFAULT_WPM, SessionSettings, parse_value, read_prefs, resolve, write_prefs
from voice_guide.errors import UsageError

Cli = Callable[..., CliResult]


def test_set_get_unset_round_trip_through_a_toml_file(cli: Cli, home: Path) -> None:
    assert cli("config", "set", "a", "Ann").code == 0
    assert cli("config", "set", "rate", "170").code == 0
    assert cli("config", "set", "headphones", "yes").code == 0
    assert cli("config", "set", "mic_channels", "a=1, b=2").code == 0
    doc = tomllib.loads((home / "config.toml").read_text(encoding="utf-8"))
    assert doc == {"a": "Ann", "rate": 170, "headphones": True, "mic_channels": "a=1,b=2"}
    assert cli("config", "get", "a").out == "Ann\n"
    assert cli("config", "get", "b").out == "Partner B\n"
    assert cli("config", "unset", "rate").code == 0
    assert cli("config", "get", "rate").out == f"{DEFAULT_WPM}\n"
    assert "rate" not in tomllib.loads((home / "config.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("config", "set", "colour", "red"), "unknown config key 'colour'"),
        (("config", "set", "rate", "1000"), "config rate = '1000': expected a whole number from 60 to 400"),
        (("config", "set", "headphones", "maybe"), "expected true or false"),
        (("config", "set", "engine", "festival"), "expected one of piper, espeak"),
        (("config", "set", "mic_channels", "a=1,b=1"), "expected a=N,b=M"),
        (("config", "get", "colour"), "unknown config key"),
        (("config", "unset", "colour"), "unknown config key"),
    ],
)
def test_a_bad_key_or_value_is_one_line_and_exit_2(cli: Cli, args: tuple[str, ...], needle: str) -> None:
    result = cli(*args)
    assert result.code == 2
    assert needle in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_list_says_where_each_value_comes_from(cli: Cli) -> None:
    cli("config", "set", "a", "Ann")
    result = cli("config", "list", "--json", "--b", "Ben")
    keys = json.loads(result.out)["keys"]
    assert keys["a"] == {"value": "Ann", "from": "config file"}
    assert keys["b"] == {"value": "Ben", "from": "flag"}
    assert keys["rate"] == {"value": DEFAULT_WPM, "from": "default"}
    assert {"a", "b", "voice", "engine", "rate", "headphones", "input_device", "output_device", "mic_channels"} <= set(
        keys
    )
    text = cli("config", "list").out
    assert any(line.split() == ["a", "Ann", "config", "file"] for line in text.splitlines())


def test_a_broken_config_file_is_named_with_exit_2(cli: Cli, home: Path) -> None:
    (home / "config.toml").write_text('a = "Ann\n', encoding="utf-8")
    result = cli("show", "timeout-breathing")
    assert result.code == 2
    assert "config.toml: not valid TOML" in result.err
    (home / "config.toml").write_text("rate = 5\n", encoding="utf-8")
    bad = cli("show", "daily-check-in")
    assert bad.code == 2
    assert "config.toml: rate = 5: expected a whole number from 60 to 400" in bad.err


def test_writing_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "config.toml"
    write_prefs(path, {"a": 'Ann "the brave"', "rate": 160, "headphones": False})
    assert read_prefs(path) == {"a": 'Ann "the brave"', "rate": 160, "headphones": False}
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]
    assert stat.S_IMODE(path.stat().st_mode) & 0o022 == 0


def test_flags_win_over_saved_values_which_win_over_defaults() -> None:
    prefs: dict[str, str | int | bool] = {"a": "Ann", "rate": 170, "headphones": True}
    resolved = resolve(prefs, {"rate": 120, "headphones": False, "b": None})
    chosen = SessionSettings.from_resolved(resolved)
    assert (chosen.names.a, chosen.names.b, chosen.rate_wpm, chosen.headphones) == ("Ann", "Partner B", 120, False)
    assert resolved.origins["headphones"] == "flag" and resolved.origins["a"] == "config file"
    assert not chosen.default_names
    assert SessionSettings.from_resolved(resolve({}, {})).default_names


def test_engine_voice_and_rate_keys_flow_into_the_settings() -> None:
    assert parse_value("engine", "Espeak") == "espeak"
    chosen = SessionSettings.from_resolved(resolve({"engine": "piper", "voice": "en-gb", "rate": 140}, {}))
    assert (chosen.engine, chosen.voice, chosen.rate_wpm) == ("piper", "en-gb", 140)
    kept = chosen.journal_settings()
    assert (kept.engine, kept.voice, kept.rate_wpm) == ("piper", "en-gb", 140)
    # The journal's stored document keeps the form older rows have.
    assert kept.as_json() == {
        "voice": "en-gb",
        "rate_wpm": 140,
        "sample_rate": chosen.sample_rate_hz,
        "mic": True,
        "headphones": False,
        "set": [],
        "engine": "piper",
        "offline": False,
    }
    assert "offline" not in replace(chosen, apart="join").journal_settings().as_json()


def test_parse_value_names_the_key_and_the_expected_form() -> None:
    with pytest.raises(UsageError, match="expected a short line of text"):
        parse_value("a", "")


NAMED = 'title: N\nsummary: N\nsteps:\n  - say: "{b}, ask {a}."\n'


def test_show_uses_saved_names_and_flags_win(cli: Cli, tmp_path: Path) -> None:
    script = tmp_path / "named.yaml"
    script.write_text(NAMED, encoding="utf-8")
    cli("config", "set", "a", "Ann")
    cli("config", "set", "b", "Ben")
    assert "Ben, ask Ann." in cli("show", str(script)).out
    assert "Zoe, ask Ann." in cli("show", str(script), "--b", "Zoe").out


def test_run_journals_the_saved_settings_and_says_where_it_saved(cli: Cli, home: Path, tmp_path: Path) -> None:
    script = tmp_path / "named.yaml"
    script.write_text(NAMED, encoding="utf-8")
    cli("config", "set", "a", "Ann")
    cli("config", "set", "headphones", "true")
    result = cli("run", str(script), "--no-mic", "--out", str(tmp_path / "t.wav"))
    assert result.code == 0, result.err
    assert "saved as session 1" in result.err
    db = sqlite3.connect(home / "data" / "journal.sqlite3")
    name_a, settings = db.execute("SELECT name_a, settings FROM sessions").fetchone()
    assert name_a == "Ann"
    assert json.loads(settings)["headphones"] is True
    again = cli("run", str(script), "--no-mic", "--speakers", "--out", str(tmp_path / "t.wav"))
    assert again.code == 0
    settings = db.execute("SELECT settings FROM sessions WHERE id=2").fetchone()[0]
    assert json.loads(settings)["headphones"] is False


def test_timeout_takes_every_option_run_takes() -> None:
    register_commands()
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]

    def options(name: str) -> set[str]:
        return {opt for param in commands[name].params for opt in (*param.opts, *param.secondary_opts)}

    assert {"--headphones", "--output-device", "--input-device", "--voice", "--mic-channels"} <= options("run")
    assert options("timeout") == options("run") - {"script"}


def test_timeout_without_names_says_who_is_who_once(cli: Cli, tmp_path: Path) -> None:
    result = cli("timeout", "--no-mic", "--out", str(tmp_path / "t.wav"), "--log", str(tmp_path / "log.json"))
    assert result.code == 0, result.err
    assert result.err.count("nearer the speaker") == 1
    spoken = [e["text"] for e in json.loads((tmp_path / "log.json").read_text())["events"] if e["kind"] == "say"]
    assert sum("nearer the speaker" in text for text in spoken) == 1
    cli("config", "set", "a", "Ann")
    named = cli("timeout", "--no-mic", "--out", str(tmp_path / "t.wav"), "--log", str(tmp_path / "log.json"))
    assert "nearer the speaker" not in named.err
    spoken = [e["text"] for e in json.loads((tmp_path / "log.json").read_text())["events"] if e["kind"] == "say"]
    assert not any("nearer the speaker" in text for text in spoken)
    assert any("Ann" in text for text in spoken)
