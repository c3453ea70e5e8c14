"""ASGI entry point: Django for HTTP, Channels for websockets, all behind spa-version.

Run it from the repository root::

    .venv/bin/uvicorn --app-dir examples/django_project demo_site.asgi:application --port 8002
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
# Set Django up before importing anything that touches models or settings.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from demo_site.consumers import EchoConsumer  # noqa: E402
from spa_version.django.asgi import wrap_asgi  # noqa: E402

# The pure ASGI middleware around the ProtocolTypeRouter stamps websocket handshakes too
# (Django's MIDDLEWARE only ever sees HTTP), configured from the same SPA_VERSION setting.
application = wrap_asgi(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": URLRouter([path("ws/echo/", EchoConsumer.as_asgi())]),
        }
    )
)
