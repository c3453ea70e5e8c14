"""Request pinning: a tab's requests reach the slot its code was loaded from (docs/protocol.md, "Pinning").

Blue/green deploys run two fixed sets of processes, the *slots*, that swap roles at each
release (docs/deploy-haproxy.md). A process that declares its slot (the ``slot`` option
of `spa_version.options.Options`, or ``SPA_VERSION_SLOT``) says so in its version header
(``X-SPA-Version: 42; label=...; slot=blue``, built once per release by
`spa_version.current.CurrentVersion`, so stamping costs nothing more per request). The
JS helper remembers the slot of the page it was loaded with and sends it back as
``X-SPA-Pin: blue`` on its own requests; the balancer routes on that header. The process
itself routes nothing: it only counts the pinned requests it served, for ``spa-version
status`` (`PinCounter`, owned by the process's `spa_version.deploy.Deployment`).

A slot is a token: 1 to 32 characters of ``A-Z a-z 0-9 _ . -``. A pin value is read as
the first element of a comma-separated list (XHR and proxies join repeated headers,
RFC 9110 §5.3), stripped of spaces and tabs; anything that is not a token is no pin.
Reading never raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "PIN_HEADER",
    "SLOT_ENV",
    "PinCounter",
    "parse_pin",
    "validate_slot",
]

#: The request header the JS helper sends its slot in.
PIN_HEADER = "X-SPA-Pin"
_PIN_HEADER = PIN_HEADER.lower().encode("ascii")
#: The environment variable declaring the slot (read by `spa_version.options`).
SLOT_ENV = "SPA_VERSION_SLOT"

_SLOT_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_SLOT_BYTES_RE = re.compile(rb"[A-Za-z0-9_.-]{1,32}")

Headers = Iterable[tuple[bytes, bytes]]


def validate_slot(slot: str) -> str:
    """*slot* if it is a valid slot token, else ValueError."""
    if not isinstance(slot, str) or not _SLOT_RE.fullmatch(slot):
        raise ValueError(f"invalid slot {slot!r}: 1-32 characters of A-Z a-z 0-9 _ . -")
    return slot


def parse_pin(value: bytes) -> str | None:
    """The slot a pin header value names, or None (malformed, empty: no pin). Never raises."""
    first = value.split(b",", 1)[0].strip(b" \t")
    if _SLOT_BYTES_RE.fullmatch(first):
        return first.decode("ascii")
    return None


class PinCounter:
    """Requests pinned to this process's slot, batched in memory until the next heartbeat."""

    __slots__ = ("slot", "count_here", "_raw")

    def __init__(self, slot: str) -> None:
        self.slot = validate_slot(slot)
        self._raw = slot.encode("ascii")
        self.count_here = 0

    def count(self, headers: Headers) -> None:
        """Count one request if it is pinned to our slot (on the request path: keep it small)."""
        for key, value in headers:
            if key == _PIN_HEADER:
                if value == self._raw or parse_pin(value) == self.slot:
                    self.count_here += 1
                return

    def take(self) -> int:
        """The count since the last call, reset."""
        n, self.count_here = self.count_here, 0
        return n

    def describe(self) -> dict[str, Any]:
        """The fleet record's pinning fields (taking the count)."""
        return {"slot": self.slot, "pinned": self.take()}
