"""One set of options for every way in: keyword arguments, Django settings, the environment."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spa_version import VersionMiddleware
from spa_version.defaults import DEFAULT_APP, DEFAULT_URL
from spa_version.options import ENVIRONMENT, DeployOptions, InvalidOptions, Options
from spa_version.stores import SCHEMES, open_store, parse_url


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT.values():
        monkeypatch.delenv(name, raising=False)


async def inner(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never called
    raise AssertionError


def test_defaults_are_the_dataclass_defaults() -> None:
    """Nothing given and nothing in the environment: every option has its default."""
    assert Options.from_kwargs() == Options() == Options.from_settings(None) == Options.from_settings({})
    assert Options().deploy == DeployOptions()


def test_the_environment_fills_what_is_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """SPA_VERSION_* variables set the options left out or None; explicit values win."""
    monkeypatch.setenv("SPA_VERSION_URL", "memory://from-env")
    monkeypatch.setenv("SPA_VERSION_APP", "env-app")
    monkeypatch.setenv("SPA_VERSION_BUILD", "env-build")
    monkeypatch.setenv("SPA_VERSION_AGENT_PORT", "9801")
    monkeypatch.setenv("SPA_VERSION_AGENT_HOST", "0.0.0.0")
    options = Options.from_kwargs(app_name="given", build=None)
    assert (options.store, options.app_name) == ("memory://from-env", "given")
    assert (options.deploy.build, options.deploy.agent_port, options.deploy.agent_host) == (
        "env-build",
        9801,
        "0.0.0.0",
    )
    settings = Options.from_settings({"APP": "from-settings", "URL": None})
    assert (settings.store, settings.app_name, settings.deploy.build) == (
        "memory://from-env",
        "from-settings",
        "env-build",
    )


def test_django_settings_take_every_option_upper_cased() -> None:
    """Each keyword argument is a SPA_VERSION key (store is URL, app_name is APP), deploy ones included."""
    options = Options.from_settings(
        {
            "URL": "memory://s",
            "APP": "shop",
            "STAMP_WEBSOCKET": True,
            "RECONNECT_MAX_DELAY": 5,
            "ENFORCE_METHODS": "*",
            "BUILD": "b1",
            "AGENT_PORT": 9801,
            "AGENT_HANDOVER": 2,
            "DRAIN_GRACE": 3,
            "DRAIN_STALE_STATUS": None,
            "HEARTBEAT_INTERVAL": 1,
            "DRAIN_ON_SIGTERM": False,
        }
    )
    assert options == Options.from_kwargs(
        store="memory://s",
        app_name="shop",
        stamp_websocket=True,
        reconnect_max_delay=5,
        enforce_methods="*",
        build="b1",
        agent_port=9801,
        agent_handover=2,
        drain_grace=3,
        drain_stale_status=None,
        heartbeat_interval=1,
        drain_on_sigterm=False,
    )
    assert options.enforce_methods is None  # "*": every method


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        # the store and the namespace
        ({"store": "http://x"}, "store"),
        ({"app_name": "bad app"}, "app_name"),
        # headers and paths
        ({"header_name": "X Bad"}, "header_name"),
        ({"client_header": ""}, "client_header"),
        ({"endpoint": "no-slash"}, "endpoint"),
        ({"script_path": 3}, "script_path"),
        ({"enforce_methods": "POST"}, "enforce_methods"),
        ({"enforce_methods": ["PO ST"]}, "enforce_methods"),
        ({"enforce_paths": "/api"}, "enforce_paths"),
        ({"enforce_exclude": ["api"]}, "enforce_exclude"),
        ({"reload_location": "/x\r\nSet-Cookie: a"}, "reload_location"),
        ({"reload_location": ""}, "reload_location"),
        ({"fallback": "zero"}, "fallback"),
        ({"stamp_websocket": "yes"}, "stamp_websocket"),
        ({"expose_header": 1}, "expose_header"),
        # times
        ({"resync_interval": 0}, "resync_interval"),
        ({"reconnect_max_delay": -1}, "reconnect_max_delay"),
        ({"startup_timeout": True}, "startup_timeout"),
        # the deploy part
        ({"build": "bad label!"}, "build"),
        ({"agent_port": 70000}, "agent_port"),
        ({"agent_host": ""}, "agent_host"),
        ({"drain_grace": -1}, "drain_grace"),
        ({"drain_window": float("nan")}, "drain_window"),
        ({"drain_stale_status": 200}, "drain_stale_status"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"drain_on_sigterm": None}, "drain_on_sigterm"),
        # a typo
        ({"stroe": "memory://"}, "options"),
    ],
)
def test_bad_values_name_the_option_however_it_was_given(kwargs: dict[str, Any], named: str) -> None:
    """One error type, naming the keyword argument or the SPA_VERSION key; the middleware
    refuses the same values when it is built (InvalidOptions is a ValueError)."""
    with pytest.raises(InvalidOptions) as raised:
        Options.from_kwargs(**kwargs)
    assert raised.value.option == named
    with pytest.raises(ValueError, match=named):
        VersionMiddleware(inner, **kwargs)
    if named != "options":
        [(name, value)] = kwargs.items()
        key = {"store": "URL", "app_name": "APP"}.get(name, name.upper())
        with pytest.raises(InvalidOptions) as raised:
            Options.from_settings({key: value})
        assert raised.value.option == f"SPA_VERSION[{key!r}]"


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value from the environment that does not validate names the variable, not the option."""
    monkeypatch.setenv("SPA_VERSION_AGENT_PORT", "http")
    with pytest.raises(InvalidOptions, match="^SPA_VERSION_AGENT_PORT must be a TCP port"):
        Options.from_kwargs()
    monkeypatch.setenv("SPA_VERSION_AGENT_PORT", "9801")
    monkeypatch.setenv("SPA_VERSION_BUILD", "bad label!")
    with pytest.raises(InvalidOptions, match="^SPA_VERSION_BUILD is invalid"):
        Options.from_settings({})


def test_unknown_settings_keys_are_refused_with_the_known_ones() -> None:
    """A typo in SPA_VERSION is refused, listing every key that exists."""
    with pytest.raises(InvalidOptions, match="unknown key.*'URLL'.*known keys: URL, APP, .*DRAIN_ON_SIGTERM"):
        Options.from_settings({"URLL": "redis://x"})
    with pytest.raises(InvalidOptions, match="must be a dict"):
        Options.from_settings(["not", "a", "dict"])


def test_options_are_frozen_and_replace_validates() -> None:
    """Options never change once built; replace makes a validated copy."""
    options = Options.from_kwargs(build="A", enforce_methods="*")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.header_name = "X-Other"  # type: ignore[misc]
    changed = options.replace(drain_grace=1, header_name="X-Other")
    assert (changed.deploy.drain_grace, changed.header_name, changed.deploy.build) == (1, "X-Other", "A")
    assert changed.enforce_methods is None and options.replace() is options
    with pytest.raises(InvalidOptions, match="drain_grace"):
        options.replace(drain_grace=-1)


# -- store URLs: the whole URL is validated with the options, without any I/O ------------

BAD_STORE_URLS = [
    ("redis://127.0.0.1:abc/0", "port"),
    ("redis://127.0.0.1:70000/0", "port"),
    ("redis://127.0.0.1/notanumber", "database"),
    ("rediss://127.0.0.1:6380/1/2", "database"),
    ("redis+sentinel://127.0.0.1:26379", "names the service"),
    ("redis+sentinel://127.0.0.1:26379/", "names the service"),
    ("redis+sentinel://127.0.0.1:26379/svc/db1", "database"),
    ("redis+sentinel://127.0.0.1:x/svc", "port"),
    ("redis+cluster://127.0.0.1:7000,,127.0.0.1:7001", "host is missing"),
    ("redis+cluster://127.0.0.1:7000,127.0.0.1:-1", "port"),
    ("redis+cluster://127.0.0.1:7000/3", "only database 0"),
    ("redis://127.0.0.1:6379/0?bogus=1", "unknown option 'bogus'"),
    ("redis://127.0.0.1:6379/0?ssl_ca_certs=/ca.pem", "need a rediss:// URL"),
    ("redis://127.0.0.1:6379/0?socket_timeout=soon", "socket_timeout"),
    ("redis://127.0.0.1:6379/0?ping_interval=0", "ping_interval"),
    ("unix://", "names the socket"),
    ("file://", "needs a directory"),
]


@pytest.mark.parametrize(("url", "problem"), BAD_STORE_URLS)
def test_a_bad_store_url_is_refused_when_options_are_built(
    url: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole URL is checked with the options (docs/redis.md, "URLs"), naming the
    keyword, the settings key or the variable, so no request ever meets it."""
    with pytest.raises(InvalidOptions, match=problem) as raised:
        Options.from_kwargs(store=url)
    assert raised.value.option == "store"
    with pytest.raises(InvalidOptions, match=problem) as raised:
        Options.from_settings({"URL": url})
    assert raised.value.option == "SPA_VERSION['URL']"
    monkeypatch.setenv("SPA_VERSION_URL", url)
    with pytest.raises(InvalidOptions, match=problem) as raised:
        Options.from_settings({})
    assert raised.value.option == "SPA_VERSION_URL"
    with pytest.raises(ValueError, match=problem):
        open_store(url, app="a")  # the same rule when opening


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://127.0.0.1",
        "redis://user:p%40ss@[::1]:6379/15?socket_timeout=2&client_name=web&ping_interval=1.5",
        "rediss://127.0.0.1:6380/0?ssl_ca_certs=/etc/ssl/ca.pem&ssl_cert_reqs=required",
        "unix:///run/redis.sock?db=2",
        "redis+sentinel://a:26379,b:26379/mymaster/3?sentinel_password=x",
        "redis+sentinel://a/mymaster",
        "redis+cluster://a:7000,b:7001",
        "rediss+cluster://a:7000/0",
        "file://.spa-version",
        "memory://",
    ],
)
def test_good_store_urls_pass(url: str) -> None:
    """Every form of docs/redis.md passes (and opens without I/O: nothing listens there)."""
    assert Options.from_kwargs(store=url).store == url
    Options.from_kwargs(store=url).open_store()


def test_a_bad_store_url_never_echoes_the_password() -> None:
    with pytest.raises(InvalidOptions) as raised:
        Options.from_kwargs(store="redis://user:hunter2@127.0.0.1:abc/0")
    assert "hunter2" not in str(raised.value)
    with pytest.raises(InvalidOptions) as raised:
        Options.from_kwargs(store="rediss://127.0.0.1/0?ssl_password=hunter2&ssl_min_version=bad")
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("url", ["nope", "ftp://x", 42])
def test_every_scheme_error_lists_the_one_scheme_set(url: object) -> None:
    """No scheme, an unknown one, not a string: each message lists exactly SCHEMES."""
    errors: list[str] = []
    with pytest.raises(InvalidOptions) as raised:
        Options.from_kwargs(store=url)  # type: ignore[arg-type]
    errors.append(str(raised.value))
    if isinstance(url, str):
        with pytest.raises(ValueError) as plain:
            open_store(url, app="a")
        errors.append(str(plain.value))
    for message in errors:
        listed = set(re.findall(r"([a-z+]+)://", message)) - {"ftp"}
        assert listed == set(SCHEMES), message


def test_a_long_app_name_is_echoed_cut_short() -> None:
    """A 300-character app name is refused quoting its first 40 characters only."""
    with pytest.raises(InvalidOptions) as raised:
        Options.from_kwargs(app_name="x" * 299 + "!")
    assert "x" * 40 + "'…" in str(raised.value) and "x" * 41 not in str(raised.value)
    assert len(str(raised.value)) < 150


def test_a_redis_url_without_redis_py_is_a_clear_error() -> None:
    """redis-py missing (an import that fails, in a fresh interpreter): the form is still
    checked first, then the URL is refused naming the extra; the CLI says so in one line."""
    script = """
import sys
sys.modules["redis"] = None  # as if not installed: `import redis` raises ImportError
from spa_version.options import InvalidOptions, Options
for url in ("redis://127.0.0.1:abc/0", "redis://127.0.0.1:6379/0"):
    try:
        Options.from_settings({"URL": url})
    except InvalidOptions as exc:
        print(exc)
from spa_version.cli import main
sys.exit(main(["--url", "redis://127.0.0.1:6379/0", "get"]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result
    assert lines[0].startswith("SPA_VERSION['URL'] is not a valid store URL: the port")
    assert lines[1].startswith("SPA_VERSION['URL'] cannot be used") and "spa-version[redis]" in lines[1]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "spa-version[redis]" in result.stderr


def test_options_parse_the_store_url_once_and_open_that(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment is read when the options are built, and the URL parsed then
    (`Options.store_url`); opening uses that value, whatever the environment says later."""
    monkeypatch.setenv("SPA_VERSION_URL", f"file://{tmp_path}/first")
    monkeypatch.setenv("SPA_VERSION_APP", "first-app")
    options = Options.from_kwargs()
    assert options.store_url == parse_url(f"file://{tmp_path}/first")
    monkeypatch.setenv("SPA_VERSION_URL", "memory://later")
    monkeypatch.setenv("SPA_VERSION_APP", "later-app")
    store = options.open_store()
    assert (store.location, store.app) == (str(tmp_path / "first"), "first-app")
    default = Options()  # built directly: no environment, the defaults
    assert default.store is None and default.store_url == parse_url(DEFAULT_URL)
    assert default.open_store().app == DEFAULT_APP


def test_the_cli_options_name_its_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI builds `Options` too (`Options.from_command_line`); a bad value names the
    flag, or the variable it came from (README, "The CLI")."""
    with pytest.raises(InvalidOptions, match=r"^--url is not a valid store URL: unknown store scheme"):
        Options.from_command_line("postgres://x", None)
    with pytest.raises(InvalidOptions, match=r"^--app "):
        Options.from_command_line("memory://", "a/b")
    assert Options.from_command_line("memory://cli", "cli-app").open_store().app == "cli-app"
    monkeypatch.setenv("SPA_VERSION_AGENT_PORT", "nope")
    with pytest.raises(InvalidOptions, match=r"^SPA_VERSION_AGENT_PORT "):
        Options.from_command_line("memory://cli", None)
