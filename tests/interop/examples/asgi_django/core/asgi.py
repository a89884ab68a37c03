"""The project's ASGI app as the example builds it: Django's ASGI app first (it sets Django up, so the
models import), then ``socketio.ASGIApp`` with Django's app as ``other_asgi_app``. Served as ``uvicorn
core.asgi:application`` from this directory.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
django_asgi_app = get_asgi_application()

# imports that reach the models come after Django is set up
from django_io.views import sio, socketio  # noqa: E402

application = socketio.ASGIApp(sio, django_asgi_app)
