"""A plain (non-editable) install still finds the built-in exercises and cue sounds."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from .conftest import REPO


def test_wheel_install_ships_scripts_and_assets(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(wheels.glob("voice_guide-*.whl"))

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=True)
    py = fresh / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300
    )
    # The fresh venv borrows the dependencies from the test's environment, but
    # only through a .pth file, which Python adds after its own site-packages,
    # so voice_guide itself comes from the wheel.
    fresh_site = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (fresh_site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    assert site  # the outer site-packages is what the .pth points at

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["VOICE_GUIDE_HOME"] = str(tmp_path / "home")
    out = subprocess.run(
        [str(fresh / "bin" / "voice-guide"), "list", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    rows = json.loads(out)
    assert len(rows) == len(list((REPO / "scripts").glob("*.yaml")))
    assert all(Path(r["path"]).is_relative_to(fresh_site) for r in rows)

    assets = subprocess.run(
        [
            str(py),
            "-c",
            "from voice_guide.paths import audio_assets_dir as d; print(d(), len(list(d().glob('*.wav'))))",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert Path(assets[0]).is_relative_to(fresh_site)
    assert int(assets[1]) == len(list((REPO / "audio_assets").glob("*.wav"))) > 0
