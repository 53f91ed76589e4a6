"""Find exercise scripts: built-in ids, the user's own ids, or paths."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from voice_guide.errors import UsageError
from voice_guide.paths import UserDirs, builtin_scripts_dir
from voice_guide.script import Script, load


@dataclass(frozen=True)
class Library:
    """The built-in folder and the user's folder; user scripts shadow built-ins of the same id."""

    builtin: Path
    user: Path

    @classmethod
    def default(cls, dirs: UserDirs) -> Library:
        """Return the library for the given user folders."""
        return cls(builtin=builtin_scripts_dir(), user=dirs.scripts)

    def ids(self) -> dict[str, Path]:
        """Map every known script id to its file, sorted by id."""
        found: dict[str, Path] = {}
        for folder in (self.builtin, self.user):
            if folder.is_dir():
                for file in folder.glob("*.yaml"):
                    found[file.stem] = file
        return dict(sorted(found.items()))

    def resolve(self, name: str) -> Path:
        """Return the file for an id or a path; raise UsageError with a suggestion otherwise."""
        known = self.ids()
        if name in known:
            return known[name]
        path = Path(name).expanduser()
        if path.suffix in (".yaml", ".yml") or "/" in name or path.is_file():
            return path
        close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UsageError(f"no exercise called '{name}'", f"{hint}run 'voice-guide list' to see them all")

    def load(self, name: str) -> Script:
        """Resolve `name` and load the script."""
        return load(self.resolve(name))
