"""Django settings of the Channels app the server matrix runs (tests/servers/channels_asgi.py)."""

from __future__ import annotations

from tests.django.settings import *  # noqa: F403

# Everything from the environment, as a deployed process: SPA_VERSION_URL, SPA_VERSION_APP,
# SPA_VERSION_BUILD.
SPA_VERSION: dict[str, object] = {}
