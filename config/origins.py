"""Which web origins may open the chat socket.

A browser sends `Origin` with every WebSocket handshake and attaches the site's cookies
whatever page opened the socket, so the origin is what stops another site from chatting
as a signed-in visitor (cross-site WebSocket hijacking). An origin is compared as
scheme + host + port (https://lhama.example is not http://lhama.example, nor
https://lhama.example:8443, nor https://chat.lhama.example) against:

- `SITE_URL`, the public address of the site;
- `CSRF_TRUSTED_ORIGINS`, the other origins the deployment already trusts for forms
  (Django's `https://*.example.com` form keeps its meaning: example.com and its
  subdomains);
- outside production only: the loopback names on any port and scheme (the development
  server, `make run PORT=…`, the browser tests and the CI handshake each pick their own
  port on 127.0.0.1) and `testserver`, the host name of Django's test client.

A handshake without an `Origin` header is refused: every browser sends one, and a
non-browser client can send whatever it likes anyway, so allowing "no origin" would only
open a gap (a proxy or an old client that drops the header) without serving anyone.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import OriginValidator
from django.conf import settings

# Loopback names and Django's test-client host; patterns without a scheme match that
# host on any scheme and port (Channels' rule). Development and tests only.
DEVELOPMENT_ORIGINS = ("localhost", "127.0.0.1", "[::1]", "testserver")


def _origin_pattern(url: str) -> str | None:
    """`scheme://host[:port]` of a URL (path, query and credentials dropped), in the form
    Channels' OriginValidator matches; a Django `*.` wildcard host becomes Channels' `.`."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.hostname:
        return None
    host = parts.hostname
    if host.startswith("*."):
        host = host[1:]
    elif ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def allowed_origins() -> list[str]:
    """The origin patterns a chat socket may come from, computed from the settings."""
    patterns = [_origin_pattern(url) for url in [settings.SITE_URL, *settings.CSRF_TRUSTED_ORIGINS]]
    allowed = [pattern for pattern in patterns if pattern]
    if not settings.PRODUCTION:
        allowed.extend(DEVELOPMENT_ORIGINS)
    return list(dict.fromkeys(allowed))


class SiteOriginValidator(OriginValidator):
    """Channels' OriginValidator (its comparison of scheme, host and port is used as is),
    with two differences, which is why this is a subclass and not the class itself:

    - the allowed list is read from the settings at each handshake, not once when
      config.asgi is imported, so it can never disagree with the settings the HTTP side
      uses (and tests can change SITE_URL with Django's settings overrides);
    - an `Origin` whose port is not a number in range makes `urllib` raise ValueError
      inside Channels, which would end the handshake with a server error and a traceback
      in the log: here it is simply refused.
    """

    def __init__(self, application) -> None:
        super().__init__(application, allowed_origins=())

    @property
    def allowed_origins(self) -> list[str]:
        return allowed_origins()

    @allowed_origins.setter
    def allowed_origins(self, value) -> None:
        """Channels' __init__ assigns the list; the settings are the only source here."""

    def valid_origin(self, parsed_origin) -> bool:
        try:
            return super().valid_origin(parsed_origin)
        except ValueError:
            return False
