"""Property-based tests (Hypothesis) of the wire parsers of docs/protocol.md.

What a client or a proxy sends is never trusted: every parser must hold its rule for any
input, and never raise (except `parse_header`, whose one error is `InvalidRelease`).
"""

from __future__ import annotations

import asyncio
import json
import re
from email.message import Message
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spa_version import VersionMiddleware
from spa_version.current import UNRELEASED_LABEL, CurrentVersion
from spa_version.middleware import CLIENT_QUERY_PARAM
from spa_version.protocol import (
    format_header,
    parse_client_epoch,
    parse_client_query,
    parse_header,
)
from spa_version.release import DEFAULT_POLICY, POLICIES, InvalidRelease, Release
from spa_version.responses import is_document

NAME = CLIENT_QUERY_PARAM.encode("ascii")
# No per-example deadline and no "too slow" health check: on a loaded CI machine a slow
# example is not a failure. Every property below still runs its full set of examples.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_EPOCH = 10**15 - 1

epochs = st.integers(min_value=1, max_value=MAX_EPOCH)
# Text a browser, proxy or attacker could put into a header: anything, and things close to
# valid lists (digits, commas, whitespace, signs, Unicode digits).
near_lists = st.text(alphabet="0123456789, \t-+.xe\u0663\u00b2", max_size=40)
any_bytes = st.binary(max_size=64)
ows = st.text(alphabet=" \t", max_size=3)


def model(value: bytes) -> int | None:
    """The rule of docs/protocol.md, written independently: a regex per element."""
    valid = [
        int(element)
        for element in value.split(b",")
        if re.fullmatch(rb"[ \t]*[0-9]{1,15}[ \t]*", element) and int(element) >= 1
    ]
    return max(valid, default=None)


def highest(*values: int | None) -> int | None:
    return max((v for v in values if v is not None), default=None)


# -- parse_client_epoch ----------------------------------------------------------


@relaxed
@given(st.one_of(any_bytes, near_lists.map(lambda t: t.encode("utf-8"))))
@example(b"1, 1")
@example(b"\xff")
@example(b"9" * 16)
def test_client_epoch_follows_the_rule_and_never_raises(value: bytes) -> None:
    """Any bytes: the highest element of 1-15 ASCII digits >= 1, else None; no exception."""
    assert parse_client_epoch(value) == model(value)


@relaxed
@given(st.one_of(st.text(max_size=40), near_lists))
def test_text_and_latin1_bytes_agree(value: str) -> None:
    """Text (WSGI, Django) reads as its Latin-1 bytes; text beyond Latin-1 never raises."""
    result = parse_client_epoch(value)
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        assert result is None or 1 <= result <= MAX_EPOCH
    else:
        assert result == parse_client_epoch(raw)


@relaxed
@given(any_bytes, any_bytes)
def test_joining_two_values_takes_the_higher(first: bytes, second: bytes) -> None:
    """What XHR and proxies do to a repeated header (a ", " join) keeps the highest epoch."""
    assert parse_client_epoch(first + b", " + second) == highest(
        parse_client_epoch(first), parse_client_epoch(second)
    )


@relaxed
@given(epochs, st.lists(st.one_of(epochs.map(str), near_lists), max_size=5), ows, ows)
def test_a_current_client_is_never_refused(epoch: int, others: list[str], before: str, after: str) -> None:
    """Whatever else the list holds, the result is at least the client's own epoch."""
    value = ",".join([*others, f"{before}{epoch}{after}"])
    result = parse_client_epoch(value.encode("utf-8"))
    assert result is not None and result >= epoch


@relaxed
@given(epochs, ows, ows)
def test_surrounding_whitespace_is_ignored(epoch: int, before: str, after: str) -> None:
    """SP and HTAB around the value (RFC 9110 OWS) do not matter."""
    assert parse_client_epoch(f"{before}{epoch}{after}".encode("ascii")) == epoch


# -- the websocket query parameter -----------------------------------------------


@relaxed
@given(any_bytes)
@example(b"spa-client-version=%FF")
@example(b"spa-client-version=%")
@example(b"spa-client-version=\xff\xfe")
def test_query_never_raises(query: bytes) -> None:
    """Any raw query string: None or a valid epoch."""
    result = parse_client_query(query, NAME)
    assert result is None or 1 <= result <= MAX_EPOCH


@relaxed
@given(
    epochs,
    st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=4),
    st.integers(min_value=0, max_value=4),
)
def test_query_finds_the_epoch_among_other_parameters(
    epoch: int, others: list[tuple[str, str]], at: int
) -> None:
    """However the browser percent-encodes the other parameters, the epoch is found."""
    others = [(k, v) for k, v in others if k != CLIENT_QUERY_PARAM]
    pairs = [*others[:at], (CLIENT_QUERY_PARAM, str(epoch)), *others[at:]]
    assert parse_client_query(urlencode(pairs).encode("ascii"), NAME) == epoch


@relaxed
@given(any_bytes)
def test_query_value_follows_the_header_rule(value: bytes) -> None:
    """A percent-encoded value reads exactly as the same bytes in the header would."""
    query = NAME + b"=" + quote_from_bytes(value, safe="").encode("ascii")
    assert parse_client_query(query, NAME) == parse_client_epoch(value)


class _AcceptingApp:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await receive()
        await send({"type": "websocket.accept"})


_MIN = 5


@relaxed
@given(any_bytes, st.lists(any_bytes, max_size=2))
@example(b"spa-client-version=%FF", [])
@example(b"spa-client-version=%E2%82%AC", [b"\xff"])
def test_websocket_handshake_never_fails_on_client_input(query: bytes, header_values: list[bytes]) -> None:
    """Through the middleware, any query and header bytes give an accept or the stale answer."""
    app = _AcceptingApp()
    middleware = VersionMiddleware(app, store="memory://properties", fallback=f"{_MIN}; label=p; min={_MIN}")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "query_string": query,
        "headers": [(b"x-spa-client-version", value) for value in header_values],
        "extensions": {"websocket.http.response": {}},
    }

    async def handshake() -> None:
        # As a server runs it: lifespan startup (the first read of the empty store keeps
        # the fallback), the connection, shutdown.
        await middleware.startup()
        try:
            await middleware(scope, receive, send)
        finally:
            await middleware.shutdown()

    asyncio.run(handshake())
    client = highest(parse_client_query(query, NAME), *(parse_client_epoch(v) for v in header_values))
    if client is not None and client < _MIN:
        assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 409
        assert app.calls == 0
    else:
        assert sent[0]["type"] == "websocket.accept"
        assert app.calls == 1


# -- parse_header ----------------------------------------------------------------

labels = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", min_size=1, max_size=64
)


@st.composite
def releases(draw: st.DrawFn) -> Release:
    epoch = draw(epochs)
    minimum = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=epoch)))
    return Release(epoch, draw(labels), draw(st.sampled_from(POLICIES)), minimum)


@relaxed
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80)))
@example(b"\xff")
@example("5; min=\u0663")
def test_parse_header_raises_only_invalid_release(value: str | bytes) -> None:
    """Any input: a parsed version with a sane epoch, or InvalidRelease (nothing else)."""
    try:
        parsed = parse_header(value)
    except InvalidRelease:
        return
    # 0: the unreleased value (docs/protocol.md, "Before the first release").
    assert 0 <= parsed.epoch <= MAX_EPOCH
    assert parsed.min_compatible is None or 1 <= parsed.min_compatible <= MAX_EPOCH


@relaxed
@given(st.one_of(st.none(), labels), st.one_of(st.none(), st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True)))
def test_the_unreleased_value_parses_back_and_is_no_release(build: str | None, slot: str | None) -> None:
    """Whatever build (and slot) a process declares, the value it stamps before the first
    release parses to epoch 0 with that build as label (or ``unreleased``), no min, no
    slot; the endpoint's record says the same; and the snapshot holds no release."""
    current = CurrentVersion("X-SPA-Version", slot, deployed=build)
    assert current.offer_unreleased()
    snapshot = current.snapshot
    assert snapshot.release is None and snapshot.min_compatible is None
    assert snapshot.header is not None and snapshot.timing is not None
    value = snapshot.header[1]
    assert b"slot=" not in value
    parsed = parse_header(value)
    label = UNRELEASED_LABEL if build is None else build
    fields = (parsed.epoch, parsed.label, parsed.policy, parsed.min_compatible)
    assert fields == (0, label, DEFAULT_POLICY, None)
    assert json.loads(snapshot.body) == {
        "epoch": 0,
        "label": label,
        "policy": DEFAULT_POLICY,
        "min_compatible": None,
        "created_at": "",
        "note": None,
    }
    assert snapshot.timing[1] == b'spa-version;desc="' + value + b'"'
    # The first release replaces it, whatever its epoch, and a later empty read does not
    # bring it back.
    assert current.offer(Release(1, "first"))
    assert not current.offer_unreleased()
    assert current.release == Release(1, "first")


@relaxed
@given(releases())
def test_parse_header_inverts_format_header(release: Release) -> None:
    """Every release the server can stamp parses back to the same fields."""
    parsed = parse_header(format_header(release))
    assert (parsed.epoch, parsed.label, parsed.policy, parsed.min_compatible) == (
        release.epoch,
        release.label,
        release.policy,
        release.min_compatible,
    )


@relaxed
@given(releases(), ows, ows, st.text(alphabet="abcxyz", min_size=1, max_size=5))
def test_parse_header_ignores_spaces_and_unknown_parameters(
    release: Release, space: str, space2: str, unknown: str
) -> None:
    """Whitespace around ; and = and parameters it does not know change nothing."""
    value = format_header(release).replace("; ", f"{space};{space2}").replace("=", f"{space2}={space}")
    value += f"; {unknown}x=1; {unknown}"
    parsed = parse_header(value)
    assert (parsed.epoch, parsed.label, parsed.policy, parsed.min_compatible) == (
        release.epoch,
        release.label,
        release.policy,
        release.min_compatible,
    )


def _reference_document(content_type: str) -> bool:
    """The standard library's parse of a ``Content-Type`` value (RFC 2045 syntax)."""
    message = Message()
    message["Content-Type"] = content_type
    return message.get_content_type() in {"text/html", "application/xhtml+xml"}


@relaxed
@given(
    st.one_of(
        st.text(max_size=40),
        st.text(alphabet="TEXThtmlapicon/+x; =\t", max_size=30),
        st.sampled_from(["text/html", "application/xhtml+xml", "application/json"]).map(str.upper),
    ),
)
def test_documents_are_html_or_xhtml(content_type: str) -> None:
    """`is_document`: an HTML or XHTML document (media type in any case, any parameters);
    no content type is no document. Never raises."""
    # Twice: the first answer for a content type is computed, the next remembered.
    assert is_document[content_type] == _reference_document(content_type)
    assert is_document[content_type] == _reference_document(content_type)
    assert not is_document[None]
