"""A Channels project's asgi.py, as docs/django.md tells users to write it."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

from spa_version.django.asgi import wrap_asgi
from spa_version.middleware import VersionMiddleware


class EchoConsumer(AsyncWebsocketConsumer):
    """Echoes every text frame."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)


def build_application() -> VersionMiddleware:
    """Django for HTTP, Channels for websockets, both behind the pure ASGI middleware."""
    django_asgi_app = get_asgi_application()
    return wrap_asgi(
        ProtocolTypeRouter(
            {
                "http": django_asgi_app,
                "websocket": URLRouter([path("ws/echo/", EchoConsumer.as_asgi())]),
            }
        )
    )
