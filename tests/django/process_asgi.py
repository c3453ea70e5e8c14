"""Django's own ASGI application (no Channels, no wrapper) for ``uvicorn``, on `process_settings`."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.process_settings")
application = get_asgi_application()
