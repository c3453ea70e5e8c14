"""Settings for the Django + Channels example (development settings: DEBUG is on)."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "spa-version-example-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "channels",
    "spa_version.django",  # {% load spa_version %} and the system checks
]

MIDDLEWARE = [
    # First: every response passes through it, redirects and cached pages included.
    "spa_version.django.VersionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"
ASGI_APPLICATION = "demo_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES: dict[str, dict[str, str]] = {}
STATIC_URL = "static/"

# spa-version: the store comes from SPA_VERSION_URL when set (e.g. redis://localhost:6379/0),
# else the embedded file store ./.spa-version (the CLI's default too). docs/django.md lists
# every key.
SPA_VERSION = {
    "URL": os.environ.get("SPA_VERSION_URL") or None,
    "APP": os.environ.get("SPA_VERSION_APP") or None,
}
