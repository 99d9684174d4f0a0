"""What gunicorn serves: Django, with the webhooks' paths answered before its request handler
(syncsite/shortpath.py)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncsite.settings")
django_application = get_wsgi_application()

from syncsite.shortpath import short_path_wsgi  # noqa: E402  (needs the apps loaded)

application = short_path_wsgi(django_application)
