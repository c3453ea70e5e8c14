"""Django settings for the integration tests (no database: every test is a SimpleTestCase)."""

from __future__ import annotations

from pathlib import Path

SECRET_KEY = "spa-version-tests-only"
DEBUG = True
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = ["spa_version.django", "channels"]
MIDDLEWARE = [
    "spa_version.django.VersionMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "tests.django.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).parent / "templates"],
    }
]
DATABASES: dict[str, dict[str, str]] = {}
# Each test overrides this with its own app namespace (override_settings).
SPA_VERSION = {"URL": "memory://django-tests", "APP": "default"}
