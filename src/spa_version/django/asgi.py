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

Django's ``ASGIHandler`` (and a ``ProtocolTypeRouter`` without a ``"lifespan"`` entry)
refuses the ASGI lifespan protocol by raising. The wrapper answers lifespan on their
behalf (``lifespan.startup.complete``, ``lifespan.shutdown.complete``), so the
middleware's listener starts and stops with the server, and the server never logs
"lifespan unsupported". A ``ProtocolTypeRouter`` that routes ``"lifespan"`` to an app
of its own gets the lifespan messages itself.

Django's ``ASGIHandler`` sends response header names as written (``X-SPA-Version``,
``Access-Control-Allow-Origin``), while ASGI expects lowercase names and the pure
middleware matches them as such; the wrapper lowercases them on the way out, so the
header set by Django's middleware is replaced, not duplicated, and CORS is seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..asgi_types import ASGIApp, Message, Receive, Scope, Send
from ..host import Host
from ..middleware import VersionMiddleware
from ..options import OptionArgs
from .conf import serve_with, settings_host

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["wrap_asgi"]


def _routes_lifespan(application: ASGIApp) -> bool:
    """Whether *application* is a Channels ``ProtocolTypeRouter`` with a ``"lifespan"`` app."""
    mapping = getattr(application, "application_mapping", None)
    return isinstance(mapping, dict) and "lifespan" in mapping


async def _answer_lifespan(receive: Receive, send: Send) -> None:
    """Speak the ASGI lifespan protocol for an app that has nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _DjangoStack:
    """Adapts a Django ASGI stack for the pure middleware (see the module docstring):
    answers lifespan on Django's behalf and lowercases ``http.response.start`` header names."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._answer_lifespan = not _routes_lifespan(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self._answer_lifespan:
            await _answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_lowercase(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("headers"):
                message["headers"] = [(name.lower(), value) for name, value in message["headers"]]
            await send(message)

        await self.app(scope, receive, send_lowercase)


def wrap_asgi(application: ASGIApp, **overrides: Unpack[OptionArgs]) -> VersionMiddleware:
    """*application* wrapped in `spa_version.VersionMiddleware`, configured from ``SPA_VERSION``.

    Keyword arguments override single options (``stamp_websocket=True``, ...). Call it
    after Django is set up (after ``get_asgi_application()``). The wrapper and Django's
    middleware serve one `spa_version.host.Host` (the settings', with the overrides), which
    the wrapper follows: the header, the endpoint and the meta tag of one response agree,
    and no listener thread runs.
    """
    host = settings_host()
    if overrides:
        host = Host(host.options.replace(**overrides))
    serve_with(host)
    return VersionMiddleware.hosting(_DjangoStack(application), host)
