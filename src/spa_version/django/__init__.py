"""Django integration for spa-version (``pip install 'spa-version[django]'``).

::

    INSTALLED_APPS = [..., "spa_version.django"]            # template tags + system checks
    MIDDLEWARE = ["spa_version.django.VersionMiddleware", ...]
    SPA_VERSION = {"URL": "redis://localhost:6379/0", "APP": "shop"}

Works under WSGI and ASGI. With Channels, also wrap the ``ProtocolTypeRouter`` with
`spa_version.django.asgi.wrap_asgi` so websocket handshakes are stamped. See
docs/django.md.
"""

from __future__ import annotations

try:
    import django  # noqa: F401
except ModuleNotFoundError as exc:  # the extra is not installed
    raise ImportError("spa_version.django needs Django: pip install 'spa-version[django]'") from exc

from .middleware import VersionMiddleware

__all__ = ["VersionMiddleware"]
