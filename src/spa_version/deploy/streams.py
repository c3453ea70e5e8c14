"""Server-sent event streams: which HTTP responses the drain tracks, and how one ends.

The rule (docs/protocol.md, "Stream drain"): a response is a stream when its
``http.response.start`` carries ``Content-Type: text/event-stream`` (WHATWG HTML,
"Server-sent events": the one media type an ``EventSource`` accepts). It is decided
from the headers the app sends, once per response, with no guess about timing (a slow
download is not a stream) and nothing for the app to add (sse-starlette's
``EventSourceResponse``, Starlette's ``StreamingResponse`` with that media type and
Django's ``StreamingHttpResponse`` all set it).

A tracked `Stream` passes the app's messages to the server unchanged and at once (no
buffering: each body chunk is sent as the app sends it). It only remembers whether the
last chunk ended an event, so that the drain's last event (`spa_version.protocol.
stream_final_event`) never lands in the middle of one. Once the drain has ended the
stream, the app's further messages are dropped: the response is complete for the server
(ASGI spec, HTTP: no message may follow ``more_body`` False).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

from ..asgi_types import Message, Send
from ..protocol import stream_final_event

__all__ = ["EVENT_STREAM", "Stream", "is_event_stream"]

#: The media type of a server-sent event stream (WHATWG HTML, "Server-sent events").
EVENT_STREAM = b"text/event-stream"
_CONTENT_TYPE = b"content-type"
# Event boundaries: a blank line, with any of the three line ends the format allows.
_BOUNDARIES = (b"\n\n", b"\r\r", b"\r\n\r\n")


def is_event_stream(headers: Iterable[tuple[bytes, bytes]] | None) -> bool:
    """Whether ASGI response *headers* declare ``text/event-stream`` (parameters allowed,
    names and type case-insensitive, RFC 9110 §8.3.1). Never raises on odd headers."""
    if not headers:
        return False
    for key, value in headers:
        if len(key) == 12 and (key == _CONTENT_TYPE or key.lower() == _CONTENT_TYPE):
            # On every response of a process with a build: the common answers (another
            # type, or exactly text/event-stream) cost one slice and compare.
            if value[:17].lower() != EVENT_STREAM:
                return False
            return bytes(value).split(b";", 1)[0].strip(b" \t").lower() == EVENT_STREAM
    return False


async def _dropped() -> None:
    """What the app's send returns once the drain has ended its stream."""


class Stream:
    """One tracked event stream: the send it goes out through, whether it was ended
    (by the app's last chunk or by the drain), and the task running its handler.

    The same shape as the drain's websockets (``send``, ``closed``, ``task``,
    ``aborted``, ``server_send``), so that `spa_version.deploy.drain.WebsocketDrain`
    schedules both with one spread.
    """

    __slots__ = ("send", "closed", "task", "aborted", "server_send", "ended_by_drain", "boundary")

    def __init__(self, send: Send, task: asyncio.Task[Any] | None, server_send: Send) -> None:
        self.send = send
        #: Set once no more body may go out: the app's last chunk, or the drain's event.
        self.closed = False
        self.task = task
        self.server_send = server_send
        #: Set when the drain cancelled the handler after a send past its time limit.
        self.aborted = False
        #: Set when the drain sent the last event and cancelled the handler to end it.
        self.ended_by_drain = False
        #: Whether the last body chunk ended an event (or none was sent yet).
        self.boundary = True

    def relay(self, message: Message) -> Awaitable[None]:
        """Pass one of the app's messages on, unchanged (dropped once the stream is ended)."""
        if self.closed:
            return _dropped()
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body:
                self.boundary = bytes(body[-4:]).endswith(_BOUNDARIES)
            if not message.get("more_body", False):
                self.closed = True
        return self.send(message)

    def drain_cancelled(self) -> bool:
        """Whether the cancellation the handler's task just got is the drain's own, and
        is over: the handler then returns as an app that is done, so the server ends the
        response without an error. Python 3.11+ counts cancellations: a second one (the
        server's own shutdown) still propagates."""
        if not (self.ended_by_drain or self.aborted) or self.task is None:
            return False
        return self.task.uncancel() == 0

    async def send_final(self, header_value: bytes) -> None:
        """Send the drain's last event, carrying *header_value*, as the response's end."""
        body = stream_final_event(header_value, boundary=self.boundary)
        await self.send({"type": "http.response.body", "body": body, "more_body": False})
