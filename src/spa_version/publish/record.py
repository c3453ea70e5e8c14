"""The record of which files each published release owns, kept beside the files.

One JSON file per release in ``WEB_DIR/.spa-version-assets/releases/``::

    {"release": "a1b2c3d4e5f6", "sequence": 4, "published_at": 1733460000.0,
     "files": {"assets/index-4FJ2K1.js": {"sha256": "…", "size": 1234}, "index.html": {…}}}

*sequence* orders the releases (the highest is the newest publish); *published_at* is
Unix time in seconds. The record lives in the web directory, not in the store: it has to
describe exactly the files on this disk (each host's web directory has its own), be
changed under the same lock as they are, and survive a store that is reset or replaced.
It is a dot directory, which static servers are told not to serve (docs/deploy-haproxy.md,
"Publishing the assets"); it holds only file names that are public anyway.

A record is read as untrusted input: `read_records` validates every field, and every
path must stay inside the web directory, so a damaged or hostile record can never make
the publisher delete a file outside it (`RecordError` instead, and nothing changes).
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..release import InvalidRelease, validate_label
from .files import TEMP_PREFIX, fsync_dir, safe_path

__all__ = [
    "RECORD_DIR",
    "FileEntry",
    "RecordError",
    "ReleaseRecord",
    "read_records",
    "releases_dir",
    "remove_record",
    "write_record",
]

#: The record directory's name inside the web directory.
RECORD_DIR = ".spa-version-assets"
_RELEASES = "releases"
_MAX_RECORD_BYTES = 64 << 20


class RecordError(Exception):
    """A release record in the web directory is not valid (nothing was changed)."""


@dataclass(frozen=True)
class FileEntry:
    """One file a release owns: its SHA-256 (hex) and size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class ReleaseRecord:
    """What one release published: *files* maps each path (relative to the web
    directory, POSIX) to its `FileEntry`."""

    release: str
    sequence: int
    published_at: float
    files: dict[str, FileEntry]

    def to_json(self) -> str:
        files = {path: {"sha256": e.sha256, "size": e.size} for path, e in sorted(self.files.items())}
        record = {"release": self.release, "sequence": self.sequence, "published_at": self.published_at}
        return json.dumps({**record, "files": files}, indent=1)


def releases_dir(web_dir: Path) -> Path:
    return web_dir / RECORD_DIR / _RELEASES


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _parse(data: Any) -> ReleaseRecord:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    release = validate_label(data.get("release", ""))
    sequence, published_at, files = data.get("sequence"), data.get("published_at"), data.get("files")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or not 0 <= sequence < 2**53:
        raise ValueError(f"bad sequence {sequence!r}")
    if not isinstance(published_at, (int, float)) or isinstance(published_at, bool):
        raise ValueError(f"bad published_at {published_at!r}")
    if not math.isfinite(published_at) or published_at < 0:
        raise ValueError(f"bad published_at {published_at!r}")
    if not isinstance(files, dict):
        raise ValueError("files is not an object")
    entries: dict[str, FileEntry] = {}
    for path, entry in files.items():
        safe_path(path, reserved=RECORD_DIR)
        if not isinstance(entry, dict) or not _is_sha256(entry.get("sha256")):
            raise ValueError(f"bad entry for {path!r}")
        size = entry.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"bad size for {path!r}")
        entries[path] = FileEntry(entry["sha256"], size)
    return ReleaseRecord(release, sequence, float(published_at), entries)


def read_records(web_dir: Path) -> list[ReleaseRecord]:
    """Every release record of *web_dir*, oldest first (by sequence); none if the
    directory has no record yet. `RecordError` names the first record that is not valid."""
    directory = releases_dir(web_dir)
    if not directory.is_dir():
        return []
    records: list[ReleaseRecord] = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(TEMP_PREFIX):
            continue  # a killed run's leftover, removed under the lock
        try:
            if path.stat().st_size > _MAX_RECORD_BYTES:
                raise ValueError("too large")
            record = _parse(json.loads(path.read_bytes()))
            if path.name != f"{record.release}.json":
                raise ValueError(f"it names release {record.release!r}")
        except (ValueError, InvalidRelease, RecursionError, OSError) as exc:
            raise RecordError(
                f"the release record {path} is not valid ({exc}); fix or remove it (nothing was changed)"
            ) from None
        records.append(record)
    records.sort(key=lambda r: (r.sequence, r.published_at, r.release))
    return records


def write_record(web_dir: Path, record: ReleaseRecord) -> None:
    """Write (or replace) *record* atomically (temporary file, fsync, ``os.replace``),
    durable before this returns."""
    directory = releases_dir(web_dir)
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f"{TEMP_PREFIX}{secrets.token_hex(6)}.{record.release}.json"
    try:
        with open(temp, "x", encoding="utf-8") as file:
            file.write(record.to_json())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, directory / f"{record.release}.json")
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def remove_record(web_dir: Path, release: str) -> None:
    """Forget *release* (its files are gone, or owned by a release that is kept)."""
    directory = releases_dir(web_dir)
    (directory / f"{validate_label(release)}.json").unlink(missing_ok=True)
    fsync_dir(directory)
