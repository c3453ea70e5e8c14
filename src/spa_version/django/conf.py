"""The ``SPA_VERSION = {...}`` settings dict, read as `spa_version.options.Options`, and
the one `spa_version.host.Host` this process serves it with.

The keys are the options of the ASGI middleware upper-cased (``URL`` and ``APP`` for
``store`` and ``app_name``; docs/django.md), validated by the same rules
(`Options.from_settings`); a bad value raises ``ImproperlyConfigured`` naming the key.

The settings are read when a host is first needed (`settings_host`), and again after
Django's ``setting_changed`` signal for ``SPA_VERSION`` (sent by ``override_settings``;
Django's documentation asks that settings not be altered otherwise at runtime): one host
per settings object. Once the host may serve, ``SERVING.stamping`` holds what a request
reads (`spa_version.django.stamping.Stamping`), replaced whole each time the host's
version changes: a request pays for one attribute read. A replaced host stops following
the store (`spa_version.django.listener_thread.ListenerThread.release`). A forked child
(gunicorn ``--preload``) builds its own: the parent's follows the store in a thread
that does not survive ``fork()``, and its deploy switch speaks for the parent.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ..current import Snapshot, Watcher
from ..host import Host
from ..options import InvalidOptions, Options
from .listener_thread import listener_thread
from .stamping import Stamping

__all__ = [
    "SETTING",
    "SERVING",
    "get_config",
    "parse_config",
    "serve_with",
    "settings_host",
    "start_stamping",
]

SETTING = "SPA_VERSION"
#: The ``setting_changed`` receiver's id (`clear_cache`), also used by the app's ``ready``.
DISPATCH_UID = "spa_version.clear_cache"


def parse_config(raw: Any) -> Options:
    """Validate a ``SPA_VERSION`` dict; raise ``ImproperlyConfigured`` saying what is wrong."""
    try:
        return Options.from_settings(raw, SETTING)
    except InvalidOptions as exc:
        raise ImproperlyConfigured(str(exc)) from None


class _Serving:
    """Which host serves the settings, and what every request reads from it."""

    __slots__ = ("host", "stamping", "watcher", "wrapped")

    def __init__(self) -> None:
        #: The host of the current ``SPA_VERSION`` settings, or None until one is needed.
        self.host: Host | None = None
        #: The host's `Stamping` at its current version, from `start_stamping` on; None
        #: until then, and again once the host is replaced.
        self.stamping: Stamping | None = None
        #: What keeps `stamping` current: watching the host's version, or None.
        self.watcher: Watcher | None = None
        #: The host the ASGI wrapper serves (`serve_with`), or None.
        self.wrapped: Host | None = None


SERVING = _Serving()
_lock = threading.Lock()


def settings_host() -> Host:
    """The host of the current ``SPA_VERSION`` settings (built when first needed).

    Raises ``ImproperlyConfigured`` for bad settings.
    """
    host = SERVING.host
    return _install(None) if host is None else host


def serve_with(host: Host) -> None:
    """Make *host*, the ASGI wrapper's (`spa_version.django.asgi.wrap_asgi`), the one the
    current settings are served with: Django's middleware, the template tags and the
    wrapper share one version, and Django's middleware leaves the requests the wrapper
    has seen to it (`spa_version.django.stamping.Stamping.wrapped`)."""
    with _lock:
        SERVING.wrapped = host
    _install(host, wrapped=True)


def start_stamping(host: Host) -> Stamping:
    """Keep ``SERVING.stamping`` current for *host*, the settings' host, and return it.

    Called once *host* may serve (`spa_version.django.listener_thread.ListenerThread.serve`
    has returned). If the settings moved on to another host meanwhile, returns a
    stamping of *host* for this one request, and keeps nothing.
    """
    with _lock:
        if SERVING.host is host:
            if SERVING.watcher is None:
                watcher = functools.partial(_publish, host)
                host.current.watch(watcher)  # sets SERVING.stamping now
                SERVING.watcher = watcher
            stamping = SERVING.stamping
            if stamping is not None:
                return stamping
    return Stamping(host, host.current.snapshot, wrapped=SERVING.wrapped is host)


def _publish(host: Host, snapshot: Snapshot) -> None:
    """A `CurrentVersion.watch` watcher: the host's version changed (under its lock)."""
    if SERVING.host is host:  # not replaced meanwhile (`_replace`)
        SERVING.stamping = Stamping(host, snapshot, wrapped=SERVING.wrapped is host)


def _replace(host: Host | None) -> Host | None:
    """Serve the settings with *host* from now on (None: build one when next needed), and
    return the host replaced (under ``_lock``)."""
    old, watcher = SERVING.host, SERVING.watcher
    SERVING.host, SERVING.watcher = host, None
    if old is not None and watcher is not None:
        old.current.unwatch(watcher)  # waits for a call in progress: none comes after
    SERVING.stamping = None
    return old


def _install(host: Host | None, *, wrapped: bool = False) -> Host:
    _hook_process()
    with _lock:
        old = SERVING.host
        if host is None:
            if old is not None:
                return old
            host = Host(parse_config(getattr(settings, SETTING, None)))
        if old is not host or wrapped:  # a stamping built before the wrapper is rebuilt
            _replace(host)
    if old is not None and old is not host:
        listener_thread().release(old)
    return host


def get_config() -> Options:
    """The current ``SPA_VERSION`` settings, parsed (kept until the setting changes)."""
    return settings_host().options


def clear_cache(**kwargs: Any) -> None:
    """Forget the settings' host (connected to Django's ``setting_changed`` signal, which
    ``override_settings`` sends): the next request builds one for the new settings."""
    if kwargs.get("setting", SETTING) == SETTING:
        with _lock:
            old = _replace(None)
        if old is not None:
            listener_thread().release(old)


_hooked = False  # set once per interpreter, when a host is first built (never at import)


def _hook_process() -> None:
    """Forget the host when the settings change (``override_settings``) and in a forked child."""
    global _hooked
    if not _hooked:
        _hooked = True
        setting_changed.connect(clear_cache, dispatch_uid=DISPATCH_UID)
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    global _lock
    # Not `_replace`: the host's lock may have been held at the fork too. The parent's
    # watcher writes nothing here, its host being no longer the settings' (`_publish`).
    SERVING.host = SERVING.stamping = SERVING.watcher = SERVING.wrapped = None
    _lock = threading.Lock()  # the parent's may have been held at the fork
