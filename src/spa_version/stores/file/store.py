"""``file://DIR``: the embedded default store. One host, many workers, no Redis.

Each app has one JSON document, ``DIR/<app>.json``::

    {"epoch": 7, "history": [{...newest release...}, {...}, ...]}

Bumps hold an exclusive ``flock`` on the directory ``DIR`` itself for the
read-modify-write (no lock file that could be deleted under its holder) and publish the
result with temp file + ``os.replace``, so a reader sees the old document or the new
one, never half of one. Readers do not ``stat()`` per request: the
listener polls the file's identity (inode, size, mtime) a few times a second in the
background, so a bump is seen within ``poll_interval`` (default 0.25 s).

The fleet's heartbeat records live beside the document, in ``DIR/<app>.fleet/``
(`spa_version.stores.file.fleet`). The modes of all of them, set whatever the umask so
that the deploy user and the app's user may differ, are in `spa_version.stores.file.modes`.

``file://.spa-version`` is relative to the working directory; ``file:///var/lib/x``
is absolute. The path is percent-decoded (``file:///srv/my%20app`` is ``/srv/my app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import fnmatch
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any, NoReturn

from ...release import InvalidRelease, Release, is_epoch
from ..base import (
    HISTORY_LIMIT,
    BumpResult,
    Fleet,
    MinCompatible,
    OnRelease,
    Store,
    StoreError,
    StoreUnavailable,
    check_min_compatible,
    next_epoch,
)
from .fleet import FileFleet
from .modes import DIRECTORY_MODE, DOCUMENT_MODE, make_directory, sharing_problem

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

    def fleet(self) -> Fleet:
        """The fleet's heartbeat records, in ``DIR/<app>.fleet/`` (`spa_version.stores.file.fleet`)."""
        return FileFleet(self.directory, self.app)

    @property
    def location(self) -> str:
        """The store's directory as an absolute path (a relative ``file://`` URL is
        relative to the working directory of the process that opened it)."""
        return str(self.directory.absolute())

    def sharing_problem(self) -> str | None:
        """Why processes of another user cannot follow this store (its modes), or None
        (`spa_version.stores.file.modes.sharing_problem`)."""
        return sharing_problem(self.directory, self.path, FileFleet(self.directory, self.app).directory)

    # -- reading ---------------------------------------------------------------

    def _read_document(self, directory_fd: int | None = None) -> dict[str, Any] | None:
        """The document, or None if there is none yet. With *directory_fd*, the file is
        opened in that (locked) directory, wherever its path now leads."""
        try:
            fd = os.open(
                self.path if directory_fd is None else self.path.name, os.O_RDONLY, dir_fd=directory_fd
            )
            with os.fdopen(fd, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise InvalidRelease(f"{self.path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise InvalidRelease(f"{self.path} is nested too deeply to be a spa-version document") from None
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

    def _lock(self) -> int:
        """Create the store's directory if need be, open it and ``flock`` it; return its descriptor.

        The lock is on the directory itself, not on a file in it: a lock file can be
        deleted while a bump holds its lock (a cleanup job, an operator tidying the
        directory), and a second bump would then lock a fresh file and run beside the
        holder. Tidying a directory does not remove it, and everything done under the
        lock goes through this descriptor (``openat``, ``renameat``), so even a directory
        renamed meanwhile gets the holder's write where it locked, never in a directory
        a newcomer locked. After locking, check that the path still names the locked
        directory (one renamed or replaced while we waited), and start over if not.
        docs/protocol.md, "The file store layout".
        """
        while True:
            make_directory(self.directory, DIRECTORY_MODE)
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                held = os.fstat(fd)
                try:
                    named = os.stat(self.directory)
                except FileNotFoundError:
                    named = None
            except BaseException:
                os.close(fd)
                raise
            if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
                return fd
            os.close(fd)

    def _remove_orphans(self, directory_fd: int) -> None:
        """Remove temp files of this app left by a bump that was killed mid-write.

        Called with the lock held: no other bump of this app is writing one now.
        """
        with os.scandir(directory_fd) as entries:
            leftovers = [e.name for e in entries if fnmatch.fnmatchcase(e.name, f".{self.app}.*.tmp")]
        for name in leftovers:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=directory_fd)

    def _read_counter(self, doc: dict[str, Any]) -> int:
        counter = doc.get("epoch", 0)
        if counter != 0 and not is_epoch(counter):
            raise StoreError(
                f"{self.path} holds the epoch counter {str(counter)[:40]!r}, not an epoch; "
                "fix or remove it before bumping (nothing was changed)"
            )
        return int(counter)

    def _bump_locked(self, fields: dict[str, object], min_compatible: MinCompatible, floor: int) -> Release:
        try:
            directory_fd = self._lock()
        except OSError as exc:
            raise StoreUnavailable(f"cannot write to {self.directory}: {exc.strerror}") from None
        try:
            try:
                self._remove_orphans(directory_fd)
                # Where the app's processes report, writable by them (stores/file/modes.py).
                FileFleet(self.directory, self.app).make_directory()
            except OSError as exc:
                raise StoreUnavailable(f"cannot write to {self.directory}: {exc.strerror}") from None
            try:
                doc = self._read_document(directory_fd)
            except InvalidRelease:
                # A corrupt document must not be papered over: refuse, and say where.
                raise StoreError(f"{self.path} is corrupt; fix or remove it before bumping") from None
            doc = doc or {"epoch": 0, "history": []}
            epoch = next_epoch(self._read_counter(doc), floor)
            release = Release.from_dict(
                {**fields, "epoch": epoch, "min_compatible": check_min_compatible(min_compatible, epoch)}
            )
            history = [release.to_dict(), *doc["history"][: HISTORY_LIMIT - 1]]
            try:
                self._write_document(directory_fd, {"epoch": epoch, "history": history})
            except OSError as exc:
                raise StoreUnavailable(f"cannot write {self.path}: {exc.strerror or exc}") from None
            return release
        finally:
            os.close(directory_fd)  # closing drops the flock

    def _write_document(self, directory_fd: int, doc: dict[str, Any]) -> None:
        """Publish *doc* in the locked directory: temp file, fsync, ``os.replace``.

        A reader sees the old document or the new one, never half of one. The file gets
        `DOCUMENT_MODE` whatever the umask (stores/file/modes.py).
        """
        tmp = f".{self.app}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DOCUMENT_MODE, dir_fd=directory_fd)
        try:
            with os.fdopen(fd, "w") as f:
                os.fchmod(f.fileno(), DOCUMENT_MODE)
                json.dump(doc, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path.name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=directory_fd)
            raise
        # The rename itself to disk. The bump is done either way: a file system that
        # cannot fsync a directory must not turn it into a failure after the write.
        with contextlib.suppress(OSError):
            os.fsync(directory_fd)

    async def _bump(self, fields: dict[str, object], min_compatible: MinCompatible, floor: int) -> BumpResult:
        release = await asyncio.to_thread(self._bump_locked, fields, min_compatible, floor)
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
