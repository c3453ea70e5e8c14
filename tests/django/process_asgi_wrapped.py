"""Django's ASGI application inside `spa_version.django.asgi.wrap_asgi` (the pure
middleware: websockets and event streams are drained), for ``uvicorn``, on
`process_settings`. Drain timings short enough for a test."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.process_settings")
django_application = get_asgi_application()

from spa_version.django.asgi import wrap_asgi  # noqa: E402 (after Django's set-up)

application = wrap_asgi(django_application, drain_grace=0.0, drain_window=0.5, heartbeat_interval=0.5)
