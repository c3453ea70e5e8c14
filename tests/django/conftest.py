"""Django is set up once, before any test module here imports Django's test tools."""

from __future__ import annotations

import os
from collections.abc import Iterator

import django
import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.settings")
django.setup()


@pytest.fixture(autouse=True, scope="module")
def _stop_listener_thread() -> Iterator[None]:
    """Each module leaves no listener thread behind (the next request would start a new one)."""
    from spa_version.django.listener_thread import stop_listener_thread

    yield
    stop_listener_thread()
