"""Helpers for the Django tests: a fresh memory-store namespace per test, and bumps into it."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from spa_version.release import Release
from spa_version.stores import open_store

MEMORY_URL = "memory://django-tests"


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
