"""Shared fixtures: a real redis-server for the session, unique app names, CLI runner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.servers import RedisServer, redis_server


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    """One private redis-server for the whole session (tests use distinct app names)."""
    with redis_server() as server:
        yield server


@pytest.fixture
def app_name() -> str:
    """A fresh store namespace, so tests sharing one Redis never see each other's releases."""
    return f"t-{uuid.uuid4().hex[:10]}"
