"""A Channels project's asgi.py (docs/django.md), for the server matrix: Daphne runs it."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.servers.channels_settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()  # sets Django up first

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from spa_version.django.asgi import wrap_asgi  # noqa: E402


class HelloEcho(AsyncWebsocketConsumer):
    """Greets with "hello", then echoes every text frame."""

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data="hello")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)


application = wrap_asgi(
    ProtocolTypeRouter({"http": django_asgi_app, "websocket": URLRouter([path("ws", HelloEcho.as_asgi())])}),
    drain_grace=0.0,
    drain_window=0.5,
    drain_shutdown_window=1.0,
    heartbeat_interval=0.5,
)
