"""The Django + WhiteNoise set-up of docs/django.md, "Serving the build yourself": the
settings module, its URLs and its two pieces of code, in one file for the tests.

WhiteNoise serves ``SPA_WEB_DIR`` (``WHITENOISE_ROOT``), the directory that
``spa-version assets publish`` fills. WhiteNoise lists the files once, when the process
starts: start the new processes after the publish (the deploy order of
docs/deploy-haproxy.md), and each process serves the shell it read at its start, so its
pages only reference files it knows. Every path outside ``/assets/`` gets the shell;
a missing ``/assets/...`` file is a real 404.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.template import engines
from django.urls import re_path
from whitenoise.middleware import WhiteNoiseMiddleware

WEB_DIR = Path(os.environ.get("SPA_WEB_DIR", "/nonexistent"))

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["spa_version.django"]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
MIDDLEWARE = [
    "spa_version.django.VersionMiddleware",
    "tests.assets.django_site.PublishedFiles",
]
ROOT_URLCONF = "tests.assets.django_site"
STATIC_URL = "/static/"
WHITENOISE_ROOT = str(WEB_DIR)
SPA_VERSION: dict[str, str] = {}  # the store: SPA_VERSION_URL


class PublishedFiles(WhiteNoiseMiddleware):
    """WhiteNoise, with a 404 for a file ``assets publish`` pruned after this process
    listed it (WhiteNoise would fail to open it: a 500)."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response: HttpResponse = super().__call__(request)
        except FileNotFoundError:
            return HttpResponseNotFound()
        return response


META = "{% load spa_version %}{% spa_version_meta %}"


@functools.cache
def _shell() -> str:
    # Read once per process: the build this process was started with.
    return (WEB_DIR / "index.html").read_text(encoding="utf-8")


def shell(request: HttpRequest) -> HttpResponse:
    """The SPA shell for every client-side route, with the page's baseline (docs/js.md)."""
    meta = (
        engines["django"].from_string("{% load spa_version %}{% spa_version_meta %}").render(request=request)
    )
    response = HttpResponse(_shell().replace("<!-- spa-version-meta -->", meta))
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [re_path(r"^(?!assets/)", shell)]
