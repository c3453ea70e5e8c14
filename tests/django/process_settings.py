"""Settings for Django served as a process of its own (runserver, uvicorn), configured the
way a deployed app is: the store, the app and the build come from the environment
(``SPA_VERSION_URL``, ``SPA_VERSION_APP``, ``SPA_VERSION_BUILD``)."""

from __future__ import annotations

from typing import Any

from tests.django.settings import *  # noqa: F403

SPA_VERSION: dict[str, Any] = {}
