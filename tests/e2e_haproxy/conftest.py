"""The fixtures of the HAProxy end-to-end tests: the blue/green fleet of
test_blue_green.py, and the Chromium tabs and shared web directory of tabs.py."""

from tests.e2e_haproxy.tabs import pages, web_dir
from tests.e2e_haproxy.test_blue_green import fleet

__all__ = ["fleet", "pages", "web_dir"]
