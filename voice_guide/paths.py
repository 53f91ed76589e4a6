"""Where voice-guide keeps things: the built-in data, the user's scripts, cache and journal.

VOICE_GUIDE_HOME, when set, puts everything of the user's under one folder
(tests use it so they never touch a real home).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "voice-guide"
_PACKAGE = Path(__file__).resolve().parent


def _data_folder(name: str) -> Path:
    # Installed wheels carry the folder inside the package; a source checkout
    # (editable install) keeps it at the top of the repo.
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def builtin_scripts_dir() -> Path:
    """Return the folder of the built-in exercise library."""
    return _data_folder("scripts")


def audio_assets_dir() -> Path:
    """Return the folder of the shipped cue sounds."""
    return _data_folder("audio_assets")


@dataclass(frozen=True)
class UserDirs:
    """The user's folders; nothing is created until something is written."""

    scripts: Path
    cache: Path
    data: Path

    @property
    def config_file(self) -> Path:
        """Return the saved preferences file (TOML), beside the scripts folder in the config folder."""
        return self.scripts.parent / "config.toml"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> UserDirs:
        """Resolve the folders from VOICE_GUIDE_HOME or the platform's conventions."""
        home = environ.get("VOICE_GUIDE_HOME")
        if home:
            root = Path(home).expanduser()
            return cls(scripts=root / "scripts", cache=root / "cache", data=root / "data")
        return cls(
            scripts=Path(platformdirs.user_config_dir(APP)) / "scripts",
            cache=Path(platformdirs.user_cache_dir(APP)),
            data=Path(platformdirs.user_data_dir(APP)),
        )
