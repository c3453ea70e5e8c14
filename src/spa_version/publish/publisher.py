"""``spa-version assets publish`` and ``assets list``: `publish` and `inventory`.

`publish` replaces ``rsync --delete`` in a deploy (docs/deploy-haproxy.md, "Publishing
the assets"). Under the web directory's lock (`spa_version.publish.lock`) it:

1. removes the temporary files a killed run left behind;
2. records the release's files (`spa_version.publish.record`) *before* writing any, so no
   file a page may reference is ever unowned;
3. writes every new or changed file, each atomically
   (`spa_version.publish.files.write_atomically`): new names first (the hashed assets),
   then files that replace one under the same name (``sw.js``, ``favicon.ico``), and the
   HTML shells last, so no page is ever served before the files it references;
4. deletes the files only releases outside `spa_version.publish.retention` own, then
   forgets those releases.

Publishing the same build again writes nothing. Everything that can be checked (the
build, the release name, the web directory's record) is checked before the first write.
"""

from __future__ import annotations

import hashlib
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..release import validate_label
from .files import (
    BuildFile,
    InvalidBuild,
    file_sha256,
    fsync_dir,
    remove_leftovers,
    scan_build,
    served_files,
    write_atomically,
)
from .lock import held
from .record import RECORD_DIR, FileEntry, ReleaseRecord, read_records, remove_record, write_record
from .retention import plan

__all__ = ["Inventory", "PublishReport", "ReleaseUsage", "content_release", "inventory", "publish"]


@dataclass(frozen=True)
class ReleaseUsage:
    """One recorded release: how many of its files are on disk and their size in bytes."""

    release: str
    sequence: int
    published_at: float
    files: int
    bytes: int

    def to_dict(self) -> dict[str, object]:
        return {
            "release": self.release,
            "sequence": self.sequence,
            "published_at": self.published_at,
            "files": self.files,
            "bytes": self.bytes,
        }


@dataclass(frozen=True)
class Inventory:
    """What a web directory keeps: its releases (newest first); *files* and *bytes* count
    each file once, however many releases own it; *unowned* counts files no release owns."""

    releases: list[ReleaseUsage]
    files: int
    bytes: int
    unowned: int

    def to_dict(self) -> dict[str, object]:
        return {
            "releases": [r.to_dict() for r in self.releases],
            "files": self.files,
            "bytes": self.bytes,
            "unowned": self.unowned,
        }


@dataclass
class PublishReport:
    """What `publish` did (or, with *dry_run*, would do). Paths are relative to the web
    directory; *written* lists the shells last, in the order they were written."""

    release: str
    dry_run: bool
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    pruned: list[str] = field(default_factory=list)
    pruned_bytes: int = 0
    forgotten: list[str] = field(default_factory=list)
    leftovers: int = 0
    adopted: str | None = None
    inventory: Inventory | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "release": self.release,
            "dry_run": self.dry_run,
            "written": self.written,
            "unchanged": self.unchanged,
            "pruned": self.pruned,
            "pruned_bytes": self.pruned_bytes,
            "forgotten": self.forgotten,
            "leftovers": self.leftovers,
            "adopted": self.adopted,
            "kept": None if self.inventory is None else self.inventory.to_dict(),
        }


def content_release(files: list[BuildFile]) -> str:
    """The default release name: the first 12 hex digits of a SHA-256 over the build's
    paths and contents. The same build always gets the same name."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.path}\0{f.sha256}\n".encode())
    return digest.hexdigest()[:12]


def _check_targets(web_dir: Path, files: list[BuildFile]) -> None:
    """`InvalidBuild` if a build file would land on a directory, or under a file."""
    for f in files:
        target = web_dir / f.path
        if target.is_dir() and not target.is_symlink():
            raise InvalidBuild(f"{target} is a directory in the web directory, and a file in the build")
        for parent in target.parents:
            if parent == web_dir:
                break
            if parent.exists() and not parent.is_dir():
                raise InvalidBuild(f"{parent} is a file in the web directory, and a directory in the build")


def _same_file(target: Path, entry: BuildFile) -> bool:
    try:
        same_size = target.is_file() and target.stat().st_size == entry.size
        return same_size and file_sha256(target) == entry.sha256
    except OSError:
        return False


def publish(
    build_dir: Path,
    web_dir: Path,
    *,
    keep: int = 5,
    min_age: float = 86400.0,
    release: str | None = None,
    dry_run: bool = False,
    lock_timeout: float = 300.0,
    on_wait: Callable[[], None] | None = None,
    now: Callable[[], float] = time.time,
) -> PublishReport:
    """Publish the build at *build_dir* into *web_dir* as release *release* (default:
    `content_release`), keeping the *keep* newest releases and any replaced less than
    *min_age* seconds ago.

    Raises `InvalidBuild` (a ``ValueError``) for input that cannot be published, before
    anything is written; `spa_version.publish.record.RecordError` for a record that is
    not valid; `spa_version.publish.lock.LockTimeout` if another run holds the lock for
    *lock_timeout* seconds; ``OSError`` from the file system (a full disk: the files
    already written are complete, and the next run finishes the job).
    """
    if keep < 1:
        raise InvalidBuild(f"--keep must be at least 1, not {keep}")
    if min_age < 0:
        raise InvalidBuild("--min-age must not be negative")
    build_dir, web_dir = build_dir.resolve(), web_dir.resolve()
    if build_dir == web_dir or web_dir in build_dir.parents or build_dir in web_dir.parents:
        raise InvalidBuild(f"the build directory {build_dir} and the web directory {web_dir} overlap")
    if web_dir.exists() and not web_dir.is_dir():
        raise InvalidBuild(f"the web directory {web_dir} is not a directory")
    files = scan_build(build_dir, reserved=RECORD_DIR)
    name = validate_label(release) if release is not None else content_release(files)
    report = PublishReport(name, dry_run)
    record_dir = web_dir / RECORD_DIR
    if dry_run and not record_dir.is_dir():
        _publish_locked(files, web_dir, report, keep=keep, min_age=min_age, now=now)
        return report
    if not dry_run:
        web_dir.mkdir(parents=True, exist_ok=True)
    with held(record_dir, timeout=lock_timeout, on_wait=on_wait):
        _publish_locked(files, web_dir, report, keep=keep, min_age=min_age, now=now)
    return report


def _publish_locked(
    files: list[BuildFile],
    web_dir: Path,
    report: PublishReport,
    *,
    keep: int,
    min_age: float,
    now: Callable[[], float],
) -> None:
    dry_run = report.dry_run
    records = read_records(web_dir) if web_dir.is_dir() else []
    _check_targets(web_dir, files)
    entries = {f.path: FileEntry(f.sha256, f.size) for f in files}
    previous = next((r for r in records if r.release == report.release), None)
    if previous is not None and previous.files != entries:
        raise InvalidBuild(
            f"release {report.release} was published before with other files; publish this build "
            "under a new --release name (nothing was written)"
        )

    # 1. A killed run's temporary files.
    if web_dir.is_dir():
        report.leftovers = remove_leftovers(web_dir, reserved=RECORD_DIR, dry_run=dry_run)

    # 2. The record first. A directory published before any record (rsync, a first run)
    # is adopted as one release, so its files age out like any other release's.
    if not records and web_dir.is_dir():
        existing = {rel: full for rel, full in served_files(web_dir, reserved=RECORD_DIR)}
        if existing:
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now()))
            adopted = ReleaseRecord(
                f"adopted-{stamp}",
                0,
                now(),
                {rel: FileEntry(file_sha256(full), full.stat().st_size) for rel, full in existing.items()},
            )
            report.adopted = adopted.release
            records.append(adopted)
            if not dry_run:
                write_record(web_dir, adopted)
    newest = max(records, key=lambda r: (r.sequence, r.published_at, r.release), default=None)
    if newest is not None and newest.release == report.release:
        record = newest  # the current release again: nothing to record
    else:
        sequence = 1 + max((r.sequence for r in records), default=0)
        record = ReleaseRecord(report.release, sequence, now(), entries)
        records = [r for r in records if r.release != report.release] + [record]
        if not dry_run:
            write_record(web_dir, record)

    # 3. New names first (the hashed assets), then the files that replace one under the
    # same name (unhashed ones: sw.js, favicon.ico), then the shells.
    pending = [f for f in files if not _same_file(web_dir / f.path, f)]
    report.unchanged = len(files) - len(pending)
    phases = (
        [f for f in pending if not f.is_shell and not (web_dir / f.path).exists()],
        [f for f in pending if not f.is_shell and (web_dir / f.path).exists()],
        [f for f in pending if f.is_shell],
    )
    for phase in phases:
        touched: set[Path] = set()
        for f in phase:
            target = web_dir / f.path
            report.written.append(f.path)
            if not dry_run:
                write_atomically(f.source, target)
                touched.add(target.parent)
        for directory in sorted(touched):
            fsync_dir(directory)

    # 4. Prune.
    decided = plan(records, keep=keep, min_age=min_age, now=now())
    kept_paths = decided.kept_paths
    pruned: set[str] = set()
    for retired in decided.retired:
        complete = True
        for path in sorted(retired.files):
            if path in kept_paths or path in pruned:
                continue
            target = web_dir / path
            try:
                info = target.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):
                continue  # the name is a directory now: not this release's file
            if now() - info.st_mtime < min_age:
                complete = False  # written too recently: a later run deletes it
                continue
            pruned.add(path)
            report.pruned.append(path)
            report.pruned_bytes += info.st_size
            if not dry_run:
                target.unlink(missing_ok=True)
                _remove_empty_parents(target.parent, web_dir)
        if complete:
            report.forgotten.append(retired.release)
            if not dry_run:
                remove_record(web_dir, retired.release)
    remaining = [r for r in records if r.release not in report.forgotten]
    forecast = files if dry_run else []
    report.inventory = _inventory(web_dir, remaining, gone=pruned, extra=forecast)


def _remove_empty_parents(directory: Path, web_dir: Path) -> None:
    while directory != web_dir and web_dir in directory.parents:
        try:
            directory.rmdir()
        except OSError:  # not empty (or already gone)
            return
        directory = directory.parent


def _inventory(
    web_dir: Path, records: list[ReleaseRecord], *, gone: set[str], extra: list[BuildFile]
) -> Inventory:
    """The releases of *records* with the sizes of their files on disk; *gone* are
    treated as deleted and *extra* as written (for a dry run's forecast)."""
    planned = {f.path: f.size for f in extra}

    def size_of(path: str) -> int | None:
        if path in gone:
            return None
        if path in planned:
            return planned[path]
        try:
            info = (web_dir / path).lstat()
        except OSError:
            return None
        return info.st_size

    sizes: dict[str, int] = {}
    usages: list[ReleaseUsage] = []
    for record in sorted(records, key=lambda r: (r.sequence, r.published_at, r.release), reverse=True):
        count = total = 0
        for path in record.files:
            size = size_of(path)
            if size is not None:
                count, total = count + 1, total + size
                sizes[path] = size
        usages.append(ReleaseUsage(record.release, record.sequence, record.published_at, count, total))
    unowned = 0
    if web_dir.is_dir():
        on_disk = (rel for rel, _ in served_files(web_dir, reserved=RECORD_DIR))
        unowned = sum(1 for rel in on_disk if rel not in sizes and rel not in gone)
    return Inventory(usages, len(sizes), sum(sizes.values()), unowned)


def inventory(web_dir: Path) -> Inventory:
    """What *web_dir* keeps now (`Inventory`); `RecordError` for a record that is not valid.
    Read without the lock: a publish running at the same time may be half-counted."""
    web_dir = web_dir.resolve()
    if not web_dir.is_dir():
        raise InvalidBuild(f"the web directory {web_dir} does not exist")
    return _inventory(web_dir, read_records(web_dir), gone=set(), extra=[])
