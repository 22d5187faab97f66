"""Settings and views of tests/apps/django_site.py (a database is an sqlite file from SQLITE_PATH)."""

from __future__ import annotations

import os
import tempfile

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.apps.django_settings"
MIDDLEWARE: list[str] = []
INSTALLED_APPS: list[str] = []
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ.get("SQLITE_PATH") or os.path.join(tempfile.gettempdir(), "django-site.db")}}
SITE_MARKER = "configured-by-the-site"  # proves these settings, not empty defaults, are in force


def order(request: HttpRequest, order_id: int) -> JsonResponse:
    from django.conf import settings

    with connection.cursor() as cursor:
        cursor.execute("SELECT %s + 1, 'secret-note'", [order_id])
        row = cursor.fetchone()
    return JsonResponse({"next": row[0], "marker": settings.SITE_MARKER, "pid": os.getpid()})


def ping(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True, "pid": os.getpid()})


urlpatterns = [path("orders/<int:order_id>", order), path("ping", ping)]
