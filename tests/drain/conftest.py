"""Fixtures for the deploy-switch tests (the app and clients: tests/support/drain_app.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spa_version import open_store
from spa_version.stores import Store


@pytest.fixture
def store(app_name: str) -> Iterator[Store]:
    yield open_store(f"memory://{app_name}", app=app_name)
