"""`VersionMiddleware` for Django's ``MIDDLEWARE`` setting: WSGI and ASGI, sync and async.

It does what the ASGI `spa_version.VersionMiddleware` does, the Django way:

- stamps ``X-SPA-Version`` on every response (replacing, never duplicating), and merges
  the header's name into ``Access-Control-Expose-Headers`` when the response carries
  ``Access-Control-Allow-Origin``;
- answers ``GET /__spa-version`` and ``GET /__spa-version.js`` itself;
- refuses stale clients on enforced requests with ``409`` and ``X-SPA-Reload``
  (docs/protocol.md).

The version comes from memory only: `spa_version.django.listener_thread` keeps it fresh
from a background thread, so the request path does no store I/O. Like Django's own
``MiddlewareMixin`` it is both sync- and async-capable, so it adds no thread hop to an
async stack under ASGI.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from ..assets import load_script
from ..cors import copied_headers, is_cross_origin, merge_expose, probe_headers
from ..current import CurrentVersion, Snapshot
from ..options import Options
from ..protocol import DEFAULT_ENDPOINT, RELOAD_HEADER, parse_client_epoch
from ..templating import SCOPE_KEY
from .conf import get_config
from .listener_thread import Followed, listener_thread

__all__ = ["VersionMiddleware", "current_for", "stamp"]

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]

_ACAO = "Access-Control-Allow-Origin"
_ACEH = "Access-Control-Expose-Headers"


def _source(request: HttpRequest | None, config: Options) -> Followed | CurrentVersion:
    # Behind `spa_version.django.asgi.wrap_asgi` (Channels) the ASGI middleware already
    # follows the store and hands its `CurrentVersion` over in the scope: use it, so the
    # header, the endpoint and the meta tag of one response always agree (and no second
    # listener runs). Otherwise, this process's listener thread.
    scope = getattr(request, "scope", None)
    if scope is not None:
        current = scope.get(SCOPE_KEY)
        if isinstance(current, CurrentVersion):
            return current
    return listener_thread().follow(config)


def current_for(request: HttpRequest | None, config: Options) -> CurrentVersion:
    """The `CurrentVersion` that serves *request* (the ASGI wrapper's, else the listener thread's)."""
    source = _source(request, config)
    return source.current if isinstance(source, Followed) else source


def _header_value(snapshot: Snapshot) -> str | None:
    header = snapshot.header
    # ASCII by construction (`CurrentVersion.build`); decoding a ~60-byte value is
    # cheaper than any cache lookup keyed on the snapshot.
    return None if header is None else header[1].decode("ascii")


def stamp(response: HttpResponseBase, config: Options, snapshot: Snapshot) -> None:
    """Set the version header on *response*, and expose it on CORS responses."""
    value = _header_value(snapshot)
    if value is None:
        return
    response.headers[config.header_name] = value  # case-insensitive: replaces any earlier value
    if config.expose_header and _ACAO in response.headers:
        _expose(response, config)


def _expose(response: HttpResponseBase, config: Options) -> None:
    # A cross-origin page can read only the safelisted headers plus those listed here
    # (Fetch standard, CORS); merge, never replace, never duplicate. X-SPA-Reload goes
    # with the version header: a page that reads one reads both (spa_version.cors).
    exposed = response.headers.get(_ACEH)
    merged = merge_expose(exposed, (config.header_name, RELOAD_HEADER))
    if merged != exposed:
        response.headers[_ACEH] = merged


def _cors_request(request: HttpRequest) -> tuple[str, bool] | None:
    """(Origin, whether it is another origin) for a CORS request, else None."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    return origin, is_cross_origin(origin, request.scheme or "http", request.META.get("HTTP_HOST"))


def _probe_request(request: HttpRequest, config: Options, origin: str) -> HttpRequest:
    """The preflight for the version endpoint that asks the app's CORS layer (spa_version.cors)."""
    target = config.endpoint or config.script_path or DEFAULT_ENDPOINT
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


def _for_cors_layer(request: HttpRequest) -> bool:
    # A CORS preflight for the endpoint or the script (a browser's, or the ASGI
    # middleware's question behind wrap_asgi): the app's CORS layer answers it, not us.
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def _is_stale(request: HttpRequest, config: Options, min_compatible: int) -> bool:
    if config.enforce_methods is not None and request.method not in config.enforce_methods:
        return False
    path = request.path_info
    if not path.startswith(config.enforce_paths) or (
        config.enforce_exclude and path.startswith(config.enforce_exclude)
    ):
        return False
    raw = request.headers.get(config.client_header)
    if raw is None:
        return False
    # Repeated header lines arrive joined with "," (WSGI servers, Django's ASGIRequest);
    # parse_client_epoch reads the list (docs/protocol.md).
    client = parse_client_epoch(raw)
    # A missing or malformed header (curl, other services) is never refused.
    return client is not None and client < min_compatible


def _endpoint_response(request: HttpRequest, snapshot: Snapshot) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD"
    else:
        response = HttpResponse(snapshot.body, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def _script_response(request: HttpRequest) -> HttpResponse | None:
    asset = load_script()
    if asset is None:  # a source checkout whose JS was never built: let Django 404
        return None
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD"
        return response
    etag = asset.etag.decode("ascii")
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(asset.body)
    for key, value in asset.headers:
        response[key.decode("ascii")] = value.decode("ascii")
    return response


def _stale_response(config: Options, snapshot: Snapshot) -> HttpResponse:
    body = b'{"error":"stale-client","reload":true,"current":' + snapshot.body + b"}"
    response = HttpResponse(body, status=409, content_type="application/json")
    response["Cache-Control"] = "no-store"
    response[RELOAD_HEADER] = config.reload_location
    return response


def _answer_early(request: HttpRequest, config: Options, snapshot: Snapshot) -> HttpResponse | None:
    """The response the middleware gives itself (endpoint, script, 409), or None."""
    path = request.path_info
    if path == config.endpoint:
        return None if _for_cors_layer(request) else _endpoint_response(request, snapshot)
    if path == config.script_path:
        return None if _for_cors_layer(request) else _script_response(request)
    if snapshot.min_compatible is not None and _is_stale(request, config, snapshot.min_compatible):
        return _stale_response(config, snapshot)
    return None


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
        if self.async_mode:
            # Tell Django's handler that __call__ returns a coroutine (as MiddlewareMixin does).
            markcoroutinefunction(self)
        # Bad settings fail at start-up with ImproperlyConfigured, not on a request.
        get_config()

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        config = get_config()
        source = _source(request, config)
        if isinstance(source, Followed):
            source.wait_first_read()
            source = source.current
        response = _answer_early(request, config, source.snapshot)
        if response is None:
            response = self.get_response(request)  # type: ignore[assignment]
        else:
            cors = _cors_request(request)
            if cors is not None:
                if config.expose_header:
                    _expose(response, config)
                if cors[1]:  # another origin: ask the app's CORS layer (spa_version.cors)
                    answer = self.get_response(_probe_request(request, config, cors[0]))
                    _copy_cors(response, answer)  # type: ignore[arg-type]
        assert response is not None
        # Read at response time: a bump that landed mid-request is served.
        stamp(response, config, source.snapshot)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        config = get_config()
        source = _source(request, config)
        if isinstance(source, Followed):
            await source.async_wait_first_read()
            source = source.current
        response: HttpResponseBase | None = _answer_early(request, config, source.snapshot)
        if response is None:
            response = await self.get_response(request)  # type: ignore[misc]
        else:
            cors = _cors_request(request)
            if cors is not None:
                if config.expose_header:
                    _expose(response, config)
                if cors[1]:
                    answer = await self.get_response(_probe_request(request, config, cors[0]))  # type: ignore[misc]
                    _copy_cors(response, answer)
        assert response is not None
        stamp(response, config, source.snapshot)
        return response
