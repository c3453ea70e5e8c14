"""A server-sent event client for tests: reads a real stream over HTTP (httpx), parses
its events as an ``EventSource`` does (WHATWG HTML, "Server-sent events", 9.2.6), and
records how the stream ended."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from tests.support.servers import async_wait_for

__all__ = ["Event", "EventStream", "open_streams", "parse_events"]


@dataclass(frozen=True)
class Event:
    """One dispatched event: its type (``message`` when none was given), data and retry."""

    event: str
    data: str
    retry: int | None = None


@dataclass
class EventStream:
    """One open stream: the events so far, and how it ended (``ended`` is set once the
    body is over; ``error`` is what the client raised, None for a complete response)."""

    status: int | None = None
    headers: httpx.Headers | None = None
    events: list[Event] = field(default_factory=list)
    ended: bool = False
    error: BaseException | None = None
    task: asyncio.Task[None] | None = None

    def of_type(self, event: str) -> list[Event]:
        return [e for e in self.events if e.event == event]


class _Parser:
    """Lines in, events out, as an ``EventSource`` dispatches them (field names, the
    one leading space, comments, a blank line to dispatch)."""

    def __init__(self, out: list[Event]) -> None:
        self.out = out
        self.kind = ""
        self.data: list[str] = []
        self.retry: int | None = None

    def feed(self, line: str) -> None:
        if line == "":
            if self.data:
                self.out.append(Event(self.kind or "message", "\n".join(self.data), self.retry))
            self.kind, self.data, self.retry = "", [], None
            return
        if line.startswith(":"):
            return  # a comment (sse-starlette's pings)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.kind = value
        elif name == "data":
            self.data.append(value)
        elif name == "retry" and value.isdigit():
            self.retry = int(value)


def parse_events(body: bytes) -> list[Event]:
    """The events a whole stream body dispatches (lines split on CR LF, LF or CR)."""
    events: list[Event] = []
    parser = _Parser(events)
    for line in body.decode().replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        parser.feed(line)
    return events


async def _read(url: str, stream: EventStream, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
        try:
            async with client.stream("GET", url, headers=headers) as response:
                stream.status, stream.headers = response.status_code, response.headers
                parser = _Parser(stream.events)
                async for line in response.aiter_lines():
                    parser.feed(line)
        except Exception as exc:  # noqa: BLE001 (recorded for the test to assert on)
            stream.error = exc
        finally:
            stream.ended = True


async def open_streams(url: str, count: int, headers: dict[str, str] | None = None) -> list[EventStream]:
    """Open *count* streams at *url*; return once each has received its first event."""
    streams = [EventStream() for _ in range(count)]
    loop = asyncio.get_running_loop()
    for stream in streams:
        stream.task = loop.create_task(_read(url, stream, headers or {}))
    await async_wait_for(lambda: all(s.events or s.ended for s in streams), timeout=20)
    for stream in streams:
        assert not stream.ended, f"stream at {url} ended at once: {stream}"
    return streams
