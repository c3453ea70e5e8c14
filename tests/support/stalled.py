"""A websocket client that stops reading (a phone in a tunnel), and the app route that
floods it: together they make a server's ``send`` block on a full buffer."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
from pathlib import Path

from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["StalledWebsocket", "flood"]


async def flood(websocket: WebSocket) -> None:
    """Sends a steady stream (16 KiB every 10 ms) until the connection ends: a client that
    stops reading fills its TCP window, then the server's buffers, and the server's
    ``send`` blocks (Daphne's never does: Twisted buffers it all, hence the pace)."""
    await websocket.accept()
    payload = b"x" * 16384
    # Ends with the connection: a disconnect, or a send after the close (the drain's
    # DrainedError is an OSError; Starlette refuses a send after a close with RuntimeError).
    with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
        while True:
            await websocket.send_bytes(payload)
            await asyncio.sleep(0.01)


class StalledWebsocket:
    """A websocket client that completes the handshake and then never reads again. Its
    receive buffer is made tiny before it connects, so a server that keeps sending fills
    the TCP window at once, then its own buffers, and its sends block.

    A raw socket with the RFC 6455 §4.1 handshake written by hand, so that no client
    library reads behind the test's back. 127.0.0.1 only.
    """

    def __init__(self, port: int, path: str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connect: the window scale is agreed in the SYN (RFC 7323 §2.2).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)  # byte by byte: stop at the end of the response head
            if not chunk:
                raise ConnectionError(f"closed during the handshake: {head!r}")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"handshake refused: {head.splitlines()[0]!r}")
        self.server = self.sock.getpeername()
        self._backlog = -1

    def server_backlog(self) -> int:
        """Bytes the server's kernel holds for this client, unsent or unacknowledged
        (``tx_queue`` of the server's socket in /proc/net/tcp, proc(5)); -1: not found."""
        here = self.sock.getsockname()[1]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
            if (local, remote) == (self.server[1], here):
                return int(fields[4].split(":")[0], 16)
        return -1

    def blocked(self) -> bool:
        """Whether the server's kernel buffer for this client is full: over 256 KiB queued,
        and the same as at the previous call (the window is shut). Polled with a deadline
        before the step a test makes: by then the server's own buffer fills, and its
        sends block."""
        previous, self._backlog = self._backlog, self.server_backlog()
        return self._backlog >= 256 * 1024 and self._backlog == previous

    def close(self) -> None:
        """Reset the connection (SO_LINGER 0: no FIN handshake to wait for)."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
