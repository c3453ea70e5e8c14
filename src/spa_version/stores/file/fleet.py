"""The fleet records of a file store (`spa_version.stores.file`): one JSON file a process.

Layout, for ``file://DIR`` and app APP::

    DIR/APP.fleet/<host>-<pid>.json     the record, published with temp file + os.replace

The directory is sticky and writable by all (mode 1777, like /tmp), so the app's
processes may run as another user than the deploy tools (`spa_version.stores.file.modes`).

Files do not expire by themselves: a reader treats a record whose ``updated_at`` is more
than its ``ttl`` ago as gone (the process died without removing it) and deletes it.
docs/deploy-haproxy.md, "Fleet status", describes the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

from ...fleet_record import MAX_RECORD_BYTES, BadRecord, FleetRecord
from ..base import Fleet, StoreUnavailable
from .modes import FLEET_DIRECTORY_MODE, RECORD_MODE, make_directory

__all__ = ["FileFleet"]

#: Characters kept in a record's file name; anything else (never in a sane host name)
#: becomes "_", so a name can never leave the fleet directory.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class FileFleet(Fleet):
    """Records as JSON files in ``DIR/<app>.fleet/`` (see the module docstring).

    File I/O runs in a worker thread, so a slow disk never blocks the event loop.
    """

    def __init__(self, directory: Path, app: str) -> None:
        self.directory = Path(directory) / f"{app}.fleet"

    def _path(self, host: str, pid: int) -> Path:
        return self.directory / f"{_UNSAFE.sub('_', host)}-{pid}.json"

    def make_directory(self) -> None:
        """Create ``DIR/<app>.fleet/`` (and ``DIR``) with the modes of
        `spa_version.stores.file.modes`, whatever the umask: every user may add a record,
        only its owner replaces or removes it. An existing directory keeps its mode."""
        make_directory(self.directory, FLEET_DIRECTORY_MODE)

    def _write(self, path: Path, payload: str) -> None:
        self.make_directory()
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(payload)
            os.chmod(tmp, RECORD_MODE)
            # Atomic: a reader sees the previous record or this one, never half of one.
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def write(self, host: str, pid: int, payload: str, ttl: float) -> None:
        # ttl is in the record itself (the reader checks updated_at + ttl).
        await asyncio.to_thread(self._write, self._path(host, pid), payload)

    async def remove(self, host: str, pid: int) -> None:
        path = self._path(host, pid)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, path)

    def _read(self) -> list[tuple[str, str | bytes]]:
        try:
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        except OSError as exc:  # e.g. a fleet directory of another user, mode 0700
            raise StoreUnavailable(f"cannot read {self.directory}: {exc.strerror}") from None
        now = time.time()
        out: list[tuple[str, str | bytes]] = []
        for entry in entries:
            if entry.name.endswith(".tmp"):
                # A writer that died between mkstemp and os.replace: clean up after a while.
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > 60:
                        os.unlink(entry.path)
                continue
            if not entry.name.endswith(".json"):
                continue
            try:
                # One byte past the bound is enough for the parser to refuse a huge file.
                with open(entry.path, "rb") as f:
                    raw = f.read(MAX_RECORD_BYTES + 1)
            except FileNotFoundError:
                continue  # removed by its process (or another reader) just now
            except OSError:
                # Not ours to read (any user may write here: a file of mode 0600): an empty
                # record, which the reader reports as bad like any that does not parse.
                raw = b""
            if _expired(raw, now):
                # Another user's record, in the sticky directory: only its owner may remove it.
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                continue
            out.append((entry.name[: -len(".json")], raw))
        return out

    async def read(self) -> list[tuple[str, str | bytes]]:
        return await asyncio.to_thread(self._read)


def _expired(raw: bytes, now: float) -> bool:
    """Whether a file record is past its TTL (as Redis would have expired the key).

    A record that does not validate (`FleetRecord.parse`) is left alone here; the
    caller (`spa_version.deploy.fleet.read_fleet`) reports it as bad.
    """
    try:
        return FleetRecord.parse(raw).expired(now)
    except BadRecord:
        return False
