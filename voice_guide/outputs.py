"""Every file a command writes: checked before any work starts, and replaced whole at the end.

`check_outputs` runs before anything plays or renders, so a bad `--out`, `--log`,
`--cues`, `--record` or `-o` costs the couple nothing: its folder must exist and take
a new file, its extension must be one we write, and it may not be a folder or the same
file as anything the command reads (compared by resolved path and by inode, so a
symlink or a hard link to the script is caught too).

`replacing` is the one atomic write: the data goes to a temp file beside the target
and is renamed over it only when complete, so an interrupted or killed command leaves
the old file whole.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from voice_guide.errors import AudioFileError, UsageError

# File modes: outputs follow the umask like any file; a microphone recording is as
# private as the journal.
PUBLIC_MODE = 0o666
PRIVATE_MODE = 0o600


@dataclass(frozen=True)
class Output:
    """One output a command was asked to write: the option that named it, the path, the extensions we write."""

    option: str
    path: Path
    extensions: tuple[str, ...]


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def _listed(extensions: Sequence[str]) -> str:
    dotted = [f".{e}" for e in extensions]
    return dotted[0] if len(dotted) == 1 else ", ".join(dotted[:-1]) + " or " + dotted[-1]


def check_output(out: Output, inputs: Sequence[Path] = ()) -> None:
    """Refuse `out` with a UsageError unless a file could be written there without harming an input."""
    path, shown = out.path, f"{out.option} {out.path}"
    if path.is_dir():
        example = path / f"session.{out.extensions[0]}"
        raise UsageError(f"{shown}: is a folder", f"give a file name in it, e.g. {example}")
    ext = path.suffix.lower().lstrip(".")
    if ext not in out.extensions:
        what = f"unknown extension '.{ext}'" if ext else "no extension"
        raise UsageError(f"{shown}: {what}", f"name a {_listed(out.extensions)} file")
    if path.exists() and not path.is_file():
        raise UsageError(f"{shown}: is not a regular file", "give the path of a file to write")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{shown}: folder {folder} does not exist", "create it or pick another path")
    for source in inputs:
        if _same_file(path, source):
            raise UsageError(f"{shown}: is the command's own input {source}", "write to another file")
    _probe(folder, shown)


def _probe(folder: Path, shown: str) -> None:
    # Trying is the only true test: permissions, read-only mounts, ACLs and root all differ.
    probe = folder / f".voice-guide-probe.{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except OSError as exc:
        raise UsageError(
            f"{shown}: cannot write in {folder} ({exc.strerror or exc})", "pick a folder you can write to"
        ) from None
    os.close(fd)
    probe.unlink(missing_ok=True)


def check_outputs(outputs: Sequence[Output], inputs: Sequence[Path] = ()) -> None:
    """Check every output against the inputs and against each other (two options, one file)."""
    for n, out in enumerate(outputs):
        check_output(out, inputs)
        for earlier in outputs[:n]:
            if _same_file(out.path, earlier.path):
                raise UsageError(
                    f"{out.option} and {earlier.option} name one file, {out.path}", "give each its own file"
                )


def write_failed(path: Path, exc: OSError) -> AudioFileError:
    """Return the one-line error for a write the disk refused (full, read-only, gone)."""
    error = AudioFileError(f"cannot write {path}: {exc.strerror or exc}", "check the folder and free space")
    error.exit_code = 1  # a fault of the machine, not of what the user typed
    return error


def temp_beside(path: Path, tag: str = "part") -> Path:
    """Return a temp name in `path`'s folder (same file system, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{tag}")


def open_new(path: Path, mode: int = PUBLIC_MODE) -> BinaryIO:
    """Create `path` for writing with `mode` (less the umask); it must not exist yet."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    return os.fdopen(fd, "wb")


@contextlib.contextmanager
def replacing(path: Path, mode: int = PUBLIC_MODE) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it over `path` if the block succeeds, delete it if not."""
    tmp = temp_beside(path)
    try:
        with open_new(tmp, mode):
            pass
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left when the block failed part way


def write_text(path: Path, text: str, mode: int = PUBLIC_MODE) -> None:
    """Write UTF-8 text to `path` atomically; raise AudioFileError (exit 1) when the disk refuses."""
    try:
        with replacing(path, mode) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise write_failed(path, exc) from None


class StreamedFile:
    """A file written as a command goes (a live session's output or recording), renamed into place at the end.

    `commit` renames the complete temp file over the target; `discard` deletes it, so
    the old file stays whole.
    """

    def __init__(self, path: Path, mode: int = PUBLIC_MODE) -> None:
        self.path = path
        self.tmp = temp_beside(path)
        try:
            self.file: BinaryIO = open_new(self.tmp, mode)
        except OSError as exc:
            raise write_failed(path, exc) from None

    def commit(self) -> None:
        """Close and rename over the target."""
        try:
            self.file.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise write_failed(self.path, exc) from None

    def discard(self) -> None:
        """Close and delete the temp file; the target is untouched."""
        with contextlib.suppress(OSError):
            self.file.close()
        self.tmp.unlink(missing_ok=True)
