"""One set of options for every way in: keyword arguments, Django settings, the environment."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from spa_version import VersionMiddleware
from spa_version.options import ENVIRONMENT, DeployOptions, InvalidOptions, Options


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
