"""The ``SPA_VERSION = {...}`` settings dict, read as `spa_version.options.Options`.

The keys are the options of the ASGI middleware upper-cased (``URL`` and ``APP`` for
``store`` and ``app_name``; docs/django.md), validated by the same rules
(`Options.from_settings`); a bad value raises ``ImproperlyConfigured`` naming the key.

Settings are read at access time (`get_config`), so ``override_settings`` works. The
parsed `Options` are cached against the identity of the settings dict: a request pays
for one attribute read and one ``is`` comparison, and ``override_settings`` (which
installs a new dict) is picked up at once.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..options import InvalidOptions, Options

__all__ = ["SETTING", "get_config", "parse_config"]

SETTING = "SPA_VERSION"


def parse_config(raw: Any) -> Options:
    """Validate a ``SPA_VERSION`` dict; raise ``ImproperlyConfigured`` saying what is wrong."""
    try:
        return Options.from_settings(raw, SETTING)
    except InvalidOptions as exc:
        raise ImproperlyConfigured(str(exc)) from None


# (raw settings object, its Options): replaced as one tuple, so readers on other
# threads always see a matching pair.
_cache: tuple[object, Options] | None = None
_cache_lock = threading.Lock()


def get_config() -> Options:
    """The current ``SPA_VERSION`` settings, parsed (cached until the setting changes)."""
    global _cache
    raw = getattr(settings, SETTING, None)
    cached = _cache
    if cached is not None and cached[0] is raw:
        return cached[1]
    config = parse_config(raw)
    with _cache_lock:
        _cache = (raw, config)
    return config


def clear_cache(**kwargs: Any) -> None:
    """Forget the parsed settings (connected to Django's ``setting_changed`` signal)."""
    global _cache
    if kwargs.get("setting", SETTING) == SETTING:
        with _cache_lock:
            _cache = None
