"""The defaults a process falls back to, and the one reader of the environment.

What a user leaves unset comes, in this order, from the environment (`ENVIRONMENT`
names each variable; an empty one counts as unset) and then from the defaults here.
`spa_version.options.Options` reads the environment once, when it is built; the CLI
builds `Options` too. Nothing else reads these variables.

A leaf module: it imports nothing of the package but `spa_version.pinning` (a leaf too),
so every layer may use it (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import os

from .pinning import SLOT_ENV

__all__ = ["DEFAULT_APP", "DEFAULT_URL", "ENVIRONMENT", "environment"]

#: The embedded default store: a directory in the working directory, no Redis needed.
DEFAULT_URL = "file://.spa-version"
#: The app's namespace in the store when none is given.
DEFAULT_APP = "default"

#: The environment variable behind each option, used when the option is not given
#: (or given as None).
ENVIRONMENT = {
    "store": "SPA_VERSION_URL",
    "app_name": "SPA_VERSION_APP",
    "build": "SPA_VERSION_BUILD",
    "agent_port": "SPA_VERSION_AGENT_PORT",
    "agent_host": "SPA_VERSION_AGENT_HOST",
    "slot": SLOT_ENV,
}


def environment() -> dict[str, str]:
    """The options the environment sets (`ENVIRONMENT`), by option name; empty means unset."""
    return {option: value for option, name in ENVIRONMENT.items() if (value := os.environ.get(name))}
