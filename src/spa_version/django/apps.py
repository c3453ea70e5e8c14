"""The Django app: add ``"spa_version.django"`` to ``INSTALLED_APPS`` for the template tags and checks."""

from __future__ import annotations

from django.apps import AppConfig


class SpaVersionConfig(AppConfig):
    """Registers the system checks and the settings-change hook."""

    name = "spa_version.django"
    label = "spa_version"
    verbose_name = "spa-version"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from . import checks  # noqa: F401 - registers the checks
        from .conf import DISPATCH_UID, clear_cache

        setting_changed.connect(clear_cache, dispatch_uid=DISPATCH_UID)
