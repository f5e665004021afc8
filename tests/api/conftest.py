"""The API against a live Lhama: a Daphne subprocess (tests.e2e.conftest.LiveServer, its own
SQLite file; quotas in Redis when REDIS_URL is set) whose tiers all point at a fake
OpenAI-compatible upstream in this process. The official `openai` SDK is the client.

What the fake model does is chosen by the request's last user message:
SLOW… (200 tokens, 50 ms apart), HOLD… (one token, then the rest 0.5 s apart: a request
that stays in flight), FAIL… (HTTP 500), STALL… (never a first token), DROP… (the
connection drops after two tokens), NOUSAGE… (no usage chunk, like llama.cpp); anything else: "Hello", " there", "!".
"""

from __future__ import annotations

import json
import os
import uuid

import openai
import pytest

from bench.fake_upstream import FakeUpstream, Script, words
from tests.e2e.conftest import LiveServer

SLOW_TOKENS = words(200, "s")
HOLD_TOKENS = words(20, "h")
REPLY = ["Hello", " there", "!"]


def route(body: dict) -> Script:
    last = next((str(m.get("content", "")) for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
    if last.startswith("SLOW"):
        return Script(tokens=list(SLOW_TOKENS), interval=0.05)
    if last.startswith("HOLD"):
        return Script(tokens=list(HOLD_TOKENS), interval=0.5)
    if last.startswith("FAIL"):
        return Script(fault="http_500")
    if last.startswith("STALL"):
        return Script(fault="stall_first")
    if last.startswith("DROP"):
        return Script(tokens=list(REPLY) * 3, fault="drop_mid", fault_after=2, interval=0.02)
    if last.startswith("NOUSAGE"):
        return Script(tokens=list(REPLY), usage=False)
    return Script(tokens=list(REPLY))


@pytest.fixture(scope="session")
def api_upstream():
    upstream = FakeUpstream(model="smollm2-135m-instruct").start()
    upstream.route = route
    yield upstream
    upstream.stop()


SERVER_ENV = {
    "API_KEY_CHECK_INTERVAL_S": "0.2",
    "API_MAX_BODY_BYTES": "20000",
    "LLM_FIRST_TOKEN_TIMEOUT_S": "2",
    "LLM_BETWEEN_TOKENS_TIMEOUT_S": "2",
}


def start_server(upstream: FakeUpstream, base, *, redis: bool) -> LiveServer:
    env = dict(SERVER_ENV)
    if redis:
        # Its own key prefix: every server's first user is user 1.
        env["REDIS_PREFIX"] = f"lhama-api-test-{uuid.uuid4().hex[:8]}"
    else:
        env["REDIS_URL"] = ""  # quotas, cache and run logs on the embedded defaults
    return LiveServer(upstream_url=upstream.base_url, base=base, env_extra=env)


@pytest.fixture(scope="session")
def api_server(api_upstream, tmp_path_factory):
    """The live server: on Redis when the suite runs with REDIS_URL, else the database."""
    server = start_server(api_upstream, tmp_path_factory.mktemp("api"), redis=bool(os.environ.get("REDIS_URL")))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_upstream(api_upstream):
    api_upstream.records.clear()
    api_upstream.scripts.clear()
    yield


ACCOUNT_CODE = """
import json
from datetime import timedelta
from django.utils import timezone
from accounts.models import User
from billing.models import Plan
from billing.grants import plan_grant_create
from assistant.api.keys import api_key_create
from assistant.api.models import ApiKey

spec = json.loads({spec!r})
user = User.objects.create_user(email=spec["email"], password="unused-password-1")
plan = Plan.objects.get(slug=spec["plan"])
if spec.get("limits"):
    base = plan
    plan = Plan.objects.create(
        slug=spec["email"].split("@")[0][:32], name="Test plan", daily_tokens=base.daily_tokens,
        requests_per_minute=base.requests_per_minute, concurrent_runs=base.concurrent_runs,
        max_context=base.max_context, ads_enabled=False, sort_order=99, is_active=False,
        model_tier_slugs=base.model_tier_slugs, **spec["limits"],
    )
if plan.slug != "free":
    plan_grant_create(user=user, plan=plan, reason="test")
created = api_key_create(user=user, name=spec.get("name", "test key"), tier_slugs=spec.get("scope", []))
if spec.get("expired"):
    ApiKey.objects.filter(pk=created.key.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
if spec.get("expires_in_s"):
    ApiKey.objects.filter(pk=created.key.pk).update(
        expires_at=timezone.now() + timedelta(seconds=spec["expires_in_s"]))
print("IDS=" + json.dumps({{"key": created.token, "key_id": created.key.pk, "user_id": user.pk,
                           "prefix": created.key.prefix}}))
"""


def make_account(server: LiveServer, *, plan: str = "free", scope: list[str] | None = None,
                 limits: dict | None = None, expired: bool = False, expires_in_s: float = 0) -> dict:
    """A user on `plan` (a copy of it with the given API limits) and one API key: its token and ids."""
    spec = {"email": f"api-{uuid.uuid4().hex[:10]}@example.com", "plan": plan, "scope": scope or [],
            "limits": limits or {}, "expired": expired, "expires_in_s": expires_in_s}
    return server.seed(ACCOUNT_CODE.format(spec=json.dumps(spec)))


def revoke(server: LiveServer, key_id: int) -> None:
    server.shell(
        "from assistant.api.models import ApiKey; from assistant.api.keys import api_key_revoke; "
        f"api_key_revoke(key=ApiKey.objects.get(pk={int(key_id)}))"
    )


def client_for(server: LiveServer, key: str, *, timeout: float = 30) -> openai.OpenAI:
    # No retries: a test counts exactly what the server answered.
    return openai.OpenAI(base_url=f"{server.url}/api/v1", api_key=key, max_retries=0, timeout=timeout)


def async_client_for(server: LiveServer, key: str, *, timeout: float = 60) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/api/v1", api_key=key, max_retries=0, timeout=timeout)
