"""Channels (and any Django ASGI stack): stamp websocket handshakes too.

Django's middleware only sees HTTP. To stamp websocket handshakes as well, wrap the
outermost ASGI application (Channels' ``ProtocolTypeRouter``) in the pure ASGI
`spa_version.VersionMiddleware`, configured from the same ``SPA_VERSION`` settings::

    # asgi.py
    from django.core.asgi import get_asgi_application
    django_asgi_app = get_asgi_application()          # sets Django up first

    from channels.routing import ProtocolTypeRouter, URLRouter
    from spa_version.django.asgi import wrap_asgi

    application = wrap_asgi(ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }))

The wrapper runs the ASGI lifespan protocol itself when the wrapped app refuses it
(Django's ``ASGIHandler`` does), so its listener starts and stops with the server.
"""

from __future__ import annotations

from typing import Any

from ..middleware import ASGIApp, VersionMiddleware
from .conf import get_config

__all__ = ["wrap_asgi"]


def wrap_asgi(application: ASGIApp, **overrides: Any) -> VersionMiddleware:
    """*application* wrapped in `spa_version.VersionMiddleware`, configured from ``SPA_VERSION``.

    Keyword arguments override single options (``stamp_websocket=True``, ...). Call it
    after Django is set up (after ``get_asgi_application()``).
    """
    return VersionMiddleware(application, **{**get_config().asgi_options(), **overrides})
