"""spa-version: tell open single-page-app tabs that a new deploy is live.

Stamp every response with the current deploy version::

    from spa_version import VersionMiddleware
    app = VersionMiddleware(app)            # or app.add_middleware(VersionMiddleware)

then run ``spa-version bump`` after each deploy. See docs/protocol.md for the wire
format and README.md for the quick start.
"""

from __future__ import annotations

import time as _time

__version__ = "0.1.0"

# Python keeps time as 64-bit nanoseconds, which end on 2262-04-11: on a host whose clock
# reads later, time.time() raises OverflowError, and so does the standard library's
# `import logging` (its start time), a traceback before any code of ours could run. Say it
# in one line instead, before anything is read or written (exit 1, like any environment
# failure of the CLI). docs/protocol.md, "Epochs".
try:
    _time.time()
except OverflowError:
    raise SystemExit(
        "spa-version: error: this host's clock reads a time past 2262-04-11, beyond what Python can "
        "represent (time.time() overflows); set the clock right (nothing was read or written)"
    ) from None

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
