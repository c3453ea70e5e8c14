"""`process_settings` with a slow heartbeat (10 s, so a record lives 30 s): a record that
disappears within a few seconds of the process exiting was removed, not expired."""

from __future__ import annotations

from typing import Any

from tests.django.process_settings import *  # noqa: F403

SPA_VERSION: dict[str, Any] = {"HEARTBEAT_INTERVAL": 10}
