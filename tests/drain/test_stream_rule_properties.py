"""Which responses the drain treats as event streams (`spa_version.deploy.streams`), and
the last event it sends (`spa_version.protocol.stream_final_event`): property-based."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spa_version import VersionMiddleware
from spa_version.deploy.streams import is_event_stream
from spa_version.protocol import STREAM_EVENT, STREAM_RETRY_MS, stream_final_event
from tests.support.sse import parse_events

# No per-example deadline and no "too slow" health check: on a loaded machine a slow
# example is not a failure (as in tests/test_protocol_properties.py).
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.binary(max_size=20)
values = st.binary(max_size=60)
headers = st.lists(st.tuples(names, values), max_size=8)


@relaxed
@given(headers)
def test_never_raises_on_any_headers(pairs: list[tuple[bytes, bytes]]) -> None:
    assert is_event_stream(pairs) in (True, False)


@relaxed
@given(
    st.sampled_from([b"content-type", b"Content-Type", b"CONTENT-TYPE"]),
    st.sampled_from([b"text/event-stream", b"Text/Event-Stream", b"TEXT/EVENT-STREAM"]),
    st.sampled_from([b"", b";charset=utf-8", b"; charset=utf-8", b" ;x=1"]),
    st.lists(st.tuples(st.sampled_from([b"cache-control", b"x-accel-buffering"]), values), max_size=3),
)
def test_event_stream_in_any_case_with_parameters(
    name: bytes, media: bytes, params: bytes, others: list[tuple[bytes, bytes]]
) -> None:
    assert is_event_stream([*others, (name, media + params)])


@relaxed
@given(
    st.sampled_from([b"text/plain", b"text/html; charset=utf-8", b"text/event-streams", b"application/json"])
)
def test_other_types_are_not_streams(media: bytes) -> None:
    assert not is_event_stream([(b"content-type", media)])
    assert not is_event_stream([(b"x-content-type", b"text/event-stream")])
    assert not is_event_stream(None) and not is_event_stream([])


@relaxed
@given(st.lists(st.sampled_from(["tick", "data: 1", "data: 2", "", "event: x", ": ping"]), max_size=8))
def test_the_last_event_is_read_on_its_own_after_any_half_sent_event(lines: list[str]) -> None:
    """Whatever the app left half-sent, an EventSource reads the drain's event intact."""
    body = "\n".join(lines).encode()
    at_boundary = body == b"" or body.endswith(b"\n\n")
    header = b"43; label=b2; policy=next-navigation"
    events = parse_events(body + stream_final_event(header, boundary=at_boundary))
    assert events[-1].event == STREAM_EVENT
    assert (events[-1].data, events[-1].retry) == (header.decode(), STREAM_RETRY_MS)


@relaxed
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"content-type", b"Content-Type", b"x-other-hdr1", b"cache-control"]),
            st.one_of(
                values,
                st.sampled_from([b"text/event-stream", b"TEXT/EVENT-STREAM; x=1", b"text/event-streamy"]),
                st.binary(min_size=17, max_size=30).map(lambda b: b[:16] + b"m" + b[17:]),
            ),
        ),
        max_size=5,
    )
)
def test_the_middleware_tracks_exactly_the_responses_the_rule_names(pairs: list[tuple[bytes, bytes]]) -> None:
    """The middleware's request path decides with a shortcut before the rule; whatever the
    app's headers, a response is tracked as a stream exactly when `is_event_stream` says so."""
    seen: list[int | None] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(pairs)})
        seen.append(middleware.deployment.streams)  # while the response is open
        await send({"type": "http.response.body", "body": b""})

    middleware = VersionMiddleware(app, store="memory://", app_name="rule", build="A", fallback="1; label=A")

    async def run() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            pass

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
        try:
            await middleware(scope, receive, send)
        finally:
            await middleware.shutdown()

    asyncio.run(run())
    assert seen == [1 if is_event_stream(pairs) else 0]
