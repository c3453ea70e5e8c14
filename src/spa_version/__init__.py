"""spa-version: tell open single-page-app tabs that a new deploy is live.

Stamp every response with the current deploy version::

    from spa_version import VersionMiddleware
    app = VersionMiddleware(app)            # or app.add_middleware(VersionMiddleware)

then run ``spa-version bump`` after each deploy. See docs/protocol.md for the wire
format and README.md for the quick start.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .cors import EXPOSE_HEADERS
from .middleware import VersionMiddleware
from .options import DeployOptions, InvalidOptions, Options
from .protocol import CLIENT_HEADER, HEADER, format_header, parse_header
from .release import InvalidRelease, Release
from .stores import Store, StoreError, StoreUnavailable, open_store

__all__ = [
    "CLIENT_HEADER",
    "EXPOSE_HEADERS",
    "HEADER",
    "DeployOptions",
    "InvalidOptions",
    "InvalidRelease",
    "Options",
    "Release",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "VersionMiddleware",
    "__version__",
    "format_header",
    "open_store",
    "parse_header",
]
