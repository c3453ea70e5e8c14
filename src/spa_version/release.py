"""The release record: what one ``spa-version bump`` creates, and how it is validated.

Every value that can end up in a response header is validated here, once, on the way
in (``bump``) *and* on the way out of a store (``Release.from_json``), so a bad value
can never split a response (RFC 9110 §5.5; uvicorn CVE-2020-7695).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MAX_EPOCH",
    "MAX_LABEL_LENGTH",
    "MAX_NOTE_LENGTH",
    "POLICIES",
    "DEFAULT_POLICY",
    "InvalidRelease",
    "Release",
    "is_epoch",
    "validate_app",
    "validate_label",
    "validate_note",
    "validate_policy",
]

#: The largest epoch on the wire: 15 decimal digits, so that JavaScript holds every epoch
#: exactly (below 2**53) and a hostile header can never make a parser build a huge int.
#: Enforced when a release is written and when it is read back (docs/protocol.md).
MAX_EPOCH = 10**15 - 1
MAX_LABEL_LENGTH = 64
MAX_NOTE_LENGTH = 200
POLICIES = ("next-navigation", "immediate", "prompt", "silent")
DEFAULT_POLICY = "next-navigation"

# Labels are opaque, short and header-safe: no spaces, no ';' or '=' (the wire
# format's separators), never CR/LF/NUL.
_LABEL_RE = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_LABEL_LENGTH}}}")
# App names become part of Redis keys and file names.
_APP_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class InvalidRelease(ValueError):
    """A label, policy, note, app name or stored record is not acceptable."""


def validate_label(label: str) -> str:
    """Return *label* if it is a valid release label, else raise `InvalidRelease`."""
    if not isinstance(label, str) or not _LABEL_RE.fullmatch(label):
        raise InvalidRelease(
            f"invalid label {label!r}: use 1-{MAX_LABEL_LENGTH} characters from A-Z a-z 0-9 . _ -"
        )
    return label


def validate_policy(policy: str) -> str:
    """Return *policy* if it is one of `POLICIES`, else raise `InvalidRelease`."""
    if policy not in POLICIES:
        raise InvalidRelease(f"invalid policy {policy!r}: use one of {', '.join(POLICIES)}")
    return policy


def validate_note(note: str | None) -> str | None:
    """Return *note* if it is short printable text (or None), else raise `InvalidRelease`.

    The note never goes into a header, but it is shown by the CLI and the version
    endpoint, so control characters are refused all the same.
    """
    if note is None:
        return None
    if not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH or not note.isprintable():
        raise InvalidRelease(f"invalid note: use at most {MAX_NOTE_LENGTH} printable characters")
    return note


def validate_app(app: str) -> str:
    """Return *app* if it is a valid app namespace, else raise `InvalidRelease`."""
    if not isinstance(app, str) or not _APP_RE.fullmatch(app):
        shown = repr(app[:40]) + "…" if isinstance(app, str) and len(app) > 40 else repr(app)[:80]
        raise InvalidRelease(f"invalid app name {shown}: use 1-64 characters from A-Z a-z 0-9 . _ -")
    return app


def is_epoch(value: object) -> bool:
    """True if *value* is an ``int`` (not a bool) between 1 and `MAX_EPOCH`."""
    # bool is an int subclass; True is not an epoch.
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_EPOCH


def utc_now() -> str:
    """The current time as an RFC 3339 UTC timestamp with second precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Release:
    """One deploy version, as created by ``spa-version bump``.

    ``epoch`` is an integer from 1 to `MAX_EPOCH` that only grows, even across a store
    that lost its data (see `spa_version.stores.base.Store.bump`); it is what clients
    compare. ``label`` is an opaque build name for humans and for the
    drain logic (a process whose build differs from the current label is stale).
    ``cutoff`` (``bump --cutoff``): a security release; every stale build stops serving
    old clients and pinned requests at once (docs/protocol.md, "Security fixes").
    """

    epoch: int
    label: str
    policy: str = DEFAULT_POLICY
    min_compatible: int | None = None
    created_at: str = ""
    note: str | None = None
    cutoff: bool = False

    def __post_init__(self) -> None:
        if not is_epoch(self.epoch):
            raise InvalidRelease(f"invalid epoch {self.epoch!r}: must be an integer from 1 to {MAX_EPOCH}")
        validate_label(self.label)
        validate_policy(self.policy)
        if self.min_compatible is not None and not (
            is_epoch(self.min_compatible) and self.min_compatible <= self.epoch
        ):
            raise InvalidRelease(
                f"invalid min_compatible {self.min_compatible!r}: must be an epoch between 1 and {self.epoch}"
            )
        if not isinstance(self.created_at, str) or not (
            self.created_at == "" or self.created_at.isprintable()
        ):
            raise InvalidRelease("invalid created_at")
        validate_note(self.note)
        if not isinstance(self.cutoff, bool):
            raise InvalidRelease(f"invalid cutoff {self.cutoff!r}: must be true or false")

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (the version endpoint's body); ``cutoff``
        appears only on a cutoff release (true)."""
        out: dict[str, Any] = {
            "epoch": self.epoch,
            "label": self.label,
            "policy": self.policy,
            "min_compatible": self.min_compatible,
            "created_at": self.created_at,
            "note": self.note,
        }
        if self.cutoff:
            out["cutoff"] = True
        return out

    def to_json(self) -> str:
        """The record as compact JSON, the form every store keeps."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: object) -> Release:
        """Build a release from a decoded record, raising `InvalidRelease` if it is bad."""
        if not isinstance(data, dict):
            raise InvalidRelease("a release record must be a JSON object")
        try:
            return cls(
                epoch=data["epoch"],
                label=data["label"],
                policy=data.get("policy", DEFAULT_POLICY),
                min_compatible=data.get("min_compatible"),
                created_at=data.get("created_at") or "",
                note=data.get("note"),
                cutoff=data.get("cutoff", False),
            )
        except KeyError as exc:
            raise InvalidRelease(f"a release record needs {exc.args[0]!r}") from None
        except TypeError as exc:  # e.g. unhashable policy
            raise InvalidRelease(str(exc)) from None

    @classmethod
    def from_json(cls, raw: str | bytes) -> Release:
        """Parse a stored record. Anything malformed raises `InvalidRelease`."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRelease(f"a release record is not valid JSON: {exc}") from None
        except RecursionError:
            raise InvalidRelease("a release record is nested too deeply to be one") from None
        return cls.from_dict(data)
