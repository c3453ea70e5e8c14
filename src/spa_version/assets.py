"""The JS helper's script-tag build, shipped inside the wheel and served by the middleware.

The file ``spa_version/static/spa-version.js`` is a copy of ``js/dist/spa-version.iife.js``
(see docs/js.md for how it is kept in sync). Apps without a bundler add one tag::

    <script src="/__spa-version.js" defer></script>
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

__all__ = ["DEFAULT_SCRIPT_PATH", "ScriptAsset", "load_script"]

DEFAULT_SCRIPT_PATH = "/__spa-version.js"


class ScriptAsset:
    """The script's bytes and the response headers that go with them, built once."""

    __slots__ = ("body", "etag", "headers")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode("ascii") + b'"'
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"text/javascript; charset=utf-8"),
            # Revalidate each time: the ETag makes that a cheap 304, and an upgrade of
            # the package is picked up at once.
            (b"cache-control", b"no-cache"),
            (b"etag", self.etag),
        ]


@lru_cache(maxsize=1)
def load_script() -> ScriptAsset | None:
    """The shipped script, or None if this build of the package has none."""
    try:
        body = resources.files("spa_version").joinpath("static/spa-version.js").read_bytes()
    except (FileNotFoundError, OSError):
        return None
    return ScriptAsset(body)
