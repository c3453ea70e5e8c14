"""Django system checks flag a misconfigured SPA_VERSION or a badly placed middleware."""

from __future__ import annotations

import os
import sys
from unittest import mock

from django.core.checks import run_checks
from django.test import SimpleTestCase, override_settings

OURS = "spa_version.django.VersionMiddleware"


def ids(**overrides: object) -> list[str]:
    """The spa_version check ids raised under *overrides*."""
    with override_settings(**overrides):
        return sorted(m.id for m in run_checks() if m.id and m.id.startswith("spa_version."))


class CheckTests(SimpleTestCase):
    def setUp(self) -> None:
        # The environment must not supply a URL behind the settings' back.
        patcher = mock.patch.dict(os.environ)
        patcher.start()
        self.addCleanup(patcher.stop)
        os.environ.pop("SPA_VERSION_URL", None)

    def test_valid_settings_pass(self) -> None:
        """The test settings themselves raise nothing."""
        self.assertEqual(ids(), [])

    def test_invalid_settings_are_an_error(self) -> None:
        """A typo in SPA_VERSION is E001."""
        self.assertEqual(ids(SPA_VERSION={"URLL": "redis://x"}), ["spa_version.E001"])
        self.assertEqual(ids(SPA_VERSION=["not", "a", "dict"]), ["spa_version.E001"])

    def test_file_store_without_url_in_production_warns(self) -> None:
        """DEBUG=False with no URL (the embedded file store) is W001; setting a URL silences it."""
        self.assertEqual(ids(DEBUG=False, SPA_VERSION={}), ["spa_version.W001"])
        self.assertEqual(ids(DEBUG=True, SPA_VERSION={}), [])
        self.assertEqual(ids(DEBUG=False, SPA_VERSION={"URL": "redis://127.0.0.1:6379/0"}), [])
        self.assertEqual(ids(DEBUG=False, SPA_VERSION={"URL": "redis+sentinel://127.0.0.1:26379/main"}), [])
        os.environ["SPA_VERSION_URL"] = "redis://127.0.0.1:6379/0"
        self.assertEqual(ids(DEBUG=False, SPA_VERSION={}), [])

    def test_memory_store_in_production_warns(self) -> None:
        """memory:// with DEBUG=False is W002."""
        self.assertEqual(ids(DEBUG=False, SPA_VERSION={"URL": "memory://"}), ["spa_version.W002"])

    def test_redis_url_without_redis_py_is_an_error(self) -> None:
        """A redis:// URL when redis-py cannot be imported is E002 (a bad one stays E001)."""
        # None in sys.modules makes `import redis` (and our Redis store) raise ImportError.
        missing = {"redis": None, "spa_version.stores.redis": None}
        with mock.patch.dict(sys.modules, missing):
            self.assertEqual(ids(SPA_VERSION={"URL": "redis://127.0.0.1/0"}), ["spa_version.E002"])
            self.assertEqual(ids(SPA_VERSION={"URL": "redis://127.0.0.1:abc/0"}), ["spa_version.E001"])

    def test_a_bad_store_url_is_e001_naming_the_key(self) -> None:
        """The whole URL is checked (port, database, Sentinel service, query options), so
        `manage.py check` reports what would otherwise fail every request."""
        for url in (
            "redis://127.0.0.1:abc/0",
            "redis://127.0.0.1/notanumber",
            "redis+sentinel://127.0.0.1:26379",
            "redis://127.0.0.1:6379/0?bogus=1",
        ):
            with override_settings(SPA_VERSION={"URL": url}):
                messages = [m for m in run_checks() if m.id == "spa_version.E001"]
            self.assertEqual(len(messages), 1, url)
            self.assertIn("SPA_VERSION['URL'] is not a valid store URL", messages[0].msg)

    def test_middleware_below_short_circuiting_one_warns(self) -> None:
        """Below SecurityMiddleware or the cache middleware: W003 for each."""
        middleware = [
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.cache.FetchFromCacheMiddleware",
            OURS,
        ]
        self.assertEqual(ids(MIDDLEWARE=middleware), ["spa_version.W003", "spa_version.W003"])
        self.assertEqual(ids(MIDDLEWARE=[OURS, *middleware[:2]]), [])

    def test_cors_headers_above_without_expose_warns(self) -> None:
        """django-cors-headers above ours without both headers in CORS_EXPOSE_HEADERS is W004."""
        middleware = ["corsheaders.middleware.CorsMiddleware", OURS]
        self.assertEqual(ids(MIDDLEWARE=middleware), ["spa_version.W004"])
        self.assertEqual(
            ids(MIDDLEWARE=middleware, CORS_EXPOSE_HEADERS=["x-spa-version"]), ["spa_version.W004"]
        )
        self.assertEqual(
            ids(MIDDLEWARE=middleware, CORS_EXPOSE_HEADERS=["x-spa-version", "X-SPA-Reload"]), []
        )
        self.assertEqual(ids(MIDDLEWARE=list(reversed(middleware))), [])
