"""ASGI entry point: `gunicorn config.asgi:application -k uvicorn_worker.UvicornWorker`.

The gateway app serves /v1 (and health checks) itself and hands every other path to Django.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_asgi_application()

from apps.gateway.app import GatewayApp  # noqa: E402 - needs Django set up first

application = GatewayApp(django_application)
