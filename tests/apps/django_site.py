"""A real Django site in one module, served as `tests.apps.django_site:application` (gunicorn).

Like a project's wsgi.py it names its settings in DJANGO_SETTINGS_MODULE itself, which happens
after the agent started: the agent must leave Django's settings alone until then.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.apps.django_settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
