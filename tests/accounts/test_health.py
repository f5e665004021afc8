from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings as django_settings

from assistant.models import ModelTier
from config import health

pytestmark = pytest.mark.django_db

TOKEN = "readyz-token-4f9c2a7e1b"


class ModelsServer:
    """A real HTTP server standing where an inference server stands: answers
    GET /v1/models, counts the requests, and can be told to fail, stall or want a key."""

    def __init__(self) -> None:
        self.hits = 0
        self.status = 200
        self.delay = 0.0
        self.api_key = ""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.hits += 1
                time.sleep(owner.delay)
                status = owner.status if self.path == "/v1/models" else 404
                if owner.api_key and self.headers.get("Authorization") != f"Bearer {owner.api_key}":
                    status = 401
                body = json.dumps({"object": "list", "data": [{"id": "secret-model-id", "object": "model"}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _fresh_probe_cache(settings):
    settings.READYZ_TOKEN = ""
    settings.ADS_INDEX_SYNC = True  # the ad engine loads in the caller: ready (its own test below)
    health.upstream_cache.clear()
    yield
    health.upstream_cache.clear()


@pytest.fixture
def models_server():
    server = ModelsServer()
    yield server
    server.stop()


def expected_checks() -> set[str]:
    return {"database", "inference", "ads"} | ({"redis"} if django_settings.REDIS_URL else set())


def details(response) -> dict:
    body = response.json()
    assert set(body) == {"status", "checks"}, body
    return body["checks"]


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# --- what the public sees ------------------------------------------------------------------


def test_readyz_tells_the_public_only_that_it_is_ready(client, settings, models_server):
    settings.VLLM_BASE_URL = models_server.url
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert b"sqlite" not in response.content and b"secret-model-id" not in response.content
    assert models_server.hits == 1


def test_readyz_tells_the_public_only_that_it_is_unavailable(client, settings):
    settings.VLLM_BASE_URL = "http://admin:hunter2@127.0.0.1:9/v1"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_a_signed_in_member_who_is_not_staff_sees_only_the_status(client, settings, models_server, user):
    settings.VLLM_BASE_URL = models_server.url
    client.force_login(user)
    assert client.get("/readyz").json() == {"status": "ready"}


# --- who sees the checks, and what they show -----------------------------------------------------


def test_staff_see_each_check_with_its_latency_but_no_vendor_or_model_ids(client, settings, models_server, staff_user):
    settings.VLLM_BASE_URL = models_server.url
    client.force_login(staff_user)
    response = client.get("/readyz")
    assert response.status_code == 200
    checks = details(response)
    assert set(checks) == expected_checks()
    assert set(checks["database"]) == {"ok", "ms"} and checks["database"]["ok"] is True
    inference = checks["inference"]
    assert (inference["ok"], inference["cached"]) == (True, False)
    [upstream] = inference["upstreams"]
    assert set(upstream) == {"url", "reachable", "ms"}
    assert (upstream["url"], upstream["reachable"]) == (models_server.url, True)
    assert isinstance(upstream["ms"], float) and isinstance(inference["ms"], float)
    assert b"sqlite" not in response.content and b"secret-model-id" not in response.content


def test_the_readyz_token_shows_the_checks_and_a_wrong_one_does_not(client, settings, models_server):
    settings.VLLM_BASE_URL = models_server.url
    settings.READYZ_TOKEN = TOKEN
    assert set(details(client.get("/readyz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))) == expected_checks()
    assert set(details(client.get("/readyz", HTTP_AUTHORIZATION=f"bearer {TOKEN}"))) == expected_checks()
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN, f"Basic {TOKEN}", "Bearer ", "Bearer café"):
        assert client.get("/readyz", HTTP_AUTHORIZATION=wrong).json() == {"status": "ready"}, wrong


def test_without_a_readyz_token_setting_no_token_shows_the_checks(client, settings, models_server):
    settings.VLLM_BASE_URL = models_server.url
    settings.READYZ_TOKEN = ""
    for offered in ("Bearer ", "Bearer", "Bearer  "):
        assert client.get("/readyz", HTTP_AUTHORIZATION=offered).json() == {"status": "ready"}, offered


def test_an_inference_url_is_shown_without_its_credentials(client, settings, models_server, staff_user):
    settings.VLLM_BASE_URL = f"http://lhama:hunter2@127.0.0.1:{models_server.port}/v1?key=abc123"
    client.force_login(staff_user)
    response = client.get("/readyz")
    [upstream] = details(response)["inference"]["upstreams"]
    assert upstream["url"] == models_server.url
    assert b"hunter2" not in response.content and b"lhama:" not in response.content and b"abc123" not in response.content


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("refused", "connection refused"), ("http_500", "http 500"), ("stall", "timeout"), ("not_found", "http 404")],
)
def test_a_failing_upstream_is_named_by_a_short_kind_never_by_its_exception_text(
    client, settings, models_server, staff_user, monkeypatch, fault, kind
):
    settings.VLLM_BASE_URL = models_server.url
    if fault == "refused":
        settings.VLLM_BASE_URL = "http://127.0.0.1:9/v1"
    elif fault == "http_500":
        models_server.status = 500
    elif fault == "stall":
        monkeypatch.setattr(health, "PROBE_TIMEOUT_S", 0.2)
        models_server.delay = 1.0
    elif fault == "not_found":
        settings.VLLM_BASE_URL = f"http://127.0.0.1:{models_server.port}/wrong"
    client.force_login(staff_user)
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = details(response)
    assert checks["database"]["ok"] is True
    assert checks["inference"]["ok"] is False
    [upstream] = checks["inference"]["upstreams"]
    assert set(upstream) == {"url", "reachable", "error", "ms"}
    assert (upstream["reachable"], upstream["error"]) == (False, kind)


def test_readyz_checks_redis_when_configured(client, settings, models_server, staff_user):
    settings.VLLM_BASE_URL = models_server.url
    settings.REDIS_URL = "redis://:redis-password@127.0.0.1:1/0"
    assert client.get("/readyz").json() == {"status": "unavailable"}
    client.force_login(staff_user)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert {k: v for k, v in details(response)["redis"].items() if k != "ms"} == {"ok": False, "error": "connection refused"}
    assert b"redis-password" not in response.content


def test_the_probe_sends_the_api_key_of_the_tier_that_names_one(client, settings, models_server, staff_user, monkeypatch):
    models_server.api_key = "vllm-key-93"
    monkeypatch.setenv("VLLM_API_KEY", "vllm-key-93")
    ModelTier.objects.create(slug="t", display_name="T", served_model_name="m", base_url=models_server.url,
                             api_key_env="VLLM_API_KEY")
    client.force_login(staff_user)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert b"vllm-key-93" not in response.content


# --- a flood of /readyz is not a flood of upstream requests --------------------------------------


def test_two_calls_within_the_cache_window_make_one_upstream_request(client, settings, models_server, staff_user):
    settings.VLLM_BASE_URL = models_server.url
    settings.READYZ_CACHE_S = 5
    assert client.get("/readyz").status_code == 200
    client.force_login(staff_user)
    second = client.get("/readyz")
    assert second.status_code == 200
    assert details(second)["inference"]["cached"] is True
    assert models_server.hits == 1


def test_after_the_cache_window_the_upstream_is_probed_again(client, settings, models_server):
    settings.VLLM_BASE_URL = models_server.url
    settings.READYZ_CACHE_S = 0.2
    client.get("/readyz")
    time.sleep(0.3)
    client.get("/readyz")
    assert models_server.hits == 2


def test_a_failure_is_cached_too_and_a_recovery_seen_after_the_window(client, settings, models_server):
    settings.VLLM_BASE_URL = models_server.url
    settings.READYZ_CACHE_S = 0.3
    models_server.status = 500
    assert client.get("/readyz").status_code == 503
    models_server.status = 200
    assert client.get("/readyz").status_code == 503
    time.sleep(0.4)
    assert client.get("/readyz").status_code == 200
    assert models_server.hits == 2


def test_concurrent_callers_share_one_probe(settings, models_server):
    settings.READYZ_CACHE_S = 5
    models_server.delay = 0.3
    targets = [(models_server.url, {})]

    def probe() -> list[dict]:
        import httpx

        with httpx.Client(timeout=2) as client:
            return [health._probe_upstream(client, models_server.url, {})]

    results: list[tuple[list[dict], bool]] = []
    threads = [threading.Thread(target=lambda: results.append(health.upstream_cache.get(targets, probe))) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert models_server.hits == 1
    assert sorted(cached for _, cached in results) == [False, True, True, True, True]


def test_readyz_waits_for_this_process_s_ad_engine(client, settings, models_server, monkeypatch):
    """A web process whose ad engine is still loading is not ready: its first decisions
    would give no ad. Once loaded, it is."""
    from ads.services import decision

    settings.READYZ_TOKEN = TOKEN
    settings.VLLM_BASE_URL = models_server.url
    monkeypatch.setattr(decision, "_engine_ready", lambda **_: False)
    response = client.get("/readyz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 503
    assert details(response)["ads"]["ok"] is False
    monkeypatch.setattr(decision, "_engine_ready", lambda **_: True)
    response = client.get("/readyz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert details(response)["ads"]["ok"] is True
