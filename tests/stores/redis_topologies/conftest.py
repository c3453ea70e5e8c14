"""Fixtures for the scale-out tests."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _log_spa_version(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="spa_version")
