"""Property-based tests (Hypothesis) of how Django's middleware stamps a response.

Django keeps one value per header name (``ResponseHeaders``), and the middleware looks
for the names that may be absent by taking them out and setting them back
(`spa_version.django.stamping.Stamping.stamp`). Whatever the view answers, the outcome must be
the rule of docs/protocol.md and docs/js.md: the view's other headers unchanged, our
version header set once (replacing the view's), the Server-Timing metric beside the
view's own exactly on a document or a 304 (`spa_version.responses.is_document`), and on a CORS
response ``Access-Control-Allow-Origin`` kept and our names merged into
``Access-Control-Expose-Headers``. Which responses are documents is checked against the
standard library's own ``Content-Type`` parser.
"""

from __future__ import annotations

import functools
from email.message import Message
from typing import Any

from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spa_version.cors import merge_expose
from spa_version.django import VersionMiddleware
from spa_version.protocol import RELOAD_HEADER
from spa_version.release import Release
from tests.support.django_tests import bump, fresh_settings, header_value

relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200)

OURS = "X-SPA-Version"
DOCUMENTS = {"text/html", "application/xhtml+xml"}
MEDIA_TYPES = [
    "text/html",
    "application/xhtml+xml",
    "application/json",
    "text/plain",
    "text/event-stream",
    "text/htmlx",
    "application/xhtml",
    "image/svg+xml",
    "text",
]


def _case(text: str) -> st.SearchStrategy[str]:
    """*text* with any mix of upper and lower case letters."""
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda upper: "".join(c.upper() if u else c.lower() for c, u in zip(text, upper, strict=True))
    )


content_types = st.one_of(
    st.tuples(
        st.sampled_from(MEDIA_TYPES).flatmap(_case),
        st.sampled_from(["", " ", "\t"]),
        st.sampled_from(["", "; charset=utf-8", ";charset=UTF-8", "; q=1; x=y"]),
    ).map("".join),
    st.text(alphabet="texthmlapicon/+; =\t", max_size=30),
)
#: Other names a view may set, in any case: the ones the middleware looks for among them.
OTHER_NAMES = ["Server-Timing", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers", OURS, "ETag"]
OTHER_VALUES = ['db;dur=53, app;desc="render"', "*", "http://a.example", "ETag, X-Request-Id", "v"]
names = st.sampled_from(OTHER_NAMES).flatmap(_case)
others = st.dictionaries(names, st.sampled_from(OTHER_VALUES), max_size=5)
statuses = st.sampled_from([200, 204, 304, 404, 500])


def _is_document(content_type: str | None) -> bool:
    """The reference: the standard library's parse of the media type (RFC 2045 syntax)."""
    if content_type is None:
        return False
    message = Message()
    message["Content-Type"] = content_type
    return message.get_content_type() in DOCUMENTS


@functools.cache
def _release() -> Release:
    return bump(SPA, "props")


def _names(value: str | None) -> list[str]:
    return [name.strip().lower() for name in (value or "").split(",") if name.strip()]


#: One namespace and one release for every example: the host is built once.
SPA = fresh_settings()


@override_settings(SPA_VERSION=SPA)
@relaxed
@given(status=statuses, content_type=st.none() | content_types, extra=others)
def test_a_view_response_is_stamped_by_the_rule(
    status: int, content_type: str | None, extra: dict[str, str]
) -> None:
    release = _release()
    view: dict[str, Any] = {}

    def get_response(request: Any) -> HttpResponse:
        response = HttpResponse(b"x", status=status)
        del response["Content-Type"]
        if content_type is not None:
            response["Content-Type"] = content_type
        for name, value in extra.items():
            response[name] = value
        view["headers"] = {name.lower(): value for name, value in response.items()}
        return response

    response = VersionMiddleware(get_response)(RequestFactory().get("/"))
    before: dict[str, str] = view["headers"]
    after = {name.lower(): value for name, value in response.items()}
    value = header_value(release)

    assert after.pop(OURS.lower()) == value
    metric = f'spa-version;desc="{value}"'
    own = before.get("server-timing")
    if status == 304 or _is_document(content_type):
        assert after.pop("server-timing") == (metric if own is None else f"{own}, {metric}")
    else:
        assert after.pop("server-timing", None) == own
    exposed = before.get("access-control-expose-headers")
    if "access-control-allow-origin" in before:
        merged = after.pop("access-control-expose-headers")
        assert merged == merge_expose(exposed, (OURS, RELOAD_HEADER))
        assert _names(merged).count(OURS.lower()) == 1 and RELOAD_HEADER.lower() in _names(merged)
    else:
        assert after.pop("access-control-expose-headers", None) == exposed
    # Everything else, Access-Control-Allow-Origin included, exactly as the view set it.
    for name in (OURS.lower(), "server-timing", "access-control-expose-headers"):
        before.pop(name, None)
    assert after == before
