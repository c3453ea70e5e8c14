"""URLs for the Django tests."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.page),
    path("api/async/", views.async_api),
    path("cors/", views.cors),
    path("events/", views.events),
    path("preset/", views.preset),
    path("timed/", views.timed),
    path("not-modified/", views.not_modified),
    path("submit/", views.submit),
]
