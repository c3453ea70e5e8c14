"""`VersionMiddleware` for Django's ``MIDDLEWARE`` setting: WSGI and ASGI, sync and async.

It does what the ASGI `spa_version.VersionMiddleware` does, the Django way:

- stamps ``X-SPA-Version`` on every response (replacing, never duplicating), and merges
  the header's name into ``Access-Control-Expose-Headers`` when the response carries
  ``Access-Control-Allow-Origin``; an HTML document or a ``304`` also gets the value as a
  ``Server-Timing`` metric (`spa_version.responses.is_document`);
- answers ``GET /__spa-version`` and ``GET /__spa-version.js`` itself;
- refuses stale clients on enforced requests with ``409`` and ``X-SPA-Reload``
  (docs/protocol.md), and, on a build cut off by a security release (``bump
  --cutoff``), every pinned request and every request of a client below the cutoff,
  GETs included (docs/protocol.md, "Security fixes").

What it answers itself, and when, is decided in `spa_version.responses`, shared with the
ASGI middleware; this module is the Django adaptation. The version comes from memory
only: `spa_version.django.listener_thread` keeps it fresh from a background thread, so
the request path does no store I/O; a request reads one precomputed
`spa_version.django.stamping.Stamping` (``SERVING.stamping``), which also sets the
headers. Like Django's own
``MiddlewareMixin`` it is both sync- and async-capable, so it adds no thread hop to an
async stack under ASGI.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from ..cors import copied_headers, is_cross_origin, probe_headers
from ..current import Snapshot
from ..deploy.sigterm import hook_sigterm_for_exit
from ..host import Host
from ..pinning import PIN_HEADER, parse_pin
from ..protocol import parse_client_epoch
from ..responses import Answer, cut_off, outdated
from ..templating import SCOPE_KEY
from .conf import SERVING, settings_host, start_stamping
from .listener_thread import leave_fleet, listener_thread

__all__ = ["VersionMiddleware"]

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]

logger = logging.getLogger("spa_version")


def _answer(request: HttpRequest, host: Host, snapshot: Snapshot) -> Answer | None:
    """Our own answer (the endpoint, the script, a 409), or None: the app answers."""
    responses = host.responses
    path = request.path_info
    method = request.method or "GET"
    if path == responses.endpoint or path == responses.script_path:
        # A CORS preflight for them (a browser's, or the ASGI middleware's question
        # behind wrap_asgi): the app's CORS layer answers it, not us.
        if method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return None
        if_none_match = _raw(request.headers.get("If-None-Match", ""))
        return responses.own(path, method, if_none_match, snapshot)
    count = host.deployment.count_request
    # A build is declared: the fleet record counts the request, unless the ASGI middleware
    # around Django (`spa_version.django.asgi.wrap_asgi`, which marks the ASGI scope) has.
    if count is not None and not _through_wrapper(request):
        count(_counted_headers(request, host.options.client_header))
    cutoff = host.deployment.cutoff_epoch
    if cutoff is not None:
        # This build is cut off by a security release: the rule both middlewares apply
        # (spa_version.responses.cut_off; docs/protocol.md, "Security fixes").
        pin = parse_pin(_raw(request.headers.get(PIN_HEADER, "")))
        if cut_off(_client_epoch(request, host), pin, cutoff):
            return responses.stale(snapshot)
    minimum = snapshot.min_compatible
    if minimum is None or not responses.enforces(method, path):
        return None
    return responses.stale(snapshot) if outdated(_client_epoch(request, host), minimum) else None


def _through_wrapper(request: HttpRequest) -> bool:
    """Whether *request* came through the ASGI middleware around Django
    (`spa_version.django.asgi.wrap_asgi`), which marks the ASGI scope."""
    return SCOPE_KEY in getattr(request, "scope", ())


def _client_epoch(request: HttpRequest, host: Host) -> int | None:
    """The client's epoch from its header, or None (absent or unreadable; docs/protocol.md)."""
    # Repeated header lines arrive joined with "," (WSGI servers, Django's ASGIRequest);
    # parse_client_epoch reads the list (docs/protocol.md).
    raw = request.headers.get(host.options.client_header)
    return None if raw is None else parse_client_epoch(raw)


@functools.lru_cache(maxsize=8)
def _counted_names(client_header: str) -> tuple[tuple[str, bytes], ...]:
    """The headers a request is counted by (the client's epoch, the pin): for each, its
    ``request.META`` key (PEP 3333: ``HTTP_`` and the name upper-cased, ``-`` as ``_``)
    and its ASGI name (lowercase bytes), as `spa_version.deploy.Deployment.count_request`
    reads them."""
    return tuple(
        ("HTTP_" + name.upper().replace("-", "_"), name.lower().encode("ascii"))
        for name in (client_header, PIN_HEADER)
    )


def _counted_headers(request: HttpRequest, client_header: str) -> list[tuple[bytes, bytes]]:
    """The request's client-epoch and pin headers as ASGI headers, for the fleet counts."""
    meta = request.META
    return [(name, _raw(meta[key])) for key, name in _counted_names(client_header) if key in meta]


def _raw(value: str) -> bytes:
    """A request header's value as the bytes the client sent.

    Header values reach Django decoded as latin-1 (PEP 3333; Django's ASGIRequest), so
    encoding them back restores the bytes. A character outside latin-1 (a test client, a
    server that decodes otherwise) becomes ``?``: the value is then unreadable to the
    parsers, never a 500.
    """
    return value.encode("latin-1", "replace")


def _own_response(
    request: HttpRequest, host: Host, snapshot: Snapshot
) -> tuple[HttpResponse, HttpRequest | None] | None:
    """Our own response, and the preflight that asks the app's CORS layer about it (None:
    not needed, `spa_version.cors`); None when the app answers the request."""
    answer = _answer(request, host, snapshot)
    if answer is None:
        return None
    responses = host.responses
    response = HttpResponse(answer.body, status=answer.status)
    if all(name != b"content-type" for name, _ in answer.headers):
        del response["Content-Type"]  # not Django's text/html default on a 304 or a 405
    origin = request.headers.get("Origin")
    for name, value in answer.headers + (responses.own_cors() if origin is not None else []):
        response[name.decode("latin-1")] = value.decode("latin-1")
    if origin is None or not is_cross_origin(origin, request.scheme or "http", request.META.get("HTTP_HOST")):
        return response, None
    return response, _probe_request(request, responses.probe_path, origin)


def _probe_request(request: HttpRequest, target: str, origin: str) -> HttpRequest:
    """The preflight for *target* that asks the app's CORS layer (spa_version.cors)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "OPTIONS",
        "SCRIPT_NAME": request.META.get("SCRIPT_NAME", ""),
        "PATH_INFO": target,
        "QUERY_STRING": "",
        "SERVER_NAME": request.META.get("SERVER_NAME", "localhost"),
        "SERVER_PORT": str(request.META.get("SERVER_PORT", "80")),
        "CONTENT_LENGTH": "0",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": request.scheme,
    }
    # What a proxy tells Django about the request (SECURE_PROXY_SSL_HEADER, USE_X_FORWARDED_HOST).
    environ.update({k: v for k, v in request.META.items() if k.startswith("HTTP_X_FORWARDED_")})
    for name, value in probe_headers(origin, request.method or "GET", request.META.get("HTTP_HOST")):
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return WSGIRequest(environ)


def _copy_cors(response: HttpResponseBase, answer: HttpResponseBase) -> None:
    for name, value in copied_headers(answer.status_code, answer.headers.items()):
        response.headers[name] = value


class VersionMiddleware:
    """Stamp the current deploy version on every Django response.

    Add it near the top of ``MIDDLEWARE`` (above anything that can answer on its own,
    such as ``SecurityMiddleware``, ``CommonMiddleware`` or the cache middleware)::

        MIDDLEWARE = [
            "spa_version.django.VersionMiddleware",
            "django.middleware.security.SecurityMiddleware",
            ...
        ]
        SPA_VERSION = {"URL": "redis://localhost:6379/0", "APP": "shop"}

    See docs/django.md for every key of ``SPA_VERSION``.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        if get_response is None:
            raise ValueError("get_response must be provided.")
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        # A clean exit removes the fleet record, under uvicorn and runserver too (their
        # SIGTERM skips the exit hooks): docs/django.md, "Fleet status and the deploy switch".
        hook_sigterm_for_exit(leave_fleet)
        if self.async_mode:
            # Tell Django's handler that __call__ returns a coroutine (as MiddlewareMixin does).
            markcoroutinefunction(self)
        # Bad settings fail at start-up with ImproperlyConfigured, not on a request.
        settings_host()

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        stamping = SERVING.stamping  # the settings' host at its version (spa_version.django.conf)
        if stamping is None:  # early in a process's life, or new settings
            host = settings_host()
            listener_thread().serve(host)  # follow the store, wait for a first read
            stamping = start_stamping(host)
        if request.path_info in stamping.own_paths or stamping.screens:
            if stamping.wrapped and _through_wrapper(request):
                return self.get_response(request)
            ours = _own_response(request, stamping.host, stamping.snapshot)
            if ours is not None:
                response, probe = ours
                if probe is not None:  # another origin: ask the app's CORS layer (spa_version.cors)
                    _copy_cors(response, self.get_response(probe))  # type: ignore[arg-type]
                (SERVING.stamping or stamping).stamp(response)
                return response
        response = self.get_response(request)  # type: ignore[assignment]
        # Read at response time: a bump that landed mid-request is served.
        (SERVING.stamping or stamping).stamp(response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        stamping = SERVING.stamping
        if stamping is None:
            host = settings_host()
            await listener_thread().async_serve(host)
            stamping = start_stamping(host)
        if request.path_info in stamping.own_paths or stamping.screens:
            if stamping.wrapped and _through_wrapper(request):
                return await self.get_response(request)  # type: ignore[no-any-return,misc]
            ours = _own_response(request, stamping.host, stamping.snapshot)
            if ours is not None:
                own, probe = ours
                if probe is not None:
                    _copy_cors(own, await self.get_response(probe))  # type: ignore[misc]
                (SERVING.stamping or stamping).stamp(own)
                return own
        response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
        (SERVING.stamping or stamping).stamp(response)
        return response
