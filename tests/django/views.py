"""Views for the Django tests: one sync, one async, and a few that shape the response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt


def page(request: HttpRequest) -> HttpResponse:
    """A sync view rendering the template tags."""
    return render(request, "page.html")


async def async_api(request: HttpRequest) -> JsonResponse:
    """An async view."""
    return JsonResponse({"ok": True})


def cors(request: HttpRequest) -> HttpResponse:
    """A response with CORS headers, shaped by the query string."""
    response = HttpResponse("cors")
    if "origin" in request.GET:
        response["Access-Control-Allow-Origin"] = request.GET["origin"]
    if "expose" in request.GET:
        response["Access-Control-Expose-Headers"] = request.GET["expose"]
    return response


def timed(request: HttpRequest) -> HttpResponse:
    """An HTML page with Server-Timing metrics of its own."""
    return HttpResponse("<p>timed</p>", headers={"Server-Timing": 'db;dur=53, app;desc="render"'})


def not_modified(request: HttpRequest) -> HttpResponseNotModified:
    """A 304, as Django's ConditionalGetMiddleware answers a revalidated page."""
    return HttpResponseNotModified()


def preset(request: HttpRequest) -> HttpResponse:
    """A response that already carries a (wrong) version header."""
    response = HttpResponse("preset")
    response["x-spa-version"] = "999; label=wrong"
    return response


@csrf_exempt
def submit(request: HttpRequest) -> JsonResponse:
    """An unsafe-method endpoint, for stale-client enforcement."""
    return JsonResponse({"method": request.method})


async def events(request: HttpRequest) -> StreamingHttpResponse:
    """A server-sent event stream from an async iterator: a ``tick`` every 0.1 s, forever."""

    async def ticks() -> AsyncIterator[bytes]:
        n = 0
        while True:
            n += 1
            yield f"event: tick\ndata: {n}\n\n".encode()
            await asyncio.sleep(0.1)

    return StreamingHttpResponse(ticks(), content_type="text/event-stream")
