"""Property-based tests (Hypothesis) of how the ASGI middleware stamps response headers.

The middleware appends its header straight away when no response header could need the
full rule (its own name in any case, or ``Access-Control-Allow-Origin``), and otherwise
hands the list to `spa_version.responses.stamp_headers`. Whatever the app sends, in
whatever container the ASGI spec allows, the outcome must be the rule of docs/protocol.md:
the app's other headers unchanged and in order, exactly one version header (ours, never
the app's), and on a CORS response our names in ``Access-Control-Expose-Headers``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spa_version import VersionMiddleware

relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200)

OURS = b"x-spa-version"
ACAO = b"access-control-allow-origin"
ACEH = b"access-control-expose-headers"


def _cases(name: bytes) -> st.SearchStrategy[bytes]:
    """*name* with any mix of upper and lower case letters."""
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: bytes(c - 32 if u and 97 <= c <= 122 else c for c, u in zip(name, upper, strict=True))
    )


# Names that take each branch: ours and ACAO/ACEH in any case, other names of the same
# lengths (13 and 27 bytes), and anything else.
names = st.one_of(
    _cases(OURS),
    _cases(ACAO),
    _cases(ACEH),
    st.sampled_from([b"cache-control", b"last-modified", b"accept-ranges", b"content-type", b"etag"]),
    st.binary(min_size=27, max_size=27).map(lambda b: b.replace(b":", b"-")),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=40).map(str.encode),
)
values = st.sampled_from(
    [b"x", b"https://spa.example", b"*", b"X-Other, X-Spa-Version", b"999; label=forged"]
)
header_lists = st.lists(st.tuples(names, values), max_size=8)


def _names(value: bytes) -> set[str]:
    """The names of one ``Access-Control-Expose-Headers`` value (a comma list, Fetch standard)."""
    return {name.strip().lower() for name in value.decode("latin-1").split(",") if name.strip()}


containers = st.sampled_from(["list", "tuple", "generator"])
# An app's headers: a list, tuple or generator of pairs, or no "headers" key at all.
responses = st.one_of(st.tuples(header_lists, containers), st.just(([], "missing")))


def _wrap(headers: list[tuple[bytes, bytes]], container: str) -> Iterable[tuple[bytes, bytes]] | None:
    if container == "list":
        return list(headers)
    if container == "tuple":
        return tuple(headers)
    if container == "generator":
        return (pair for pair in headers)
    assert not headers  # "missing": the app sends no headers key at all
    return None


def _stamped(
    headers: list[tuple[bytes, bytes]], container: str, expose: bool, build: str | None = None
) -> tuple[list[Any], bytes]:
    """The headers a real VersionMiddleware (memory store, one release) sends for an app
    that answers with *headers* in *container*, and our header's value. Our Server-Timing
    metric is checked here (the last header, beside any of the app's) and left out.
    With a declared *build*, the middleware takes its other path, the one that also
    looks for event streams (spa_version.deploy.streams): the outcome must be the same."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        start: dict[str, Any] = {"type": "http.response.start", "status": 200}
        wrapped = _wrap(headers, container)
        if wrapped is not None:
            start["headers"] = wrapped
        await send(start)
        await send({"type": "http.response.body", "body": b"ok"})

    async def run() -> tuple[list[Any], bytes]:
        mw = VersionMiddleware(
            app, store="memory://", app_name="props", expose_header=expose, fallback="7", build=build
        )
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
        await mw(scope, receive, send)
        header, timing = mw.current.snapshot.header, mw.current.snapshot.timing
        await mw.shutdown()
        assert header is not None and timing is not None
        out = list(sent[0]["headers"])
        assert out[-1] == (b"server-timing", b'spa-version;desc="' + header[1] + b'"')
        return out[:-1], header[1]

    return asyncio.run(run())


builds = st.sampled_from([None, "7"])


@relaxed
@given(responses, st.booleans(), builds)
def test_the_app_headers_survive_and_ours_is_set_once(
    response: tuple[list[tuple[bytes, bytes]], str], expose: bool, build: str | None
) -> None:
    headers, container = response
    out, value = _stamped(headers, container, expose, build)
    ours = [v for k, v in out if k.lower() == OURS]
    assert ours == [value]
    others = [(k, v) for k, v in out if k.lower() not in (OURS, ACEH)]
    assert others == [(k, v) for k, v in headers if k.lower() not in (OURS, ACEH)]


@relaxed
@given(responses, st.booleans(), builds)
def test_a_cors_response_exposes_our_names(
    response: tuple[list[tuple[bytes, bytes]], str], expose: bool, build: str | None
) -> None:
    headers, container = response
    out, _ = _stamped(headers, container, expose, build)
    cors = any(k.lower() == ACAO for k, _ in headers)
    exposed: set[str] = set()
    for k, v in out:
        if k.lower() == ACEH:
            exposed |= _names(v)
    app_exposed = {name for k, v in headers if k.lower() == ACEH for name in _names(v)}
    if cors and expose:
        assert {"x-spa-version", "x-spa-reload"} <= exposed
    assert app_exposed <= exposed  # the app's own list is never lost
    if not (cors and expose):
        assert exposed == app_exposed
