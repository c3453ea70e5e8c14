"""System checks (``manage.py check``) for the ``SPA_VERSION`` settings and the middleware's place.

- ``spa_version.E001``: ``SPA_VERSION`` is invalid (the message says which key and why).
- ``spa_version.E002``: a Redis URL is set but redis-py is missing (``spa-version[redis]``).
- ``spa_version.W001``: ``DEBUG = False`` and no store URL: every process falls back to
  the embedded file store in its working directory, which other hosts never see.
- ``spa_version.W002``: ``memory://`` with ``DEBUG = False``: each process has its own
  store, and ``spa-version bump`` (another process) cannot reach it.
- ``spa_version.W003``: the middleware sits below one that can answer on its own, so
  those answers (redirects, cached pages) go out unstamped or with a stale version.
- ``spa_version.W004``: django-cors-headers sits above the middleware and its
  ``CORS_EXPOSE_HEADERS`` leaves out the version header or ``X-SPA-Reload``: it owns the
  expose list there, so cross-origin pages cannot read the version or the reload
  instruction of a 409.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from ..options import InvalidOptions, Options
from ..protocol import RELOAD_HEADER
from ..stores import REDIS_MISSING
from .conf import SETTING

MIDDLEWARE_PATH = "spa_version.django.VersionMiddleware"
_MIDDLEWARE_ALIASES = (MIDDLEWARE_PATH, "spa_version.django.middleware.VersionMiddleware")

#: Middleware that may return a response without calling the ones below it.
SHORT_CIRCUITING = (
    "django.middleware.security.SecurityMiddleware",  # SECURE_SSL_REDIRECT
    "django.middleware.common.CommonMiddleware",  # APPEND_SLASH / PREPEND_WWW redirects
    "django.middleware.locale.LocaleMiddleware",  # language-prefix redirects
    "django.middleware.cache.FetchFromCacheMiddleware",  # cached pages
    "django.middleware.cache.CacheMiddleware",
)
CORS_MIDDLEWARE = "corsheaders.middleware.CorsMiddleware"


def _options() -> Options:
    # The same rules as the middleware's, without the cache: checks run rarely.
    return Options.from_settings(getattr(settings, SETTING, None), SETTING)


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate ``SPA_VERSION`` and warn about stores that do not fit production."""
    try:
        options = _options()
    except InvalidOptions as exc:
        if REDIS_MISSING in exc.problem:
            # The URL is fine but needs redis-py (spa_version.stores.parse_url).
            return [
                Error(
                    f"{exc.option} is a Redis URL but redis-py is not installed.",
                    hint="pip install 'spa-version[redis]'",
                    id="spa_version.E002",
                )
            ]
        return [Error(str(exc), hint="See docs/django.md for the SPA_VERSION keys.", id="spa_version.E001")]
    messages: list[CheckMessage] = []
    # The environment's URL is in the options already (spa_version.options).
    url = options.store if isinstance(options.store, str) else None
    scheme = (url or "file://").partition("://")[0].lower()
    if not settings.DEBUG and url is None:
        messages.append(
            Warning(
                "spa-version falls back to the embedded file store (file://.spa-version in the working "
                "directory) while DEBUG is False.",
                hint="Set SPA_VERSION = {'URL': 'redis://...'} (or the SPA_VERSION_URL environment "
                "variable), or an explicit file:// directory that every worker shares.",
                id="spa_version.W001",
            )
        )
    if not settings.DEBUG and scheme == "memory":
        messages.append(
            Warning(
                "spa-version uses memory:// while DEBUG is False: each process has its own store and "
                "`spa-version bump` cannot reach it.",
                hint="Use redis:// in production.",
                id="spa_version.W002",
            )
        )
    return messages


@register()
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn when the middleware sits where some responses never pass through it."""
    middleware = [str(path) for path in getattr(settings, "MIDDLEWARE", None) or ()]
    ours = [i for i, path in enumerate(middleware) if path in _MIDDLEWARE_ALIASES]
    if not ours:
        return []
    position = ours[0]
    messages: list[CheckMessage] = []
    above = middleware[:position]
    for path in above:
        if path in SHORT_CIRCUITING:
            messages.append(
                Warning(
                    f"{MIDDLEWARE_PATH} is below {path}, which can answer on its own: those responses "
                    "go out without the current version.",
                    hint=f"Move {MIDDLEWARE_PATH} above {path} (near the top of MIDDLEWARE).",
                    obj=path,
                    id="spa_version.W003",
                )
            )
    if CORS_MIDDLEWARE in above:
        try:
            header = _options().header_name
        except InvalidOptions:
            return messages  # reported by check_settings
        exposed = {str(name).lower() for name in getattr(settings, "CORS_EXPOSE_HEADERS", ()) or ()}
        missing = [name for name in (header, RELOAD_HEADER) if name.lower() not in exposed]
        if missing:
            messages.append(
                Warning(
                    f"{CORS_MIDDLEWARE} is above {MIDDLEWARE_PATH} and its Access-Control-Expose-Headers "
                    f"leave out {', '.join(missing)}, so cross-origin pages cannot read the version "
                    "or the reload instruction of a 409.",
                    hint=f"Add {', '.join(map(repr, missing))} to CORS_EXPOSE_HEADERS, or move "
                    f"{MIDDLEWARE_PATH} above {CORS_MIDDLEWARE} (docs/django.md, CORS).",
                    id="spa_version.W004",
                )
            )
    return messages
