"""Template tags: ``{% load spa_version %}``, then ``{% spa_version_meta %}``, ``{% spa_version_script %}``.

``{% spa_version_meta %}`` renders the page baseline the JS helper reads
(docs/protocol.md, "The page baseline")::

    <meta name="spa-version" content="42; label=a1b2c3d; policy=next-navigation">

and nothing before the first release is known. ``{% spa_version_script %}`` renders
the script tag of the helper's script-tag build, served by the middleware::

    <script src="/__spa-version.js" defer></script>

Under a mount prefix (``SCRIPT_NAME=/shop``, or ``FORCE_SCRIPT_NAME``) the URLs carry it, as
``reverse()`` does (Django's script prefix)::

    <script src="/shop/__spa-version.js" data-endpoint="/shop/__spa-version" defer></script>
"""

from __future__ import annotations

from django import template
from django.template.context import Context
from django.urls import get_script_prefix
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from ...templating import script_tag
from ..conf import get_config, settings_host
from ..listener_thread import listener_thread

register = template.Library()


@register.simple_tag(takes_context=True)
def spa_version_meta(context: Context) -> SafeString:
    """The ``<meta name="spa-version">`` tag for the release this response is stamped with."""
    host = settings_host()  # the one the middleware stamped this response with
    if not host.ready:  # rendered outside a request the middleware saw
        listener_thread().serve(host)
    header = host.current.snapshot.header
    if header is None:
        return mark_safe("")
    return format_html('<meta name="spa-version" content="{}">', header[1].decode("ascii"))


@register.simple_tag
def spa_version_script() -> SafeString:
    """The ``<script>`` tag loading the JS helper from ``SPA_VERSION["SCRIPT_PATH"]``.

    The paths are prefixed with Django's script prefix (``SCRIPT_NAME``, set per request by
    Django's handlers, or ``FORCE_SCRIPT_NAME``), and the version endpoint is passed on as
    ``data-endpoint`` when it is not the helper's default.
    """
    config = get_config()
    if config.script_path is None:
        return mark_safe("")
    prefix = get_script_prefix().rstrip("/")
    endpoint = None if config.endpoint is None else prefix + config.endpoint
    # script_tag escapes both values.
    return mark_safe(script_tag(prefix + config.script_path, endpoint))
