"""Django is set up once, before any test module here imports Django's test tools
(tests/support/django_tests.py, which also stops the listener thread after each module)."""

from __future__ import annotations

from tests.support.django_tests import no_listener_thread_left

__all__ = ["no_listener_thread_left"]
