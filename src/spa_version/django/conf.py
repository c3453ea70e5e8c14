"""The ``SPA_VERSION = {...}`` settings dict, read as `spa_version.options.Options`, and
the one `spa_version.host.Host` this process serves it with.

The keys are the options of the ASGI middleware upper-cased (``URL`` and ``APP`` for
``store`` and ``app_name``; docs/django.md), validated by the same rules
(`Options.from_settings`); a bad value raises ``ImproperlyConfigured`` naming the key.

Settings are read at access time (`settings_host`), so ``override_settings`` works. One
host is kept per settings object, against the identity of the ``SPA_VERSION`` dict: a
request pays for one attribute read and one ``is`` comparison, and ``override_settings``
(which installs a new dict) is picked up at once. A replaced host stops following the
store (`spa_version.django.listener_thread.ListenerThread.release`). A forked child
(gunicorn ``--preload``) builds its own: the parent's follows the store in a thread
that does not survive ``fork()``, and its deploy switch speaks for the parent.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..host import Host
from ..options import InvalidOptions, Options
from .listener_thread import listener_thread

__all__ = ["SETTING", "get_config", "parse_config", "serve_with", "settings_host"]

SETTING = "SPA_VERSION"


def parse_config(raw: Any) -> Options:
    """Validate a ``SPA_VERSION`` dict; raise ``ImproperlyConfigured`` saying what is wrong."""
    try:
        return Options.from_settings(raw, SETTING)
    except InvalidOptions as exc:
        raise ImproperlyConfigured(str(exc)) from None


# (raw settings object, its Host): replaced as one tuple, so readers on other threads
# always see a matching pair.
_bundle: tuple[object, Host] | None = None
_bundle_lock = threading.Lock()


def settings_host() -> Host:
    """The host of the current ``SPA_VERSION`` settings (built when the setting changes).

    Raises ``ImproperlyConfigured`` for bad settings.
    """
    raw = getattr(settings, SETTING, None)
    bundle = _bundle
    if bundle is not None and bundle[0] is raw:
        return bundle[1]
    return _install(raw, None)


def serve_with(host: Host) -> None:
    """Make *host* the one the current settings are served with (the ASGI wrapper's, so
    Django's middleware, the template tags and the wrapper share one version)."""
    _install(getattr(settings, SETTING, None), host)


def _install(raw: object, host: Host | None) -> Host:
    global _bundle
    _forget_at_fork()
    with _bundle_lock:
        old = _bundle
        if host is None:
            if old is not None and old[0] is raw:
                return old[1]
            host = Host(parse_config(raw))
        _bundle = (raw, host)
    if old is not None and old[1] is not host:
        listener_thread().release(old[1])
    return host


def get_config() -> Options:
    """The current ``SPA_VERSION`` settings, parsed (kept until the setting changes)."""
    return settings_host().options


def clear_cache(**kwargs: Any) -> None:
    """Forget the settings' host (connected to Django's ``setting_changed`` signal)."""
    global _bundle
    if kwargs.get("setting", SETTING) == SETTING:
        with _bundle_lock:
            old, _bundle = _bundle, None
        if old is not None:
            listener_thread().release(old[1])


_fork_hooked = False  # set once per interpreter, when a host is first built (never at import)


def _forget_at_fork() -> None:
    global _fork_hooked
    if not _fork_hooked:
        _fork_hooked = True
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    global _bundle, _bundle_lock
    _bundle = None
    _bundle_lock = threading.Lock()  # the parent's may have been held at the fork
