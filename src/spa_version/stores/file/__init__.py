"""The file store (``file://DIR``): the embedded default, for one host.

`FileStore` (`store`) is the store; `fleet` keeps the fleet's heartbeat records beside
its document; `modes` sets the modes of both whatever the umask.
"""

from __future__ import annotations

from .store import FileStore

__all__ = ["FileStore"]
