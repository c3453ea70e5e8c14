"""The Django project the Django benchmark serves: settings, views, the floor middleware.

One module is the settings module (``DJANGO_SETTINGS_MODULE=bench.django_app``), the
URLconf and the WSGI/ASGI entry points, so that gunicorn and uvicorn load the same
thing. ``BENCH_DJANGO_VARIANT`` picks ``MIDDLEWARE``:

- ``bare``: no middleware at all.
- ``floor``: `FloorStamp`, the least a Django middleware that stamps can do: set one
  precomputed header on the response. Sync- and async-capable, as ours is, so that
  under ASGI neither pays a thread hop the other does not.
- ``ours``: ``spa_version.django.VersionMiddleware`` following ``BENCH_STORE_URL``.
- ``cors``: django-cors-headers' ``CorsMiddleware``, a middleware most Django APIs that
  serve a SPA already run. The benchmark sends an allowed ``Origin`` on every request
  (to every variant), so it does its usual work: two more response headers.

``/`` is a sync view (WSGI), ``/a`` the same view written ``async`` (ASGI: with every
middleware async-capable, Django then runs the whole request on the event loop).

    gunicorn bench.django_app:application        uvicorn bench.django_app:asgi_application
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

DJANGO_VARIANTS = ("bare", "floor", "ours", "cors")
#: What the floor stamps: the same value ours stamps after the benchmark's one bump.
HEADER_NAME = "X-SPA-Version"
ORIGIN = "http://spa.example"

MIDDLEWARE_BY_VARIANT: dict[str, list[str]] = {
    "bare": [],
    "floor": ["bench.django_app.FloorStamp"],
    "ours": ["spa_version.django.VersionMiddleware"],
    "cors": ["corsheaders.middleware.CorsMiddleware"],
}

# -- settings --------------------------------------------------------------------------
DEBUG = False
SECRET_KEY = "bench-only-not-secret"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bench.django_app"
INSTALLED_APPS = ["corsheaders", "spa_version.django"]
MIDDLEWARE = MIDDLEWARE_BY_VARIANT[os.environ.get("BENCH_DJANGO_VARIANT", "bare")]
DATABASES: dict[str, Any] = {}
USE_TZ = True
LOGGING_CONFIG = None
CORS_ALLOWED_ORIGINS = [ORIGIN]
SPA_VERSION = {
    "URL": os.environ.get("BENCH_STORE_URL", "memory://"),
    "APP": os.environ.get("BENCH_APP", "bench"),
}
FLOOR_VALUE = os.environ.get("BENCH_HEADER_VALUE", "1; label=bench-1; policy=next-navigation")


class FloorStamp:
    """Set one precomputed header on every response, nothing else (sync and async)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.value = settings.FLOOR_VALUE
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        response = self.get_response(request)
        response.headers[HEADER_NAME] = self.value
        return response

    async def __acall__(self, request: Any) -> Any:
        response = await self.get_response(request)
        response.headers[HEADER_NAME] = self.value
        return response


def index(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(b"ok", content_type="text/plain")


async def async_index(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(b"ok", content_type="text/plain")


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("", index), path("a", async_index)]


def __getattr__(name: str) -> Any:
    # The URLconf and the entry points are built lazily: as a settings module this file
    # is imported before Django is configured, when django.urls cannot be used yet.
    if name == "urlpatterns":
        return _urlpatterns()
    if name == "application":
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()
    if name == "asgi_application":
        from django.core.asgi import get_asgi_application

        return get_asgi_application()
    raise AttributeError(name)


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.django_app")
