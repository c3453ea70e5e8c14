"""The blue/green fleet fixture of test_blue_green.py, shared with test_pinning.py."""

from tests.drain.test_haproxy_blue_green import fleet

__all__ = ["fleet"]
