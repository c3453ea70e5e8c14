"""`Stamping`: what Django's request path reads, precomputed for one host at one version.

`spa_version.django.conf` keeps the stamping of the settings' host in
``SERVING.stamping`` and replaces it whole each time the host's version changes
(`spa_version.current.CurrentVersion.watch`). A request reads that one attribute and
finds every value it needs in one small object: on Django's path, each further object
a request touches shows in the benchmark (docs/benchmarks.md).

`Stamping.stamp` sets the headers: the version header on every response, and the
Server-Timing metric on a document or a ``304`` (`spa_version.responses.is_document`).
"""

from __future__ import annotations

from typing import final

from django.http import HttpResponseBase
from django.http.response import ResponseHeaders

from ..current import Snapshot
from ..host import Host
from ..responses import is_document

__all__ = ["Stamping"]

_ACAO = "Access-Control-Allow-Origin"
_ACEH = "Access-Control-Expose-Headers"
_SERVER_TIMING = "Server-Timing"


@final
class Stamping:
    """*host* serving *snapshot*, as Django's request path reads it. Immutable by use:
    a new version gets a new one."""

    __slots__ = (
        "own_paths",
        "screens",
        "header_name",
        "header_value",
        "timing_value",
        "exposes",
        "wrapped",
        "host",
        "snapshot",
    )

    def __init__(self, host: Host, snapshot: Snapshot, *, wrapped: bool = False) -> None:
        responses = host.responses
        #: The paths the middleware answers itself (endpoint, script; None: off).
        self.own_paths = host.own_paths
        #: Whether each request is looked at before the app answers it: a client's epoch
        #: may be refused (``min_compatible``), or a build is declared, so each request is
        #: counted for the fleet record and may be cut off by a security release (a
        #: `spa_version.deploy.Deployment` sets ``cutoff_epoch`` only for a declared build).
        self.screens = (
            snapshot.min_compatible is not None or host.deployment.count_request is not None or wrapped
        )
        self.header_name = responses.header_name
        stamps = snapshot.header_text is not None and snapshot.timing_text is not None
        #: The header's value and the Server-Timing metric (None, "": nothing to stamp
        #: yet, the store not read and no fallback).
        self.header_value = snapshot.header_text if stamps else None
        self.timing_value = snapshot.timing_text or ""
        #: Whether a CORS response gets the header's name in Access-Control-Expose-Headers.
        self.exposes = responses.expose is not None
        #: Whether the ASGI wrapper serves this host too (`spa_version.django.asgi.wrap_asgi`):
        #: it answers, counts and stamps the requests it has seen (it marks their ASGI
        #: scope, `spa_version.templating.SCOPE_KEY`), and Django's middleware leaves those
        #: alone; stamped twice, a page would list the Server-Timing metric twice.
        self.wrapped = wrapped
        self.host = host
        self.snapshot = snapshot

    def stamp(self, response: HttpResponseBase) -> None:
        """Set the version header on *response* (replacing, never duplicating), its
        Server-Timing metric where a page reads it (a document or a ``304``:
        `spa_version.responses.is_document`), and expose the header on a CORS response."""
        value = self.header_value
        if value is None:
            return
        headers = response.headers
        headers[self.header_name] = value  # case-insensitive: replaces
        # Names that may be absent are looked for with `_take`, not `in` or .get: those
        # raise and catch a KeyError in Django's ResponseHeaders, which costs more than a
        # header set (docs/benchmarks.md). Content-Type is nearly always there.
        try:
            content_type: str | None = headers["Content-Type"]
        except KeyError:
            content_type = None
        if response.status_code == 304 or is_document[content_type]:
            # A list header: ours goes beside the app's own metrics (W3C Server Timing).
            own = _take(headers, _SERVER_TIMING)
            metric = self.timing_value
            headers[_SERVER_TIMING] = metric if own is None else f"{own}, {metric}"
        if self.exposes:
            taken = headers.pop(_ACAO, None)  # `_take`, inlined: the common case pops nothing
            if taken is not None:
                headers[_ACAO] = _value(taken)
                # A cross-origin page reads only the safelisted headers and those listed
                # here (Fetch standard, CORS): merge, never replace, never duplicate.
                headers[_ACEH] = self.host.responses.exposed(_take(headers, _ACEH))


def _take(headers: ResponseHeaders, name: str) -> str | None:
    """Remove the header *name* from *headers* and return its value, or None if absent.

    A caller that keeps the header sets it again: it then comes last, and the order of
    fields with different names carries no meaning (RFC 9110 §5.3).
    """
    taken = headers.pop(name, None)
    return None if taken is None else _value(taken)


def _value(taken: str | tuple[str, str]) -> str:
    # Django's ResponseHeaders.pop returns the stored (name, value) pair (every Django
    # this package supports, 4.2 on); a plain value would be taken as it is.
    return taken[1] if isinstance(taken, tuple) else taken
