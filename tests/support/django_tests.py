"""Helpers for the Django tests (tests/django, tests/pinning/test_django.py): Django set up
once on import (settings: tests/django/settings.py), a fresh memory-store namespace per
test, bumps into it, and `SpaVersionTestCase`, the base of their ``SimpleTestCase`` classes."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import django
import pytest

# Before anything reads Django's settings (its test tools, the middleware).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.settings")
django.setup()

from django.http import HttpResponseBase  # noqa: E402
from django.test import SimpleTestCase, override_settings  # noqa: E402

from spa_version.release import Release  # noqa: E402
from spa_version.stores import open_store  # noqa: E402
from tests.support.servers import wait_for  # noqa: E402

MEMORY_URL = "memory://django-tests"


@pytest.fixture(autouse=True, scope="module")
def no_listener_thread_left() -> Iterator[None]:
    """Each module leaves no listener thread behind (the next request would start a new one).

    Autouse wherever it is imported: tests/django/conftest.py, tests/pinning/test_django.py."""
    from spa_version.django.listener_thread import stop_listener_thread

    yield
    stop_listener_thread()


def fresh_settings(**extra: Any) -> dict[str, Any]:
    """A ``SPA_VERSION`` dict naming a store namespace no other test uses."""
    return {"URL": MEMORY_URL, "APP": f"dj-{uuid.uuid4().hex[:10]}", "STARTUP_TIMEOUT": 5, **extra}


def bump(spa_settings: dict[str, Any], label: str, **kwargs: Any) -> Release:
    """Bump the memory store named by *spa_settings* (from this thread, as a deploy would)."""
    store = open_store(spa_settings["URL"], app=spa_settings["APP"])
    # A thread of its own, so async tests (whose loop is running) can call it too.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, store.bump(label, **kwargs)).result(timeout=30).release


def header_value(release: Release) -> str:
    """The header value the middleware must send for *release* (docs/protocol.md)."""
    value = f"{release.epoch}; label={release.label}; policy={release.policy}"
    if release.min_compatible is not None:
        value += f"; min={release.min_compatible}"
    return value


class SpaVersionTestCase(SimpleTestCase):
    """A ``SimpleTestCase`` whose every test runs on a store namespace of its own.

    ``setUp`` overrides ``SPA_VERSION`` with `fresh_settings` (plus the class's
    `spa_settings`) for the whole test, as ``self.spa``. The listener thread follows each
    namespace separately, and `no_listener_thread_left` stops it after each module.
    """

    #: Extra ``SPA_VERSION`` keys for every test of the class.
    spa_settings: ClassVar[dict[str, Any]] = {}

    def setUp(self) -> None:
        super().setUp()
        self.spa = self.use_settings(**self.spa_settings)

    def use_settings(self, **extra: Any) -> dict[str, Any]:
        """Switch this test to a new namespace with *extra* settings (until it ends); return them."""
        self.spa = fresh_settings(**extra)
        override = override_settings(SPA_VERSION=self.spa)
        override.enable()
        self.addCleanup(override.disable)
        return self.spa

    def bump(self, label: str, **kwargs: Any) -> Release:
        """Bump this test's namespace (`bump`)."""
        return bump(self.spa, label, **kwargs)

    def get_once_stamped(
        self, release: Release, path: str = "/", header: str = "X-SPA-Version", suffix: str = ""
    ) -> HttpResponseBase:
        """GET *path* until its *header* is *release*'s value (plus *suffix*); that response.

        A bump reaches the listener thread asynchronously (a store notification), so the
        request right after one may still see the release before it: poll, with a deadline.
        """
        expected = header_value(release) + suffix
        seen: list[str | None] = []

        def stamped() -> HttpResponseBase | None:
            response: HttpResponseBase = self.client.get(path)
            seen.append(response.get(header))
            return response if seen[-1] == expected else None

        response: HttpResponseBase = wait_for(
            stamped, message=lambda: f"{path} never stamped {expected!r}; last {header}: {seen[-1:]!r}"
        )
        return response
