"""WSGI entry point, for the dashboard and admin behind a sync server if one is wanted."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
