"""A Channels websocket consumer: echoes text frames."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer


class EchoConsumer(AsyncWebsocketConsumer):
    """Echo. The handshake is stamped by the ASGI wrapper in asgi.py, not by the consumer."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)
