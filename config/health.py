"""Liveness (/healthz) and readiness (/readyz) probes, as JSON."""

from __future__ import annotations

import time

import httpx
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _inference_urls() -> list[str]:
    """The distinct base URLs of the active model tiers (the settings when no tier exists)."""
    from assistant.selectors import tier_base_urls

    return tier_base_urls()


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def _check_redis() -> dict:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def _check_inference() -> dict:
    urls = _inference_urls()
    results = {}
    with httpx.Client(timeout=httpx.Timeout(3.0)) as client:
        for url in urls:
            response = client.get(url.rstrip("/") + "/models")
            response.raise_for_status()
            results[url] = [m.get("id") for m in response.json().get("data", [])]
    return {"ok": True, "servers": results}


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict] = {}
    probes = [("database", _check_database), ("inference", _check_inference)]
    if settings.REDIS_URL:
        probes.insert(1, ("redis", _check_redis))
    for name, probe in probes:
        started = time.monotonic()
        try:
            checks[name] = probe()
        except Exception as exc:  # a probe reports any failure, it never raises
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        checks[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    ready = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
