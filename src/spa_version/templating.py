"""Jinja2 template globals for the page baseline and the JS helper's script tag.

For FastAPI/Starlette ``Jinja2Templates`` (or any ``jinja2.Environment``)::

    from fastapi.templating import Jinja2Templates
    from spa_version.templating import install

    templates = Jinja2Templates(directory="templates")
    install(templates)

then, in a template rendered with the request in its context (``TemplateResponse``
always passes it)::

    <head>
      {{ spa_version_meta() }}     {# <meta name="spa-version" content="42; label=..."> #}
      {{ spa_version_script() }}   {# <script src="/__spa-version.js" defer></script> #}
    </head>

The meta tag shows the release the `spa_version.VersionMiddleware` in front of the app
serves right now: the middleware puts its `CurrentVersion` in the ASGI scope
(``scope["spa_version"]``). Jinja2 is optional: it is imported only by `install`.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .assets import DEFAULT_SCRIPT_PATH
from .current import CurrentVersion

__all__ = ["SCOPE_KEY", "current_from_scope", "install", "meta_tag", "script_tag"]

#: The ASGI scope key under which `spa_version.VersionMiddleware` puts its `CurrentVersion`.
SCOPE_KEY = "spa_version"


def meta_tag(current: CurrentVersion) -> str:
    """``<meta name="spa-version" content="...">`` for *current*, or "" before the first release."""
    header = current.snapshot.header
    if header is None:
        return ""
    # The value is header-safe ASCII (validated), escaping is the belt to those braces.
    return f'<meta name="spa-version" content="{escape(header[1].decode("ascii"))}">'


def script_tag(src: str = DEFAULT_SCRIPT_PATH) -> str:
    """``<script src="..." defer></script>`` for the helper's script-tag build."""
    return f'<script src="{escape(src)}" defer></script>'


def current_from_scope(scope: Any) -> CurrentVersion:
    """The `CurrentVersion` a `spa_version.VersionMiddleware` put in this request's ASGI scope."""
    current = scope.get(SCOPE_KEY) if hasattr(scope, "get") else None
    if not isinstance(current, CurrentVersion):
        raise RuntimeError(
            "spa_version_meta(): this request did not pass through spa_version.VersionMiddleware "
            "(add it with app.add_middleware(VersionMiddleware)), or pass current= to install()"
        )
    return current


def install(
    target: Any,
    *,
    current: CurrentVersion | None = None,
    script_path: str = DEFAULT_SCRIPT_PATH,
) -> None:
    """Add ``spa_version_meta()`` and ``spa_version_script()`` to a Jinja2 environment's globals.

    *target* is a ``jinja2.Environment`` or anything with one as ``.env`` (Starlette's and
    FastAPI's ``Jinja2Templates``). By default the meta tag reads the version from the
    ``request`` in the template context; pass *current* (a middleware's ``.current``) to
    render templates outside a request.
    """
    from jinja2 import Environment, pass_context
    from jinja2.runtime import Context
    from markupsafe import Markup

    env = getattr(target, "env", target)
    if not isinstance(env, Environment):
        raise TypeError(
            f"install() needs a jinja2.Environment or Jinja2Templates, got {type(target).__name__}"
        )

    @pass_context
    def spa_version_meta(context: Context) -> Markup:
        source = current
        if source is None:
            request = context.get("request")
            source = current_from_scope(getattr(request, "scope", None) or {})
        return Markup(meta_tag(source))

    def spa_version_script() -> Markup:
        return Markup(script_tag(script_path))

    env.globals["spa_version_meta"] = spa_version_meta
    env.globals["spa_version_script"] = spa_version_script
