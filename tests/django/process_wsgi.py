"""Django's own WSGI application for ``gunicorn``, on `process_settings`."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.process_settings")
application = get_wsgi_application()
