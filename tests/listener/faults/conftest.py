"""Fixtures for the fault suite: a private redis-server per test (faults kill and pause it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis as sync_redis

from tests.support.servers import RedisServer


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, with an fsync'd append-only file so a kill loses nothing."""
    server = RedisServer("--appendonly", "yes", "--appendfsync", "always")
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def admin(private_redis: RedisServer) -> Iterator[sync_redis.Redis]:
    """A plain redis-py client for injecting faults (not the code under test)."""
    client = sync_redis.Redis(port=private_redis.port, socket_timeout=5, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _log_spa_version(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="spa_version")
