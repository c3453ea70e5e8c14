"""The current release as this process knows it, with everything a request needs precomputed.

The request path reads one attribute, `CurrentVersion.snapshot`, and gets an immutable
`Snapshot` whose header bytes and endpoint body were built once, when the version
changed. Nothing here does I/O.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .protocol import format_header, parse_header
from .release import Release

__all__ = ["CurrentVersion", "Snapshot", "EMPTY", "TIMING_METRIC"]

logger = logging.getLogger("spa_version")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version, ready to stamp."""

    release: Release | None
    #: ``(header_name, header_value)`` as lowercase-name ASCII bytes, or None before the
    #: first release is known.
    header: tuple[bytes, bytes] | None
    #: The version endpoint's JSON body.
    body: bytes
    #: Shortcut for the enforcement check on the request path.
    min_compatible: int | None
    #: ``(b"server-timing", b'spa-version;desc="<header value>"')``: the same value as a
    #: Server-Timing metric (W3C Server Timing), which a page's own script reads from its
    #: navigation entry, so a static ``index.html`` knows its version without a template
    #: (docs/js.md, "The baseline"). None with *header*.
    timing: tuple[bytes, bytes] | None = None


EMPTY = Snapshot(None, None, b"null", None)

#: The Server-Timing metric name the JS helper looks for (js/src/index.js).
TIMING_METRIC = b"spa-version"

Observer = Callable[[Snapshot, Snapshot], None]


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
        self._lock = threading.Lock()
        self._observers: list[Observer] = []

    @property
    def release(self) -> Release | None:
        return self.snapshot.release

    def offer_fallback(self, value: str) -> None:
        """Serve the header value *value* (``"1; label=boot"``) until the store has been read:
        the first release read from the store replaces it, whatever its epoch.

        Raises `spa_version.release.InvalidRelease` for a malformed value.
        """
        parsed = parse_header(value)
        self.offer(Release(parsed.epoch, parsed.label or "fallback", parsed.policy, parsed.min_compatible))
        self.provisional = True

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
        # A quoted-string needs no escaping here: labels, policies and slots are tokens
        # (RFC 9110 §5.6.4; Server-Timing's ``desc`` takes a token or a quoted-string).
        timing = (b"server-timing", TIMING_METRIC + b';desc="' + value + b'"')
        return Snapshot(release, (self.header_name, value), body, release.min_compatible, timing)

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
            self.snapshot = new
            observers = list(self._observers)
        logger.info("spa-version: now serving epoch %d (label %s)", release.epoch, release.label)
        for observer in observers:
            try:
                observer(old, new)
            except Exception:
                logger.exception("spa-version: a version observer failed")
        return True

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer(old, new)`` after each version change (from any thread)."""
        with self._lock:
            self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)
