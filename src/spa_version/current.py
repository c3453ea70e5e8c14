"""The current release as this process knows it, with everything a request needs precomputed.

The request path reads one attribute, `CurrentVersion.snapshot`, and gets an immutable
`Snapshot` whose header bytes and endpoint body were built once, when the version
changed. Nothing here does I/O.

Three states come before a release: nothing stamped until the store has been read
(`EMPTY`, or a configured fallback: `CurrentVersion.offer_fallback`), then, once a
read found no release, the unreleased value (`CurrentVersion.offer_unreleased`): epoch
0, which is older than every release and never a release itself (docs/protocol.md,
"Before the first release").
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .protocol import UNRELEASED_EPOCH, format_header, parse_header
from .release import DEFAULT_POLICY, Release

__all__ = ["CurrentVersion", "Snapshot", "EMPTY", "TIMING_METRIC", "UNRELEASED_LABEL", "fallback_release"]

logger = logging.getLogger("spa_version")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version, ready to stamp."""

    #: The release served, or None before the first one (also while the unreleased
    #: value is stamped: the deploy switch reads this, and for it there is no release).
    release: Release | None
    #: ``(header_name, header_value)`` as lowercase-name ASCII bytes, or None until
    #: there is something to stamp (the store not read yet, and no fallback).
    header: tuple[bytes, bytes] | None
    #: The version endpoint's JSON body (``null`` with no header).
    body: bytes
    #: Shortcut for the enforcement check on the request path.
    min_compatible: int | None
    #: ``(b"server-timing", b'spa-version;desc="<header value>"')``: the same value as a
    #: Server-Timing metric (W3C Server Timing), which a page's own script reads from its
    #: navigation entry, so a static ``index.html`` knows its version without a template
    #: (docs/js.md, "The baseline"). None with *header*.
    timing: tuple[bytes, bytes] | None = None
    #: The values of *header* and *timing* as ``str``, for a host whose header API takes
    #: ``str`` (Django's ``ResponseHeaders``): decoded once here, not per response.
    header_text: str | None = None
    timing_text: str | None = None


#: Before the store has been read: nothing stamped, the endpoint answers ``null``.
EMPTY = Snapshot(None, None, b"null", None)

#: The Server-Timing metric name the JS helper looks for (js/src/index.js).
TIMING_METRIC = b"spa-version"

#: The label of the unreleased value when the process declares no ``build``.
UNRELEASED_LABEL = "unreleased"


def _stamped(
    release: Release | None, header: tuple[bytes, bytes], body: bytes, minimum: int | None
) -> Snapshot:
    """A snapshot that stamps *header*, with its Server-Timing metric and their ``str`` forms."""
    value = header[1]
    # A quoted-string needs no escaping here: labels, policies and slots are tokens
    # (RFC 9110 §5.6.4; Server-Timing's ``desc`` takes a token or a quoted-string).
    timing = (b"server-timing", TIMING_METRIC + b';desc="' + value + b'"')
    return Snapshot(release, header, body, minimum, timing, value.decode("ascii"), timing[1].decode("ascii"))


def fallback_release(value: str) -> Release:
    """The release a ``fallback`` header value (``"1; label=boot"``) stands for: its label,
    or ``fallback`` without one.

    Raises `spa_version.release.InvalidRelease` for a malformed value, and for epoch 0
    (the unreleased value is no release: docs/protocol.md, "Before the first release").
    """
    parsed = parse_header(value)
    return Release(parsed.epoch, parsed.label or "fallback", parsed.policy, parsed.min_compatible)


Observer = Callable[[Snapshot, Snapshot], None]
Watcher = Callable[[Snapshot], None]


class CurrentVersion:
    """Holds the newest release seen, and tells observers when it changes.

    `offer` only moves forward: a release is taken when its epoch is strictly newer,
    so a late pub/sub message or a stale re-read can never make a worker go back.
    Thread-safe: the Django WSGI listener offers from its own thread.
    """

    def __init__(self, header_name: str, slot: str | None = None, *, deployed: str | None = None) -> None:
        self.header_name = header_name.lower().encode("ascii")
        #: The blue/green slot this process declared (`spa_version.pinning`), stamped as
        #: ``; slot=<slot>`` after the release's header value; None stamps none.
        self.slot = slot
        #: The build this process declared (``build``), or None. With one, the slot is
        #: stamped only while that build is the current release's label: a tab pins to
        #: the build its code came from (docs/protocol.md, "Pinning", "Which build a
        #: tab is pinned to").
        self.deployed = deployed
        self.snapshot: Snapshot = EMPTY
        #: True while the snapshot holds a configured fallback rather than a release
        #: read from the store: the first real release replaces it, whatever its epoch.
        self.provisional = False
        #: What `offer_unreleased` serves, built once.
        self.unreleased = self._build_unreleased()
        self._lock = threading.Lock()
        self._observers: list[Observer] = []
        self._watchers: list[Watcher] = []

    @property
    def release(self) -> Release | None:
        return self.snapshot.release

    def offer_fallback(self, value: str) -> None:
        """Serve the header value *value* (``"1; label=boot"``) until the store has been read:
        the first release read from the store replaces it, whatever its epoch.

        Raises `spa_version.release.InvalidRelease` for a malformed value.
        """
        self.offer(fallback_release(value))
        self.provisional = True

    def offer_unreleased(self) -> bool:
        """The store was read and holds no release: stamp the unreleased value, if nothing
        is stamped yet. Return True if taken.

        The value is ``0; label=<build>; policy=next-navigation`` (``build`` declared, else
        `UNRELEASED_LABEL`), in the header, the Server-Timing metric and the endpoint's
        record (``{"epoch": 0, ...}``). Epoch 0 is older than every release, so it moves no
        tab, and a tab that took it as its baseline moves to the first release by that
        release's policy (docs/protocol.md, "Before the first release"). It carries no
        slot and no ``min``. ``snapshot.release`` stays None: for the deploy switch
        (liveness, drain, cutoff, pinning, the fleet record) and observers nothing
        changes, so they are not called. A release held (one read before, a fallback)
        is kept.
        """
        with self._lock:
            if self.snapshot is not EMPTY:
                return False
            self._replace(self.unreleased)
        return True

    def build(self, release: Release) -> Snapshot:
        """Precompute everything the request path needs for *release*."""
        # Release validates every field, so the value is header-safe by construction;
        # encoding as ASCII is the last guard (it raises on anything else).
        value = format_header(release).encode("ascii")
        # A validated token (`spa_version.pinning.validate_slot`); never stamped by a
        # process whose build is not the release's: the shell it serves may not be its own.
        if self.slot is not None and self.deployed in (None, release.label):
            value += b"; slot=" + self.slot.encode("ascii")
        body = release.to_json().encode("utf-8")
        return _stamped(release, (self.header_name, value), body, release.min_compatible)

    def _build_unreleased(self) -> Snapshot:
        """The snapshot `offer_unreleased` serves: no release, the unreleased value stamped."""
        label = UNRELEASED_LABEL if self.deployed is None else self.deployed
        value = f"{UNRELEASED_EPOCH}; label={label}; policy={DEFAULT_POLICY}".encode("ascii")
        record = {
            "epoch": UNRELEASED_EPOCH,
            "label": label,
            "policy": DEFAULT_POLICY,
            "min_compatible": None,
            "created_at": "",
            "note": None,
        }
        body = json.dumps(record, separators=(",", ":")).encode("utf-8")
        return _stamped(None, (self.header_name, value), body, None)

    def offer(self, release: Release, *, force: bool = False) -> bool:
        """Take *release* if it is newer than the current one (or if *force*). Return True if taken."""
        with self._lock:
            old = self.snapshot
            replace = force or self.provisional or old.release is None
            if not replace and release.epoch <= old.release.epoch:  # type: ignore[union-attr]
                return False
            self.provisional = False
            if old.release == release:
                return False
            new = self.build(release)
            self._replace(new)
            observers = list(self._observers)
        logger.info("spa-version: now serving epoch %d (label %s)", release.epoch, release.label)
        for observer in observers:
            try:
                observer(old, new)
            except Exception:
                logger.exception("spa-version: a version observer failed")
        return True

    def _replace(self, snapshot: Snapshot) -> None:
        """Serve *snapshot* and tell the watchers (under the lock)."""
        self.snapshot = snapshot
        for watcher in self._watchers:
            try:
                watcher(snapshot)
            except Exception:
                logger.exception("spa-version: a snapshot watcher failed")

    def watch(self, watcher: Watcher) -> None:
        """Call ``watcher(snapshot)`` now with the current snapshot, and again each time
        `snapshot` is replaced (a release, the unreleased value, a fallback).

        Unlike an observer, a watcher is called under the lock, so its calls come in the
        order the snapshots were taken: the last call is always the current snapshot. It
        must be quick, take no lock of its own, and not call back into this object (it
        precomputes, like `spa_version.django.stamping.Stamping`). An exception raised by
        the first call propagates (the watcher is then not added); later ones are logged.
        """
        with self._lock:
            watcher(self.snapshot)
            self._watchers.append(watcher)

    def unwatch(self, watcher: Watcher) -> None:
        """Stop calling *watcher*; once this returns, no call of it is still running."""
        with self._lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer(old, new)`` after each version change (from any thread)."""
        with self._lock:
            self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)
