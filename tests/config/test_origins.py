"""Who may open the chat socket: its Origin, compared as scheme + host + port with the
allowed origins (config/origins.py), through the real ASGI application."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from config.origins import allowed_origins
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

NO_ORIGIN = object()


@sync_to_async
def signed_in_session() -> str:
    client = Client()
    client.force_login(UserFactory())
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


async def handshake(origin, session_key: str) -> tuple[bool, dict | None]:
    """(accepted, first frame) of a handshake to /ws/chat/ from `origin`."""
    from config.asgi import application

    headers = [(b"host", b"testserver"), (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session_key}".encode())]
    if origin is not NO_ORIGIN:
        headers.append((b"origin", origin.encode("latin1")))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    hello = await communicator.receive_json_from(timeout=5) if connected else None
    await communicator.disconnect()
    return connected, hello


@pytest.fixture
def production_site(settings):
    """Production mode (no development origins) with the site at https://testserver:
    a host the test client's ALLOWED_HOSTS also has, so a host-only check would pass."""
    settings.PRODUCTION = True
    settings.SITE_URL = "https://testserver"
    settings.CSRF_TRUSTED_ORIGINS = []


async def test_the_sites_own_origin_gets_a_signed_in_socket(production_site):
    connected, hello = await handshake("https://testserver", await signed_in_session())
    assert connected is True
    assert hello["type"] == "hello" and hello["user"]["authenticated"] is True


async def test_an_explicit_default_port_is_the_same_origin(production_site):
    assert (await handshake("https://testserver:443", await signed_in_session()))[0] is True


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param("https://testserver:8443", id="same host, other port"),
        pytest.param("http://testserver", id="http instead of https"),
        pytest.param("http://testserver:443", id="http on the https port"),
        pytest.param("https://chat.testserver", id="a subdomain"),
        pytest.param("https://testserver.evil.com", id="suffix trick"),
        pytest.param("http://127.0.0.1.evil.com", id="loopback suffix trick"),
        pytest.param("https://eviltestserver", id="prefix trick"),
        pytest.param("http://127.0.0.1:8000", id="the development address"),
        pytest.param("http://localhost:8000", id="localhost"),
        pytest.param("null", id="opaque origin"),
        pytest.param("https://testserver:99999", id="port out of range"),
        pytest.param("https://testserver:abc", id="port not a number"),
        pytest.param(NO_ORIGIN, id="no Origin header: refused"),
    ],
)
async def test_near_misses_are_refused_in_production(production_site, origin):
    connected, _ = await handshake(origin, await signed_in_session())
    assert connected is False


async def test_csrf_trusted_origins_are_allowed_too_with_djangos_wildcard(production_site, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://admin.testserver", "https://*.partner.example"]
    session = await signed_in_session()
    for origin, accepted in [
        ("https://admin.testserver", True),
        ("https://app.partner.example", True),
        ("https://partner.example", True),
        ("http://app.partner.example", False),
        ("https://app.partner.example:8443", False),
        ("https://partner.example.evil.com", False),
        ("https://admin.testserver:444", False),
    ]:
        assert (await handshake(origin, session))[0] is accepted, origin


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8000", "http://127.0.0.1:54321", "http://localhost:8765",
                                    "http://[::1]:8000", "http://testserver"])
async def test_outside_production_the_loopback_addresses_on_any_port_are_allowed(settings, origin):
    settings.PRODUCTION = False
    settings.SITE_URL = "http://127.0.0.1:8000"
    assert (await handshake(origin, await signed_in_session()))[0] is True


@pytest.mark.parametrize("origin", ["http://127.0.0.1.evil.com", "http://localhost.evil.com:8000", "http://evil.example",
                                    "http://10.0.0.5:8000", NO_ORIGIN])
async def test_outside_production_other_origins_are_still_refused(settings, origin):
    settings.PRODUCTION = False
    assert (await handshake(origin, await signed_in_session()))[0] is False


def test_the_allowed_list_is_read_from_the_settings(settings):
    settings.PRODUCTION = True
    settings.SITE_URL = "https://lhama.example/app"
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.lhama.example", "http://[::1]:8000"]
    assert allowed_origins() == ["https://lhama.example", "https://.lhama.example", "http://[::1]:8000"]
    settings.PRODUCTION = False
    assert allowed_origins()[-4:] == ["localhost", "127.0.0.1", "[::1]", "testserver"]
