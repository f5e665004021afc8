"""ASGI entry point: HTTP through Django, WebSockets through Channels routing.

A WebSocket handshake is refused (HTTP 403) unless its Origin is one of the allowed
origins (config/origins.py: scheme + host + port against SITE_URL and
CSRF_TRUSTED_ORIGINS); only then are the session and user read from the cookies.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from assistant.warmup import web_process_started  # noqa: E402

web_process_started()  # the ad engine loads now, in the background, not at the first socket

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.origins import SiteOriginValidator  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SiteOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
