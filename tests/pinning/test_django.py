"""Pinning under Django (docs/protocol.md, "Pinning"): the ``SLOT`` setting, else
``SPA_VERSION_SLOT``, is stamped as ``; slot=<slot>`` in the version header, and not at
all without it."""

from __future__ import annotations

import os
from unittest import mock

from tests.support.django_tests import SpaVersionTestCase, header_value, no_listener_thread_left

__all__ = ["no_listener_thread_left"]  # autouse: no listener thread outlives this module


class SlotTests(SpaVersionTestCase):
    # Each test has a namespace of its own (SpaVersionTestCase): its listener starts with this env.

    def test_the_declared_slot_is_stamped(self) -> None:
        """SPA_VERSION_SLOT is stamped as ``; slot=<slot>``."""
        with mock.patch.dict(os.environ, {"SPA_VERSION_SLOT": "green"}):
            release = self.bump("slot-1")
            response = self.client.get("/")
        self.assertEqual(response["X-SPA-Version"], header_value(release) + "; slot=green")

    def test_no_slot_no_parameter(self) -> None:
        """An empty SPA_VERSION_SLOT stamps no slot parameter at all."""
        with mock.patch.dict(os.environ, {"SPA_VERSION_SLOT": ""}):
            release = self.bump("plain-1")
            response = self.client.get("/")
        self.assertEqual(response["X-SPA-Version"], header_value(release))

    def test_the_slot_setting_wins_over_the_environment(self) -> None:
        """The SLOT setting is stamped, not SPA_VERSION_SLOT."""
        self.use_settings(SLOT="blue")
        with mock.patch.dict(os.environ, {"SPA_VERSION_SLOT": "green"}):
            release = self.bump("setting-1")
            response = self.client.get("/")
        self.assertEqual(response["X-SPA-Version"], header_value(release) + "; slot=blue")
