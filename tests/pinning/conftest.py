"""The Chromium tabs and the shared web directory of the pinning tests behind HAProxy
(tests/pinning/tabs.py); the blue/green ``fleet`` is registered in tests/conftest.py."""

from tests.pinning.tabs import pages, web_dir

__all__ = ["pages", "web_dir"]
