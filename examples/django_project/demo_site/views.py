"""Views: a server-rendered page (sync) and a JSON API (async)."""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def index(request: HttpRequest) -> HttpResponse:
    """The page: its <meta name="spa-version"> is the version it was rendered with."""
    return render(request, "index.html", {"title": "spa-version + Django + Channels"})


async def api_time(request: HttpRequest) -> JsonResponse:
    """Any API call: the response carries X-SPA-Version, which the JS helper watches."""
    return JsonResponse({"time": time.time()})
