"""Every option of spa-version in one place: `Options`, with its `DeployOptions` part.

Three ways in, one set of rules:

- keyword arguments: `Options.from_kwargs` (what `spa_version.VersionMiddleware` takes);
- Django's ``SPA_VERSION`` settings dict: `Options.from_settings`, the same names
  upper-cased (``store`` is ``URL``, ``app_name`` is ``APP``; docs/django.md);
- the command line's ``--url`` and ``--app``: `Options.from_command_line` (the CLI);
- the environment, for what none of them gives: `ENVIRONMENT` lists the variables, and
  `spa_version.defaults.environment` is the one place that reads them (each builder
  calls it once; `Options(...)` itself reads no environment).

The store URL is parsed once, here (`spa_version.stores.parse_url`): `Options.store_url`
keeps the parsed value, and `Options.open_store` opens it without parsing it again.

Options are validated once, when built (the dataclasses check themselves); anything
wrong raises `InvalidOptions` naming the option, the settings key or the environment
variable it came from. Django turns it into ``ImproperlyConfigured`` (and ``manage.py
check`` into ``spa_version.E001``). Times are in seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict

from .assets import DEFAULT_SCRIPT_PATH
from .current import fallback_release
from .defaults import DEFAULT_APP, DEFAULT_URL, ENVIRONMENT, environment
from .pinning import validate_slot
from .protocol import CLIENT_HEADER, DEFAULT_ENDPOINT, HEADER
from .release import InvalidRelease, validate_app, validate_label
from .stores import Store, StoreUrl, clip, open_url, parse_url, scheme_list

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ENVIRONMENT",
    "UNSAFE_METHODS",
    "DeployOptions",
    "InvalidOptions",
    "OptionArgs",
    "Options",
    "environment",
]

#: The methods checked against ``min_compatible`` by default.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# RFC 9110 §5.6.2 token: what a header name or a method may be.
_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


class InvalidOptions(ValueError):
    """An option has a bad value. ``option`` names it as the user wrote it."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option} {problem}")
        self.option = option
        self.problem = problem


# -- the checks ------------------------------------------------------------------------


def _fail(option: str, problem: str) -> NoReturn:
    raise InvalidOptions(option, problem)


def _check_seconds(option: str, value: object, *, positive: bool = False) -> None:
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    if not (number > 0 if positive else number >= 0):
        _fail(option, f"must be a number of seconds {'> 0' if positive else '>= 0'}, got {value!r}")


def _check_bool(option: str, value: object, *, optional: bool = False) -> None:
    if not isinstance(value, bool) and not (optional and value is None):
        _fail(option, f"must be True or False{' or None' if optional else ''}, got {value!r}")


def _check_token(option: str, value: object) -> None:
    if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value):
        _fail(option, f"must be an HTTP header name (a token, RFC 9110 §5.6.2), got {value!r}")


def _is_path(value: object) -> bool:
    return isinstance(value, str) and value.startswith("/")


def _check_path(option: str, value: object) -> None:
    if value is not None and not _is_path(value):
        _fail(option, f"must be a path starting with '/' or None (off), got {value!r}")


def _check_paths(option: str, value: object) -> None:
    if not isinstance(value, tuple) or not all(_is_path(item) for item in value):
        _fail(option, f"must be a list of path prefixes starting with '/', got {value!r}")


def _check_with(option: str, validate: Callable[[Any], object], value: object) -> None:
    try:
        validate(value)
    except (InvalidRelease, AttributeError, TypeError) as exc:
        _fail(option, f"is invalid: {exc}")


def _check_slot(value: object) -> None:
    try:
        validate_slot(value)  # type: ignore[arg-type]  # it checks the type too
    except ValueError as exc:
        _fail("slot", f"is invalid: {exc}")


def _parse_store(url: object) -> StoreUrl:
    # The whole URL, without I/O (spa_version.stores.parse_url, the one rule for store
    # URLs), parsed once: a URL that passes here opens, so no request meets a bad one.
    if not isinstance(url, str):
        _fail("store", f"must be a store URL ({scheme_list()}) or a Store, got {clip(url)}")
    try:
        return parse_url(url)
    except ValueError as exc:
        _fail("store", f"is not a valid store URL: {exc}")
    except ImportError as exc:
        _fail("store", f"cannot be used: {exc}")


def _check_header_value(option: str, value: object) -> None:
    # Sent as a header value: printable, and bytes a server can send (Latin-1).
    if not isinstance(value, str) or not value or not value.isprintable() or not value.isascii():
        _fail(option, f"must be '*' or a URL of printable ASCII characters, got {value!r}")


@dataclass(frozen=True, slots=True)
class DeployOptions:
    """The deploy switch's options (`spa_version.deploy.Deployment`; docs/deploy-haproxy.md)."""

    #: The label this process was deployed with (env ``SPA_VERSION_BUILD``). None: no
    #: build declared, so nothing but the fleet heartbeat runs.
    build: str | None = None
    #: Serve HAProxy's agent-check on this TCP port (env ``SPA_VERSION_AGENT_PORT``;
    #: 0 picks a free one); None: no agent. Only with a build.
    agent_port: int | None = None
    #: The agent's address (env ``SPA_VERSION_AGENT_HOST``).
    agent_host: str = "127.0.0.1"
    #: Seconds of rising weight after start (0: none).
    agent_warmup: float = 0.0
    #: Seconds a stale build still says ready and accepts websockets after a bump. The
    #: recipe's HAProxy frontend falls back while no server is ready; behind a balancer
    #: that cannot, set it above ``agent-inter`` so the new build is ready first.
    agent_handover: float = 0.0
    #: Once stale, wait this long, then close the websockets with 1012 spread over
    #: ``drain_window`` seconds.
    drain_grace: float = 10.0
    drain_window: float = 60.0
    #: The window for closing the websockets left on shutdown (or the first SIGTERM).
    drain_shutdown_window: float = 5.0
    #: The time limit of each drain close: a client that stops reading makes the
    #: server's send block, and after this long the drain cancels that connection's
    #: handler instead (docs/protocol.md, "Websocket drain"). The shutdown's bound is
    #: ``drain_shutdown_window`` plus this.
    drain_close_timeout: float = 1.0
    #: The HTTP status refusing handshakes at a stale process (None accepts them).
    drain_stale_status: int | None = 503
    #: Seconds between fleet heartbeats (``spa-version status``).
    heartbeat_interval: float = 5.0
    #: On the first SIGTERM, close the websockets gently before the server's own
    #: shutdown cuts them all at once (`spa_version.deploy.sigterm`).
    drain_on_sigterm: bool = True

    def __post_init__(self) -> None:
        if self.build is not None:
            _check_with("build", validate_label, self.build)
        port = self.agent_port
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536
        ):
            _fail("agent_port", f"must be a TCP port (0-65535) or None, got {port!r}")
        if not isinstance(self.agent_host, str) or not self.agent_host:
            _fail("agent_host", f"must be an address to bind, got {self.agent_host!r}")
        for name in (
            "agent_warmup",
            "agent_handover",
            "drain_grace",
            "drain_window",
            "drain_shutdown_window",
        ):
            _check_seconds(name, getattr(self, name))
        _check_seconds("drain_close_timeout", self.drain_close_timeout, positive=True)
        status = self.drain_stale_status
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
        ):
            _fail("drain_stale_status", f"must be an HTTP error status (400-599) or None, got {status!r}")
        _check_seconds("heartbeat_interval", self.heartbeat_interval, positive=True)
        _check_bool("drain_on_sigterm", self.drain_on_sigterm)


@dataclass(frozen=True, slots=True)
class Options:
    """Every option of the ASGI and the Django middleware (see the module docstring)."""

    #: A store URL (``redis://``, ``rediss://``, ``redis+sentinel://``,
    #: ``redis+cluster://``, ``file://DIR``, ``memory://``) or a `Store` (env
    #: ``SPA_VERSION_URL``). None: the embedded ``file://.spa-version``.
    store: str | Store | None = None
    #: The app's namespace in the store (env ``SPA_VERSION_APP``). None: ``"default"``.
    app_name: str | None = None
    #: The response header, and the request header carrying the client's epoch.
    header_name: str = HEADER
    client_header: str = CLIENT_HEADER
    #: The JSON version endpoint and the JS helper's script-tag build (None: off). These
    #: and the enforced paths are relative to where the app is mounted (ASGI
    #: ``root_path``, Django ``request.path_info``).
    endpoint: str | None = DEFAULT_ENDPOINT
    script_path: str | None = DEFAULT_SCRIPT_PATH
    #: Stamp ``websocket.accept`` (ASGI only). None decides per connection from the
    #: server's ``asgi.spec_version`` (>= 2.1).
    stamp_websocket: bool | None = None
    #: Merge the header name and ``X-SPA-Reload`` into ``Access-Control-Expose-Headers``
    #: on CORS responses (`spa_version.cors`).
    expose_header: bool = True
    #: A header value (``"1; label=boot"``) stamped until the store has been read.
    fallback: str | None = None
    #: The blue/green slot of this process (env ``SPA_VERSION_SLOT``): a token of 1-32
    #: characters ``A-Z a-z 0-9 _ . -``, stamped as ``; slot=<slot>`` in the version header
    #: so the JS helper pins the tab's requests to it (docs/protocol.md, "Pinning"); with
    #: a build, the heartbeat counts those pinned requests. None: no slot.
    slot: str | None = None
    #: Methods checked against ``min_compatible`` (None: every method, ``"*"``), and the
    #: path prefixes checked and skipped.
    enforce_methods: frozenset[str] | None = UNSAFE_METHODS
    enforce_paths: tuple[str, ...] = ("/",)
    enforce_exclude: tuple[str, ...] = ()
    #: The ``X-SPA-Reload`` value sent with a 409 (``*``: reload the current page).
    reload_location: str = "*"
    #: Seconds between full re-reads of the store (the backstop for lost notifications).
    resync_interval: float = 30.0
    #: The cap of the full-jitter backoff between reconnects to the store.
    reconnect_max_delay: float = 30.0
    #: How long startup (ASGI lifespan; Django: a new process's first requests) waits for
    #: the first read. The store being down never fails startup.
    startup_timeout: float = 2.0
    deploy: DeployOptions = field(default_factory=DeployOptions)
    #: The store URL parsed (``store``, else the default ``file://.spa-version``), once,
    #: when the options are built; None when ``store`` is a `Store`. Not an argument.
    store_url: StoreUrl | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        store = self.store
        if not isinstance(store, Store):
            object.__setattr__(self, "store_url", _parse_store(DEFAULT_URL if store is None else store))
        if self.app_name is not None:
            _check_with("app_name", validate_app, self.app_name)
        _check_token("header_name", self.header_name)
        _check_token("client_header", self.client_header)
        _check_path("endpoint", self.endpoint)
        _check_path("script_path", self.script_path)
        _check_bool("stamp_websocket", self.stamp_websocket, optional=True)
        _check_bool("expose_header", self.expose_header)
        if self.fallback is not None:
            _check_with("fallback", fallback_release, self.fallback)
        if self.slot is not None:
            _check_slot(self.slot)
        methods = self.enforce_methods
        if methods is not None and not (
            isinstance(methods, frozenset)
            and all(isinstance(m, str) and _TOKEN_RE.fullmatch(m) for m in methods)
        ):
            _fail("enforce_methods", f"must be a list of HTTP methods or '*', got {methods!r}")
        _check_paths("enforce_paths", self.enforce_paths)
        _check_paths("enforce_exclude", self.enforce_exclude)
        _check_header_value("reload_location", self.reload_location)
        _check_seconds("resync_interval", self.resync_interval, positive=True)
        _check_seconds("reconnect_max_delay", self.reconnect_max_delay, positive=True)
        _check_seconds("startup_timeout", self.startup_timeout)
        if not isinstance(self.deploy, DeployOptions):
            _fail("deploy", f"must be DeployOptions, got {self.deploy!r}")

    def open_store(self) -> Store:
        """The store: the `Store` given, else a new one for `store_url` and the app
        (``app_name``, else ``default``). Opening parses nothing again and does no I/O."""
        if isinstance(self.store, Store):
            return self.store
        assert self.store_url is not None  # set by __post_init__ for any other store
        return open_url(self.store_url, app=self.app_name or DEFAULT_APP)

    # -- building ----------------------------------------------------------------------

    @classmethod
    def from_kwargs(cls, **kwargs: Unpack[OptionArgs]) -> Options:
        """Options from keyword arguments; the environment fills those left out or None."""
        return _build(dict(kwargs), lambda option: option)

    @classmethod
    def from_settings(cls, raw: object, setting: str = "SPA_VERSION") -> Options:
        """Options from a Django settings dict (*raw*: ``settings.SPA_VERSION``, None for {}).

        Keys are the option names upper-cased (`settings_key`); unknown keys are refused.
        """
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            _fail(setting, f"must be a dict, got {type(raw).__name__}")
        by_key = {settings_key(name): name for name in _FLAT}
        unknown = sorted(str(key) for key in raw if key not in by_key)
        if unknown:
            _fail(
                setting,
                f"has unknown key(s) {', '.join(map(repr, unknown))}; known keys: {', '.join(by_key)}",
            )
        return _build(
            {by_key[key]: value for key, value in raw.items()}, lambda o: f"{setting}[{settings_key(o)!r}]"
        )

    @classmethod
    def from_command_line(cls, url: str | None, app: str | None) -> Options:
        """Options for the CLI's ``--url`` and ``--app`` (None: not given); the environment
        fills the rest, and an error names ``--url`` or ``--app`` as the user wrote it."""
        flags = {"store": "--url", "app_name": "--app"}
        return _build({"store": url, "app_name": app}, lambda option: flags.get(option, option))

    def replace(self, **kwargs: Unpack[OptionArgs]) -> Options:
        """A copy with the options in *kwargs* (as `from_kwargs` takes them) changed, validated."""
        if not kwargs:
            return self
        flat = {name: getattr(self.deploy if name in _DEPLOY else self, name) for name in _FLAT}
        if flat["enforce_methods"] is None:
            flat["enforce_methods"] = "*"
        return _build({**flat, **kwargs}, lambda option: option)


class OptionArgs(TypedDict, total=False):
    """The keyword arguments of `Options.from_kwargs` and `spa_version.VersionMiddleware`:
    every field of `Options` and `DeployOptions`, with the input forms they accept."""

    store: str | Store | None
    app_name: str | None
    header_name: str
    client_header: str
    endpoint: str | None
    script_path: str | None
    stamp_websocket: bool | None
    expose_header: bool
    fallback: str | None
    slot: str | None
    enforce_methods: Iterable[str] | str
    enforce_paths: Iterable[str]
    enforce_exclude: Iterable[str]
    reload_location: str
    resync_interval: float
    reconnect_max_delay: float
    startup_timeout: float
    build: str | None
    agent_port: int | None
    agent_host: str | None
    agent_warmup: float
    agent_handover: float
    drain_grace: float
    drain_window: float
    drain_shutdown_window: float
    drain_close_timeout: float
    drain_stale_status: int | None
    heartbeat_interval: float
    drain_on_sigterm: bool


_DEPLOY = frozenset(f.name for f in fields(DeployOptions))
#: Every option name, flat: the keyword arguments (and, upper-cased, the settings keys).
_FLAT = tuple(f.name for f in fields(Options) if f.init and f.name != "deploy") + tuple(
    f.name for f in fields(DeployOptions)
)


def settings_key(option: str) -> str:
    """The ``SPA_VERSION`` key of *option*: ``URL``, ``APP``, else the name upper-cased."""
    return {"store": "URL", "app_name": "APP"}.get(option, option.upper())


def _build(values: dict[str, Any], name: Callable[[str], str]) -> Options:
    """Validated `Options` from flat *values*, the environment filling what is unset.

    *name* says how the user wrote an option, for the error message.
    """
    unknown = sorted(set(values) - set(_FLAT))
    if unknown:
        _fail("options", f"has unknown name(s) {', '.join(unknown)}; known: {', '.join(_FLAT)}")
    from_env = {option: raw for option, raw in environment().items() if values.get(option) is None}
    values.update(from_env)
    try:
        _normalize(values)
        deploy = DeployOptions(**{k: v for k, v in values.items() if k in _DEPLOY})
        return Options(**{k: v for k, v in values.items() if k not in _DEPLOY}, deploy=deploy)
    except InvalidOptions as exc:
        source = ENVIRONMENT[exc.option] if exc.option in from_env else name(exc.option)
        raise InvalidOptions(source, exc.problem) from None


def _normalize(values: dict[str, Any]) -> None:
    """Turn the input forms into the fields' types, in place: lists into tuples, ``"*"``
    into None, methods upper-cased, a port from the environment into an int."""
    if "enforce_methods" in values:
        methods = values["enforce_methods"]
        if methods == "*":
            values["enforce_methods"] = None
        elif isinstance(methods, str) or not isinstance(methods, Iterable):
            _fail("enforce_methods", f"must be a list of HTTP methods or '*', got {methods!r}")
        else:
            values["enforce_methods"] = frozenset(m.upper() if isinstance(m, str) else m for m in methods)
    for name in ("enforce_paths", "enforce_exclude"):
        paths = values.get(name)
        if paths is not None:
            if isinstance(paths, str) or not isinstance(paths, Iterable):
                _fail(name, f"must be a list of path prefixes starting with '/', got {paths!r}")
            values[name] = tuple(paths)
    port = values.get("agent_port")
    if isinstance(port, str):
        if not port.isdigit():
            _fail("agent_port", f"must be a TCP port (0-65535), got {port!r}")
        values["agent_port"] = int(port)
    if values.get("agent_host", 0) is None:
        del values["agent_host"]  # the default address
