"""Pinning under Django (docs/protocol.md, "Pinning"): the ``SLOT`` setting, else
``SPA_VERSION_SLOT``, is stamped as ``; slot=<slot>`` in the version header, and not at
all without it."""

from __future__ import annotations

import os
from unittest import mock

from django.test import SimpleTestCase, override_settings

from .support import bump, fresh_settings, header_value


class SlotTests(SimpleTestCase):
    def test_the_declared_slot_is_stamped(self) -> None:
        spa = fresh_settings()  # a namespace of its own: a listener started with this env
        with mock.patch.dict(os.environ, {"SPA_VERSION_SLOT": "green"}), override_settings(SPA_VERSION=spa):
            release = bump(spa, "slot-1")
            response = self.client.get("/")
        self.assertEqual(response["X-SPA-Version"], header_value(release) + "; slot=green")

    def test_no_slot_no_parameter(self) -> None:
        spa = fresh_settings()
        with mock.patch.dict(os.environ, {"SPA_VERSION_SLOT": ""}), override_settings(SPA_VERSION=spa):
            release = bump(spa, "plain-1")
            response = self.client.get("/")
        self.assertEqual(response["X-SPA-Version"], header_value(release))

    def test_the_slot_setting_wins_over_the_environment(self) -> None:
        spa = fresh_settings(SLOT="blue")
        with mock.patch.dict(os.environ, {"SPA_VERSION_SLOT": "green"}), override_settings(SPA_VERSION=spa):
            release = bump(spa, "setting-1")
            response = self.client.get("/")
        self.assertEqual(response["X-SPA-Version"], header_value(release) + "; slot=blue")
