"""The files of a build, and writing them into the web directory without a torn file.

`scan_build` reads a build directory into `BuildFile` s (path, SHA-256, size), refusing
what cannot be published before anything is written. `write_atomically` copies one file
the way a static server can never catch half-way: a temporary file in the target's own
directory, ``fsync``, then ``os.replace`` (an atomic rename on POSIX: a reader opens the
old file or the new one, never a mix). Temporary names start with `TEMP_PREFIX`, which no
build file may use, so a server never hands one out under a name a page references, and
`remove_leftovers` deletes what a killed run left behind.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = [
    "SHELL_SUFFIXES",
    "TEMP_PREFIX",
    "BuildFile",
    "InvalidBuild",
    "file_sha256",
    "fsync_dir",
    "remove_leftovers",
    "safe_path",
    "scan_build",
    "served_files",
    "write_atomically",
]

#: Every temporary file of a publish starts with this (a dot file: hidden by the usual
#: static-server rule, and never a name a build references).
TEMP_PREFIX = ".spa-version-tmp."
#: The HTML shells: written after every other file, so that no shell references a file
#: that is not there yet.
SHELL_SUFFIXES = (".html", ".htm")
_CHUNK = 1 << 20


class InvalidBuild(ValueError):
    """The build directory cannot be published as it is (nothing was written)."""


@dataclass(frozen=True)
class BuildFile:
    """One file of a build: *path* relative to the build root (POSIX, no ``..``),
    *source* on disk, its *sha256* (hex) and *size* in bytes."""

    path: str
    source: Path
    sha256: str
    size: int

    @property
    def is_shell(self) -> bool:
        """An HTML page (`SHELL_SUFFIXES`): published last."""
        return self.path.lower().endswith(SHELL_SUFFIXES)


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file at *path*, in hex (``OSError`` if it cannot be read)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_path(path: object, *, reserved: str) -> str:
    """*path* if it is a relative POSIX path that stays inside its root and names neither
    the top-level directory *reserved* nor a temporary file; else `ValueError`."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        raise ValueError(f"bad file path {path!r}")
    pure = PurePosixPath(path)
    if (
        pure.is_absolute()
        or pure.as_posix() != path
        or any(part in ("", ".", "..") for part in pure.parts)
        or pure.parts[0] == reserved
        or any(part.startswith(TEMP_PREFIX) for part in pure.parts)
    ):
        raise ValueError(f"bad file path {path!r}")
    return path


def _walk(root: Path, skip: str | None) -> Iterator[tuple[str, Path]]:
    """(relative POSIX path, absolute path) of every non-directory entry under *root*,
    sorted, not following directory symlinks; the top-level directory *skip* is left out."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root and skip is not None and skip in dirnames:
            dirnames.remove(skip)
        dirnames.sort()
        for name in sorted(filenames):
            full = here / name
            yield full.relative_to(root).as_posix(), full


def scan_build(root: Path, *, reserved: str) -> list[BuildFile]:
    """Every file of the build at *root*, sorted by path; `InvalidBuild` for a missing or
    empty build, a file that is not a regular file (a FIFO, a dangling link), or a name
    the publisher reserves (*reserved*, the record directory, and `TEMP_PREFIX`)."""
    if not root.is_dir():
        raise InvalidBuild(f"the build directory {root} does not exist or is not a directory")
    files: list[BuildFile] = []
    for rel, full in _walk(root, None):
        parts = PurePosixPath(rel).parts
        if parts[0] == reserved:
            raise InvalidBuild(f"the build contains {rel}: {reserved}/ is the publisher's own record")
        if any(part.startswith(TEMP_PREFIX) for part in parts):
            raise InvalidBuild(f"the build contains {rel}: names starting {TEMP_PREFIX} are reserved")
        try:
            safe_path(rel, reserved=reserved)  # what the record will accept when read back
        except ValueError:
            raise InvalidBuild(f"the build contains {rel!r}: a name with a backslash") from None
        try:
            info = full.stat()  # follows a symlink to a file: its content is published
        except OSError:
            raise InvalidBuild(f"the build file {rel} cannot be read (a dangling link?)") from None
        if not stat.S_ISREG(info.st_mode):
            raise InvalidBuild(f"the build file {rel} is not a regular file")
        files.append(BuildFile(rel, full, file_sha256(full), info.st_size))
    if not files:
        raise InvalidBuild(f"the build directory {root} has no files")
    return files


def served_files(web_dir: Path, *, reserved: str) -> Iterator[tuple[str, Path]]:
    """(relative path, absolute path) of every file in *web_dir* but the record directory
    *reserved* and temporary files."""
    for rel, full in _walk(web_dir, reserved):
        if not full.name.startswith(TEMP_PREFIX):
            yield rel, full


def write_atomically(source: Path, target: Path) -> None:
    """Copy *source* to *target* so that *target* is always either absent, the old file,
    or the whole new one: a temporary file beside it, fsync, ``os.replace``. The copy
    gets *source*'s permission bits.

    Missing parent directories are created. The temporary file is removed if the copy
    fails or is interrupted; after a ``kill -9`` it stays until `remove_leftovers`.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}.{target.name}")
    try:
        with open(source, "rb") as src, open(temp, "xb") as dst:
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
            # The source's permission bits, as rsync -a and cp -p keep them: the web
            # server's user reads what it could read in the build.
            os.fchmod(dst.fileno(), stat.S_IMODE(os.fstat(src.fileno()).st_mode))
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def fsync_dir(directory: Path) -> None:
    """Make the renames in *directory* durable (POSIX: fsync on the directory)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftovers(web_dir: Path, *, reserved: str, dry_run: bool = False) -> int:
    """Delete the temporary files a killed run left under *web_dir* (and in its record
    directory *reserved*); return how many there were. Call it with the lock held."""
    count = 0
    for _, full in _walk(web_dir, None):
        if full.name.startswith(TEMP_PREFIX):
            count += 1
            if not dry_run:
                full.unlink(missing_ok=True)
    return count
