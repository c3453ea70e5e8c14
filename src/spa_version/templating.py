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
(``scope["spa_version"]``). Under a mount prefix (ASGI ``root_path``: ``uvicorn
--root-path /api``, FastAPI ``root_path=``, Starlette ``Mount``) the script tag carries the
prefix the middleware was mounted at: ``<script src="/api/__spa-version.js"
data-endpoint="/api/__spa-version" defer>``. Jinja2 is optional: it is imported only by
`install`.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .assets import DEFAULT_SCRIPT_PATH
from .current import CurrentVersion
from .protocol import DEFAULT_ENDPOINT

__all__ = [
    "ROOT_PATH_KEY",
    "SCOPE_KEY",
    "current_from_scope",
    "install",
    "meta_tag",
    "mount_prefix",
    "script_tag",
]

#: The ASGI scope key under which `spa_version.VersionMiddleware` puts its `CurrentVersion`.
SCOPE_KEY = "spa_version"
#: The ASGI scope key under which it puts the ``root_path`` it was reached with, when not
#: empty: routing further in (a Starlette ``Mount``) extends ``scope["root_path"]``, but the
#: endpoint and the script are served under this prefix.
ROOT_PATH_KEY = "spa_version.root_path"


def meta_tag(current: CurrentVersion) -> str:
    """``<meta name="spa-version" content="...">`` for *current*, or "" while nothing is stamped."""
    header = current.snapshot.header
    if header is None:
        return ""
    # The value is header-safe ASCII (validated), escaping is the belt to those braces.
    return f'<meta name="spa-version" content="{escape(header[1].decode("ascii"))}">'


def script_tag(src: str = DEFAULT_SCRIPT_PATH, endpoint: str | None = None) -> str:
    """``<script src="..." defer></script>`` for the helper's script-tag build.

    *src* and *endpoint* are the URL paths the page requests, mount prefix included.
    *endpoint* is written as ``data-endpoint`` (the helper's ``endpoint`` option) unless it
    is the helper's default, ``/__spa-version``, or None.
    """
    extra = ""
    # DEFAULT_ENDPOINT is the helper's own default too (docs/js.md, Options).
    if endpoint is not None and endpoint != DEFAULT_ENDPOINT:
        extra = f' data-endpoint="{escape(endpoint)}"'
    return f'<script src="{escape(src)}"{extra} defer></script>'


def mount_prefix(scope: Any) -> str:
    """The URL prefix the version endpoint and the script are served under, for this request.

    The ``root_path`` the `spa_version.VersionMiddleware` saw (`ROOT_PATH_KEY`); without
    the middleware in the scope, the request's own ``root_path``. "" at the site root.
    """
    if not hasattr(scope, "get"):
        return ""
    prefix = scope.get(ROOT_PATH_KEY, "") if SCOPE_KEY in scope else scope.get("root_path", "")
    return prefix.rstrip("/") if isinstance(prefix, str) else ""


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
    endpoint: str | None = DEFAULT_ENDPOINT,
) -> None:
    """Add ``spa_version_meta()`` and ``spa_version_script()`` to a Jinja2 environment's globals.

    *target* is a ``jinja2.Environment`` or anything with one as ``.env`` (Starlette's and
    FastAPI's ``Jinja2Templates``). By default the meta tag reads the version from the
    ``request`` in the template context; pass *current* (a middleware's ``.current``) to
    render templates outside a request. *script_path* and *endpoint* are the middleware's
    options of the same names, relative to its mount: the script tag prefixes them with
    the request's mount prefix (`mount_prefix`).
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

    @pass_context
    def spa_version_script(context: Context) -> Markup:
        prefix = mount_prefix(getattr(context.get("request"), "scope", None))
        return Markup(script_tag(prefix + script_path, None if endpoint is None else prefix + endpoint))

    env.globals["spa_version_meta"] = spa_version_meta
    env.globals["spa_version_script"] = spa_version_script
