"""The wire format, as specified in docs/protocol.md.

Response header (default name ``X-SPA-Version``)::

    X-SPA-Version: 42; label=a1b2c3d-20261126; policy=next-navigation; min=40

The value starts with the epoch as a bare decimal integer, so ``parseInt(value, 10)``
alone already yields the epoch; ``; key=value`` parameters follow, and ``min`` is left
out when the release has no ``min_compatible``. Unknown parameters must be ignored.
Before the first release a process that has read its store stamps the unreleased value,
epoch `UNRELEASED_EPOCH` (0), older than every release::

    X-SPA-Version: 0; label=a1b2c3d-20261126; policy=next-navigation

Request header (default name ``X-SPA-Client-Version``): the client's own epoch, a bare
decimal integer; read as a comma-separated list whose highest valid element counts
(`parse_client_epoch`). A stale client is answered ``409`` with ``X-SPA-Reload``.

Websocket drain: close code 1012 (or 4012 where the server refuses 1012) with the new
release's header value as the reason.

Stream drain: a server-sent event stream ends with one last event (`stream_final_event`)::

    event: spa-version
    data: 43; label=b2; policy=next-navigation
    retry: 1000
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from .release import DEFAULT_POLICY, MAX_EPOCH, InvalidRelease, Release, validate_label, validate_policy

__all__ = [
    "CLIENT_HEADER",
    "CLOSE_CODE_DRAIN",
    "CLOSE_CODE_DRAIN_FALLBACK",
    "CLOSE_CODE_STALE_CLIENT",
    "DEFAULT_ENDPOINT",
    "HEADER",
    "MAX_CLOSE_REASON_BYTES",
    "RELOAD_HEADER",
    "STREAM_EVENT",
    "STREAM_RETRY_MS",
    "UNRELEASED_EPOCH",
    "ParsedVersion",
    "close_reason",
    "format_header",
    "parse_client_epoch",
    "parse_client_query",
    "parse_header",
    "stream_final_event",
]

HEADER = "X-SPA-Version"
CLIENT_HEADER = "X-SPA-Client-Version"
RELOAD_HEADER = "X-SPA-Reload"
DEFAULT_ENDPOINT = "/__spa-version"
# RFC 6455 §7.4.1 / IANA: 1012 "Service Restart", the client may reconnect.
CLOSE_CODE_DRAIN = 1012
# The same drain close where a server refuses to send 1012: autobahn (Daphne) sends only
# 1000 and 3000-4999. A private-use code (RFC 6455 §7.4.2), with the same reason;
# clients treat it exactly like 1012 (docs/protocol.md, "Websocket drain").
CLOSE_CODE_DRAIN_FALLBACK = 4012
# A private-use code (RFC 6455 §7.4.2: 4000-4999) for a stale client's handshake
# when the server cannot send an HTTP 409 (no websocket.http.response extension).
CLOSE_CODE_STALE_CLIENT = 4409
# A close frame's payload is at most 125 bytes, 2 of which are the code.
MAX_CLOSE_REASON_BYTES = 123
# The event type of a stream's last event, and the reconnection time it sets (WHATWG
# HTML, "Server-sent events", 9.2.6: the ``retry`` field is in milliseconds).
STREAM_EVENT = "spa-version"
STREAM_RETRY_MS = 1000
# The epoch of the value stamped before the first release (docs/protocol.md, "Before the
# first release"): below every release's (from 1), and never a release's itself.
UNRELEASED_EPOCH = 0
# Epochs longer than this are refused when parsed (`spa_version.release.MAX_EPOCH`).
_MAX_EPOCH_DIGITS = len(str(MAX_EPOCH))


def format_header(release: Release) -> str:
    """The response header value for *release* (always header-safe: see `Release`)."""
    value = f"{release.epoch}; label={release.label}; policy={release.policy}"
    if release.min_compatible is not None:
        value += f"; min={release.min_compatible}"
    return value


def close_reason(release: Release) -> str:
    """The websocket close reason announcing *release* (fits a close frame)."""
    reason = format_header(release)
    if len(reason.encode("ascii")) > MAX_CLOSE_REASON_BYTES:
        reason = str(release.epoch)
    return reason


def stream_final_event(
    header_value: bytes, *, retry_ms: int = STREAM_RETRY_MS, boundary: bool = True
) -> bytes:
    """The last event of a drained server-sent event stream, as body bytes.

    *header_value* is the new release's ``X-SPA-Version`` value (ASCII, one line: see
    `format_header`), sent as the ``data`` of an event of type `STREAM_EVENT`, with a
    ``retry`` of *retry_ms* milliseconds (WHATWG HTML, "Server-sent events", 9.2.6).
    When the stream's last chunk did not end an event (*boundary* False), a blank line
    comes first: it dispatches what the app left half-sent, so that the lines of this
    event are not read as part of it.
    """
    lead = b"" if boundary else b"\n\n"
    return b"%sevent: %s\ndata: %s\nretry: %d\n\n" % (lead, STREAM_EVENT.encode(), header_value, retry_ms)


@dataclass(frozen=True, slots=True)
class ParsedVersion:
    """What a client can learn from one header value; ``epoch`` 0 (`UNRELEASED_EPOCH`)
    is the value stamped before the first release."""

    epoch: int
    label: str | None = None
    policy: str = DEFAULT_POLICY
    min_compatible: int | None = None


def _parse_epoch(text: str, minimum: int = 1) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > _MAX_EPOCH_DIGITS:
        raise InvalidRelease(f"invalid epoch {text!r}")
    epoch = int(text)
    if epoch < minimum:
        raise InvalidRelease(f"invalid epoch {text!r}")
    return epoch


def parse_header(value: str | bytes) -> ParsedVersion:
    """Parse a response header value; raise `InvalidRelease` if it is malformed.

    The epoch is 0 to `spa_version.release.MAX_EPOCH` (0: the unreleased value, stamped
    before the first release), ``min`` 1 to it. Unknown parameters are ignored so the
    format can grow.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRelease("header value is not ASCII") from None
    head, *params = value.split(";")
    epoch = _parse_epoch(head, UNRELEASED_EPOCH)
    label: str | None = None
    policy = DEFAULT_POLICY
    min_compatible: int | None = None
    for param in params:
        key, sep, val = param.partition("=")
        if not sep:
            continue
        key, val = key.strip(), val.strip()
        if key == "label":
            label = validate_label(val)
        elif key == "policy":
            policy = validate_policy(val)
        elif key == "min":
            min_compatible = _parse_epoch(val)
    return ParsedVersion(epoch, label, policy, min_compatible)


def parse_client_epoch(value: bytes | str) -> int | None:
    """The client's epoch in one request header value (or query parameter value), or None.

    The rule (docs/protocol.md, "Request header"): the value is a comma-separated list,
    because XHR joins a header set twice into one value (``1, 1``; XHR standard,
    ``setRequestHeader`` "combine") and proxies and WSGI servers join repeated field
    lines the same way (RFC 9110 §5.3). Each element is stripped of surrounding SP and
    HTAB (RFC 9110 §5.6.3, OWS); elements that are not 1-15 ASCII digits with a value
    >= 1 are ignored; the highest valid element is the epoch, so a current client is
    never refused. None when no element is valid.

    *value* is the raw bytes (ASGI) or text (WSGI and Django hand header values over as
    Latin-1 text, PEP 3333). It never raises, whatever it holds.
    """
    if isinstance(value, str):
        # Latin-1 round-trips what a WSGI server decoded; anything beyond it is no digit.
        value = value.encode("latin-1", "replace")
    if 0 < len(value) <= _MAX_EPOCH_DIGITS and value.isdigit():  # the common case: one bare epoch
        epoch = int(value)
        return epoch if epoch >= 1 else None
    best: int | None = None
    for element in value.split(b","):
        element = element.strip(b" \t")
        # bytes.isdigit() is ASCII-only: no Unicode digits get through.
        if 0 < len(element) <= _MAX_EPOCH_DIGITS and element.isdigit():
            epoch = int(element)
            if epoch >= 1 and (best is None or epoch > best):
                best = epoch
    return best


def parse_client_query(query: bytes, name: bytes) -> int | None:
    """The client's epoch from the query parameter *name* of a raw query string, or None.

    For websocket handshakes, where a browser cannot set headers
    (``new WebSocket("/ws?spa-client-version=41")``). The query is split on ``&``, names
    and values are percent-decoded to bytes (``+`` is a space, as in
    application/x-www-form-urlencoded), and every occurrence of *name* is read with
    `parse_client_epoch`: the highest valid epoch wins. Never raises: a value that is not
    valid percent-encoding or not UTF-8 (``%FF``) is just not an epoch.
    """
    best: int | None = None
    for pair in query.split(b"&"):
        key, _, value = pair.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) != name:
            continue
        epoch = parse_client_epoch(unquote_to_bytes(value.replace(b"+", b" ")))
        if epoch is not None and (best is None or epoch > best):
            best = epoch
    return best
