"""The ``SPA_VERSION = {...}`` settings dict, parsed and validated into a `Config`.

Settings are read at access time (`get_config`), so ``override_settings`` works. The
parsed `Config` is cached against the identity of the settings dict: a request pays
for one attribute read and one ``is`` comparison, and ``override_settings`` (which
installs a new dict) is picked up at once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..assets import DEFAULT_SCRIPT_PATH
from ..protocol import CLIENT_HEADER, DEFAULT_ENDPOINT, HEADER, parse_header
from ..release import InvalidRelease, validate_app
from ..stores import _REDIS_SCHEMES

#: Every scheme `spa_version.stores.open_store` accepts.
STORE_SCHEMES = _REDIS_SCHEMES | {"file", "memory"}

__all__ = ["DEFAULTS", "Config", "get_config", "parse_config"]

SETTING = "SPA_VERSION"

#: Every key the settings dict may hold, with its default. The names mirror the
#: keyword arguments of the ASGI `spa_version.VersionMiddleware`, upper-cased.
DEFAULTS: dict[str, Any] = {
    "URL": None,  # None: SPA_VERSION_URL from the environment, else file://.spa-version
    "APP": None,  # None: SPA_VERSION_APP from the environment, else "default"
    "HEADER_NAME": HEADER,
    "CLIENT_HEADER": CLIENT_HEADER,
    "ENDPOINT": DEFAULT_ENDPOINT,
    "SCRIPT_PATH": DEFAULT_SCRIPT_PATH,
    "EXPOSE_HEADER": True,
    "FALLBACK": None,
    "ENFORCE_METHODS": ("POST", "PUT", "PATCH", "DELETE"),
    "ENFORCE_PATHS": ("/",),
    "ENFORCE_EXCLUDE": (),
    "RELOAD_LOCATION": "*",
    "RESYNC_INTERVAL": 30.0,
    "STARTUP_TIMEOUT": 2.0,
}

# RFC 9110 §5.6.2 token: what a header name may be.
_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


@dataclass(frozen=True)
class Config:
    """One validated ``SPA_VERSION`` settings dict."""

    url: str | None
    app: str | None
    header_name: str
    client_header: str
    endpoint: str | None
    script_path: str | None
    expose_header: bool
    fallback: str | None
    #: None means every method is enforced (``"*"``).
    enforce_methods: frozenset[str] | None
    enforce_paths: tuple[str, ...]
    enforce_exclude: tuple[str, ...]
    reload_location: str
    resync_interval: float
    startup_timeout: float

    @property
    def follow_key(self) -> tuple[str | None, str | None, str, str | None, float]:
        """What identifies one followed store: settings that share it share a listener."""
        return (self.url, self.app, self.header_name.lower(), self.fallback, self.resync_interval)

    def asgi_options(self) -> dict[str, Any]:
        """The same settings as keyword arguments for the ASGI `spa_version.VersionMiddleware`."""
        return {
            "store": self.url,
            "app_name": self.app,
            "header_name": self.header_name,
            "client_header": self.client_header,
            "endpoint": self.endpoint,
            "script_path": self.script_path,
            "expose_header": self.expose_header,
            "fallback": self.fallback,
            "enforce_methods": "*" if self.enforce_methods is None else self.enforce_methods,
            "enforce_paths": self.enforce_paths,
            "enforce_exclude": self.enforce_exclude,
            "reload_location": self.reload_location,
            "resync_interval": self.resync_interval,
            "startup_timeout": self.startup_timeout,
        }


def _fail(key: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{SETTING}[{key!r}] {problem}")


def _header_name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value):
        raise _fail(key, f"must be an HTTP header name (a token, RFC 9110 §5.6.2), got {value!r}")
    return value


def _path(key: str, value: Any, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        none = " or None (off)" if optional else ""
        raise _fail(key, f"must be a path starting with '/'{none}, got {value!r}")
    return value


def _paths(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise _fail(key, f"must be a list of path prefixes, got {value!r}")
    for item in value:
        _path(key, item, optional=False)
    return tuple(value)


def _seconds(key: str, value: Any, *, positive: bool) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or (positive and value == 0)
    ):
        bound = "> 0" if positive else ">= 0"
        raise _fail(key, f"must be a number of seconds {bound}, got {value!r}")
    return float(value)


def parse_config(raw: Any) -> Config:
    """Validate a ``SPA_VERSION`` dict; raise ``ImproperlyConfigured`` saying what is wrong."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{SETTING} must be a dict, got {type(raw).__name__}")
    unknown = sorted(str(key) for key in raw if key not in DEFAULTS)
    if unknown:
        raise ImproperlyConfigured(
            f"{SETTING} has unknown key(s) {', '.join(map(repr, unknown))}; known keys: {', '.join(DEFAULTS)}"
        )
    values = {**DEFAULTS, **raw}

    url = values["URL"]
    if url is not None:
        scheme, sep, _ = url.partition("://") if isinstance(url, str) else ("", "", "")
        if not sep or scheme.lower() not in STORE_SCHEMES:
            raise _fail(
                "URL",
                "must be a store URL (redis://, rediss://, redis+sentinel://, redis+cluster://, "
                f"file://DIR, memory://), got {url!r}",
            )
    app = values["APP"]
    if app is not None:
        try:
            validate_app(app)
        except InvalidRelease as exc:
            raise _fail("APP", str(exc)) from None

    fallback = values["FALLBACK"]
    if fallback is not None:
        try:
            parse_header(fallback)
        except (InvalidRelease, AttributeError, TypeError) as exc:
            raise _fail("FALLBACK", f"must be a header value like '1; label=boot' ({exc})") from None

    methods = values["ENFORCE_METHODS"]
    enforce_methods: frozenset[str] | None
    if methods == "*":
        enforce_methods = None
    elif isinstance(methods, str) or not isinstance(methods, (list, tuple, set, frozenset)):
        raise _fail("ENFORCE_METHODS", f"must be a list of HTTP methods or '*', got {methods!r}")
    else:
        if not all(isinstance(m, str) and _TOKEN_RE.fullmatch(m) for m in methods):
            raise _fail("ENFORCE_METHODS", f"must hold HTTP method names, got {methods!r}")
        enforce_methods = frozenset(m.upper() for m in methods)

    reload_location = values["RELOAD_LOCATION"]
    if not isinstance(reload_location, str) or not reload_location or not reload_location.isprintable():
        raise _fail(
            "RELOAD_LOCATION", f"must be '*' or a URL without control characters, got {reload_location!r}"
        )

    for key in ("EXPOSE_HEADER",):
        if not isinstance(values[key], bool):
            raise _fail(key, f"must be True or False, got {values[key]!r}")

    return Config(
        url=url,
        app=app,
        header_name=_header_name("HEADER_NAME", values["HEADER_NAME"]),
        client_header=_header_name("CLIENT_HEADER", values["CLIENT_HEADER"]),
        endpoint=_path("ENDPOINT", values["ENDPOINT"], optional=True),
        script_path=_path("SCRIPT_PATH", values["SCRIPT_PATH"], optional=True),
        expose_header=values["EXPOSE_HEADER"],
        fallback=fallback,
        enforce_methods=enforce_methods,
        enforce_paths=_paths("ENFORCE_PATHS", values["ENFORCE_PATHS"]),
        enforce_exclude=_paths("ENFORCE_EXCLUDE", values["ENFORCE_EXCLUDE"]),
        reload_location=reload_location,
        resync_interval=_seconds("RESYNC_INTERVAL", values["RESYNC_INTERVAL"], positive=True),
        startup_timeout=_seconds("STARTUP_TIMEOUT", values["STARTUP_TIMEOUT"], positive=False),
    )


# (raw settings object, its Config): replaced as one tuple, so readers on other
# threads always see a matching pair.
_cache: tuple[object, Config] | None = None
_cache_lock = threading.Lock()


def get_config() -> Config:
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
