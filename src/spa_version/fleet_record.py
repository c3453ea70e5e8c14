"""The fleet record: what one process's heartbeat says, typed and validated in one place.

`spa_version.deploy.heartbeat` builds a `FleetRecord` and writes `FleetRecord.to_json`;
every reader (``spa-version status``, ``bump --wait``, the epoch floor, the file store's
expiry) gets one back from `FleetRecord.parse`, the only parser. A record is written by
another process, possibly a compromised or broken one, so the parser trusts nothing:

- the raw record is at most `MAX_RECORD_BYTES` (checked before any JSON parsing, so a
  megabyte or a 100,000-deep nesting costs nothing), strict UTF-8, one JSON object;
- numbers are finite (no ``NaN``, ``Infinity``, ``1e999``), integers are ``int`` (not
  ``bool``, float or string) within their ranges, epochs 1 to `MAX_EPOCH`;
- text (host, build, label, slot, state) is short and printable, builds and labels are
  release labels, states are the three of `spa_version.deploy.liveness`.

Anything else raises `BadRecord` with a one-line reason; the readers skip that record and
report it. docs/deploy-haproxy.md, "Fleet status", lists the fields.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .pinning import validate_slot
from .release import MAX_EPOCH, InvalidRelease, is_epoch, validate_label

__all__ = ["MAX_RECORD_BYTES", "STATES", "BadRecord", "FleetRecord", "shown"]

#: The largest raw record accepted, in bytes. A real one is under 4 KiB: its biggest
#: field, ``requests_by_epoch``, holds at most 66 keys (`spa_version.deploy.heartbeat`).
MAX_RECORD_BYTES = 16 * 1024
#: A host name: RFC 1035 allows 253 characters for a full name.
MAX_HOST_LENGTH = 253
#: A pid: Linux's pid_max is at most 2**22; any positive 32-bit value is accepted.
MAX_PID = 2**31 - 1
#: The process states (`spa_version.deploy.liveness`).
STATES = ("live", "pending", "stale")
#: Unix times (seconds) from 1970 up to the year 10000.
MAX_TIME = 253_402_300_800.0
#: The longest heartbeat interval accepted, in seconds (a day); a ttl may be three of them.
MAX_INTERVAL = 86_400.0
MAX_TTL = 3 * MAX_INTERVAL
#: How far a record's ``updated_at`` may be ahead of the reader's clock, in seconds: the
#: clock skew Kerberos tolerates between hosts (RFC 4120 §1.6, five minutes). A record
#: further ahead would never expire (`FleetRecord.expired`), so a reader skips it.
MAX_CLOCK_AHEAD = 300.0
#: Counters (websockets, closes, requests): any non-negative int up to 15 digits.
MAX_COUNT = MAX_EPOCH
#: Keys in ``requests_by_epoch``: the heartbeat's 64 distinct values plus ``none`` and ``other``.
MAX_EPOCH_KEYS = 66


class BadRecord(ValueError):
    """A fleet record that does not parse or validate; the message is one printable line."""


def shown(text: str, limit: int = 80) -> str:
    """*text* safe for a terminal and a log line: control and other unprintable characters
    (ESC, BEL, CR, LF, DEL...) escaped as ``\\x1b``-style sequences, cut to *limit* characters."""
    if text.isprintable() and len(text) <= limit:
        return text
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return out + ("..." if len(text) > limit else "")


@dataclass(frozen=True, slots=True)
class FleetRecord:
    """One process as its last heartbeat described it.

    Times are Unix seconds; ``interval`` and ``ttl`` are seconds; ``epoch`` and ``label``
    are the release it serves (None before its first read); ``websockets`` and ``streams``
    (open server-sent event streams) are None when it does not track them (no build
    declared); ``slot`` and ``pinned`` are set only for a
    process that declares a slot (docs/protocol.md, "Pinning").
    """

    host: str
    pid: int
    updated_at: float
    started_at: float = 0.0
    interval: float = 5.0
    ttl: float = 15.0
    build: str | None = None
    state: str = "live"
    stopping: bool = False
    epoch: int | None = None
    label: str | None = None
    websockets: int | None = None
    streams: int | None = None
    drained: int = 0
    agent_port: int | None = None
    slot: str | None = None
    pinned: int | None = None
    requests_by_epoch: dict[str, int] = field(default_factory=dict)
    requests_window: float = 0.0

    def __post_init__(self) -> None:
        _check(self)

    @property
    def name(self) -> str:
        """``<host>:<pid>``, the same on every store."""
        return f"{self.host}:{self.pid}"

    def expired(self, now: float) -> bool:
        """Whether the record is past its ``ttl`` at Unix time *now* (its process is gone)."""
        return now - self.updated_at > self.ttl

    def ahead(self, now: float) -> float | None:
        """Seconds by which ``updated_at`` is ahead of *now*, if more than `MAX_CLOCK_AHEAD`
        (a host whose clock is wrong, or a forged record that would never expire); else None."""
        ahead = self.updated_at - now
        return ahead if ahead > MAX_CLOCK_AHEAD else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object the heartbeat writes (and ``status --json`` shows, plus ``name``)."""
        out: dict[str, Any] = {
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "interval": self.interval,
            "ttl": self.ttl,
            "build": self.build,
            "state": self.state,
            "stopping": self.stopping,
            "epoch": self.epoch,
            "label": self.label,
            "websockets": self.websockets,
            "streams": self.streams,
            "drained": self.drained,
            "agent_port": self.agent_port,
        }
        if self.slot is not None:
            out["slot"] = self.slot
            out["pinned"] = self.pinned or 0
        out["requests_by_epoch"] = dict(self.requests_by_epoch)
        out["requests_window"] = self.requests_window
        return out

    def to_json(self) -> str:
        """`to_dict` as compact JSON (what the store holds)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: object) -> FleetRecord:
        """A record from a decoded JSON value; `BadRecord` unless it is a valid record object.

        ``host``, ``pid`` and ``updated_at`` are required; every other field has the default
        of an older or minimal writer. Unknown fields are ignored.
        """
        if not isinstance(data, dict):
            raise BadRecord(f"not a JSON object but {type(data).__name__}")
        for key in ("host", "pid", "updated_at"):
            if key not in data:
                raise BadRecord(f"no {key!r} field")
        known = {k: data[k] for k in _FIELDS if k in data}
        if known.get("slot") is None:
            known.pop("pinned", None)  # pinned counts requests pinned to a slot: none without one
        if known.get("ttl") is None and "interval" in known:
            interval = _number("interval", known["interval"], 0.0, MAX_INTERVAL)
            known["ttl"] = 3 * interval
        for key in ("started_at", "interval", "ttl", "requests_window", "requests_by_epoch", "drained"):
            if known.get(key, 0) is None:  # a null where a default exists
                del known[key]
        try:
            return cls(**known)
        except TypeError as exc:  # not reachable with _FIELDS; kept one-line
            raise BadRecord(str(exc)) from None

    @classmethod
    def parse(cls, raw: str | bytes) -> FleetRecord:
        """The record in *raw* (a store's bytes or text); `BadRecord` for anything else.

        Never raises another exception, whatever *raw* holds.
        """
        if isinstance(raw, str):
            if len(raw) > MAX_RECORD_BYTES:  # each character is at least one byte
                raise BadRecord(f"larger than {MAX_RECORD_BYTES} bytes")
            raw = raw.encode("utf-8", "surrogatepass")
        if len(raw) > MAX_RECORD_BYTES:
            raise BadRecord(f"larger than {MAX_RECORD_BYTES} bytes ({len(raw)})")
        try:
            text = raw.decode("utf-8")
            data = json.loads(text, parse_constant=_no_constant)
        except RecursionError:
            raise BadRecord("JSON nested too deeply") from None
        except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, huge int literals
            raise BadRecord(f"not JSON ({shown(str(exc), 60)})") from None
        return cls.from_dict(data)


_FIELDS = tuple(FleetRecord.__dataclass_fields__)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _int(key: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRecord(f"{key} is {_kind(value)}, not an integer")
    if not low <= value <= high:
        raise BadRecord(f"{key} {_clip(value)} is out of range ({low} to {high})")
    return value


def _number(key: str, value: object, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise BadRecord(f"{key} is {_kind(value)}, not a number")
    if isinstance(value, int) and not -(10**20) < value < 10**20:
        raise BadRecord(f"{key} {_clip(value)} is out of range ({low:g} to {high:g})")
    if not math.isfinite(value) or not low <= value <= high:
        raise BadRecord(f"{key} {_clip(value)} is out of range ({low:g} to {high:g})")
    return float(value)


def _text(key: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise BadRecord(f"{key} is {_kind(value)}, not a string")
    if not 1 <= len(value) <= limit or not value.isprintable():
        raise BadRecord(f"{key} {shown(repr(value), 60)} is not 1 to {limit} printable characters")
    return value


def _label(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise BadRecord(f"{key} is {_kind(value)}, not a string")
    try:
        return validate_label(value)
    except InvalidRelease:
        raise BadRecord(f"{key} {shown(repr(value), 60)} is not a release label") from None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {shown(repr(value), 40)}"
    return {"int": "an integer", "float": "a number", "list": "a list", "dict": "an object"}.get(
        type(value).__name__, type(value).__name__
    )


def _clip(value: int | float) -> str:
    text = repr(value) if isinstance(value, float) else str(value) if abs(value) < 10**30 else "(huge)"
    return text[:40]


def _check(r: FleetRecord) -> None:
    """Validate every field of *r* in place (`BadRecord` for the first one that is wrong)."""
    _text("host", r.host, MAX_HOST_LENGTH)
    _int("pid", r.pid, 1, MAX_PID)
    _number("updated_at", r.updated_at, 0.0, MAX_TIME)
    _number("started_at", r.started_at, 0.0, MAX_TIME)
    _number("interval", r.interval, 0.0, MAX_INTERVAL)
    if not r.interval > 0:
        raise BadRecord("interval 0 is out of range (above 0)")
    _number("ttl", r.ttl, 0.0, MAX_TTL)
    _number("requests_window", r.requests_window, 0.0, MAX_TIME)
    if r.build is not None:
        _label("build", r.build)
    if not isinstance(r.state, str) or r.state not in STATES:
        raise BadRecord(f"state is {_kind(r.state)}, not one of {', '.join(STATES)}")
    if not isinstance(r.stopping, bool):
        raise BadRecord(f"stopping is {_kind(r.stopping)}, not true or false")
    if r.epoch is not None and not is_epoch(r.epoch):
        if isinstance(r.epoch, int) and not isinstance(r.epoch, bool):
            raise BadRecord(f"epoch {_clip(r.epoch)} is out of range (1 to {MAX_EPOCH})")
        raise BadRecord(f"epoch is {_kind(r.epoch)}, not an integer")
    if r.label is not None:
        _label("label", r.label)
    if r.websockets is not None:
        _int("websockets", r.websockets, 0, MAX_COUNT)
    if r.streams is not None:
        _int("streams", r.streams, 0, MAX_COUNT)
    _int("drained", r.drained, 0, MAX_COUNT)
    if r.agent_port is not None:
        _int("agent_port", r.agent_port, 1, 65535)
    if r.slot is not None:
        if not isinstance(r.slot, str):
            raise BadRecord(f"slot is {_kind(r.slot)}, not a string")
        try:
            validate_slot(r.slot)
        except ValueError:
            raise BadRecord(f"slot {shown(repr(r.slot), 60)} is not a slot token") from None
    if r.pinned is not None:
        _int("pinned", r.pinned, 0, MAX_COUNT)
    counts = r.requests_by_epoch
    if not isinstance(counts, dict):
        raise BadRecord(f"requests_by_epoch is {_kind(counts)}, not an object")
    if len(counts) > MAX_EPOCH_KEYS:
        raise BadRecord(f"requests_by_epoch has {len(counts)} keys, more than {MAX_EPOCH_KEYS}")
    for key, count in counts.items():
        if key not in ("none", "other") and not (
            key.isascii() and key.isdigit() and len(key) <= 15 and is_epoch(int(key))
        ):
            raise BadRecord(f"requests_by_epoch key {shown(repr(key), 40)} is not an epoch, none or other")
        _int(f"requests_by_epoch[{key}]", count, 0, MAX_COUNT)
