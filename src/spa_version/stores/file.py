"""``file://DIR``: the embedded default store. One host, many workers, no Redis.

Each app has one JSON document, ``DIR/<app>.json``::

    {"epoch": 7, "history": [{...newest release...}, {...}, ...]}

Bumps hold an exclusive ``flock`` on ``DIR/<app>.lock`` for the read-modify-write and
publish the result with temp file + ``os.replace``, so a reader sees the old document
or the new one, never half of one. Readers do not ``stat()`` per request: the
listener polls the file's identity (inode, size, mtime) a few times a second in the
background, so a bump is seen within ``poll_interval`` (default 0.25 s).

``file://.spa-version`` is relative to the working directory; ``file:///var/lib/x``
is absolute.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, NoReturn

from ..release import InvalidRelease, Release
from .base import (
    HISTORY_LIMIT,
    BumpResult,
    MinCompatible,
    OnRelease,
    Store,
    StoreError,
    StoreUnavailable,
    check_min_compatible,
)

logger = logging.getLogger("spa_version")

DEFAULT_POLL_INTERVAL = 0.25


class FileStore(Store):
    """Releases in a JSON file per app, shared by every process on the host."""

    def __init__(
        self, directory: str | os.PathLike[str], *, app: str, poll_interval: float = DEFAULT_POLL_INTERVAL
    ) -> None:
        self.app = app
        self.directory = Path(directory)
        self.path = self.directory / f"{app}.json"
        self.display_url = f"file://{directory}"
        self.poll_interval = poll_interval

    # -- reading ---------------------------------------------------------------

    def _read_document(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise InvalidRelease(f"{self.path} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("history"), list):
            raise InvalidRelease(f"{self.path} is not a spa-version document")
        return doc

    def _read_current(self) -> Release | None:
        doc = self._read_document()
        if doc is None or not doc["history"]:
            return None
        return Release.from_dict(doc["history"][0])

    async def get(self) -> Release | None:
        return self._read_current()

    async def history(self, limit: int = HISTORY_LIMIT) -> list[Release]:
        doc = self._read_document()
        if doc is None:
            return []
        releases = []
        for item in doc["history"][:limit]:
            try:
                releases.append(Release.from_dict(item))
            except InvalidRelease as exc:
                logger.warning("spa-version: skipping a bad history record in %s: %s", self.path, exc)
        return releases

    # -- writing ---------------------------------------------------------------

    def _bump_locked(self, fields: dict[str, object], min_compatible: MinCompatible) -> Release:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(self.directory / f"{self.app}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write to {self.directory}: {exc.strerror}") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                doc = self._read_document()
            except InvalidRelease:
                # A corrupt document must not block deploys forever; start over from a
                # fresh epoch counter is worse (clients would ignore it), so refuse.
                raise StoreError(f"{self.path} is corrupt; fix or remove it before bumping") from None
            doc = doc or {"epoch": 0, "history": []}
            epoch = int(doc.get("epoch", 0)) + 1
            release = Release.from_dict(
                {**fields, "epoch": epoch, "min_compatible": check_min_compatible(min_compatible, epoch)}
            )
            history = [release.to_dict(), *doc["history"][: HISTORY_LIMIT - 1]]
            self._write_atomically({"epoch": epoch, "history": history})
            return release
        finally:
            os.close(lock_fd)  # closing drops the flock

    def _write_atomically(self, doc: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.app}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            with _suppress_os_error():
                os.unlink(tmp)
            raise

    async def _bump(self, fields: dict[str, object], min_compatible: MinCompatible) -> BumpResult:
        release = await asyncio.to_thread(self._bump_locked, fields, min_compatible)
        # Readers poll the file; nobody is told directly.
        return BumpResult(release, None)

    # -- following -------------------------------------------------------------

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    async def listen(self, on_release: OnRelease, resync_interval: float) -> NoReturn:
        seen: tuple[int, int, int] | None | bool = False  # False: nothing read yet
        since_resync = 0.0
        while True:
            identity = self._identity()
            resync = since_resync >= resync_interval
            if identity != seen or resync:
                seen = identity
                since_resync = 0.0
                try:
                    current = self._read_current()
                except InvalidRelease as exc:
                    logger.warning("spa-version: ignoring a bad record in %s: %s", self.path, exc)
                else:
                    on_release(current, True)
            await asyncio.sleep(self.poll_interval)
            since_resync += self.poll_interval


class _suppress_os_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return isinstance(exc[1], OSError)
