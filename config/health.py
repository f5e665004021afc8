"""Liveness (/healthz) and readiness (/readyz) probes, as JSON.

/readyz tells everyone only whether this web process can serve: `{"status": "ready"}`
(200) or `{"status": "unavailable"}` (503). The checks behind it — per check ok and
latency; per inference server reachable, latency and a short error kind — are for
staff users and for callers sending `Authorization: Bearer <READYZ_TOKEN>` (a
monitoring system). Even they never see a URL's credentials, raw exception text, the
database vendor or model ids.

The inference servers are probed at most once per READYZ_CACHE_S seconds per web
process, so a flood of /readyz cannot become a flood of requests to the GPUs. The
cache is a small in-process one with a lock, not Django's cache: the readiness probe
must not depend on what it checks (the default cache lives in the database, or in
Redis), and the lock makes concurrent callers wait for one probe instead of each
sending their own.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache

PROBE_TIMEOUT_S = 3.0


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# --- what a failure is called -------------------------------------------------------------


def error_kind(exc: BaseException) -> str:
    """A short, fixed name for a failure ("timeout", "connection refused", "http 500"):
    exception text can carry addresses, credentials or internals, so it is never shown."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"http {exc.response.status_code}"
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    names = {type(e).__name__ for e in chain}
    if any(isinstance(e, httpx.TimeoutException | TimeoutError) for e in chain) or "TimeoutError" in names:
        return "timeout"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, httpx.TransportError | ConnectionError | OSError) for e in chain) or "ConnectionError" in names:
        return "connection failed"
    if isinstance(exc, DatabaseError):
        return "database error"
    if isinstance(exc, ValueError):  # a body that is not the JSON a models list is
        return "bad response"
    return "error"


def redact_url(url: str) -> str:
    """scheme://host[:port]/path of a URL: user, password, query and fragment dropped."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- checks ------------------------------------------------------------------------------


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


def _check_redis() -> dict:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def _check_ads() -> dict:
    """This process's ad engine: loaded when the web process starts, in the background
    (about 2–3 s); until then the first decisions would give no ad."""
    from ads.services.decision import ads_engine_ready

    return {"ok": True} if ads_engine_ready() else {"ok": False, "error": "loading"}


def _inference_targets() -> list[tuple[str, dict[str, str]]]:
    """The distinct base URLs of the active model tiers (the settings when no tier exists),
    each with the headers of a tier that points at it (its API key, when it names one)."""
    from assistant.inference import endpoint_for_tier
    from assistant.selectors import tier_base_urls, tiers_active

    headers: dict[str, dict[str, str]] = {}
    for tier in tiers_active():
        url = tier.base_url.rstrip("/")
        if not headers.get(url):
            headers[url] = endpoint_for_tier(tier).headers()
    return [(url, headers.get(url, {})) for url in tier_base_urls()]


def _probe_upstream(client: httpx.Client, url: str, headers: dict[str, str]) -> dict:
    started = time.monotonic()
    result: dict = {"url": redact_url(url), "reachable": True}
    try:
        response = client.get(url.rstrip("/") + "/models", headers=headers)
        response.raise_for_status()
        response.json()
    except Exception as exc:  # a probe reports any failure, it never raises
        result = {"url": redact_url(url), "reachable": False, "error": error_kind(exc)}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


@dataclass
class _Probed:
    key: tuple[str, ...]
    at: float
    upstreams: list[dict]


class UpstreamCache:
    """The last probe of the inference servers, reused for READYZ_CACHE_S seconds; one
    probe at a time (callers arriving meanwhile wait for it and share its result)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: _Probed | None = None

    def clear(self) -> None:
        with self._lock:
            self._last = None

    def get(self, targets: list[tuple[str, dict[str, str]]], probe: Callable[[], list[dict]]) -> tuple[list[dict], bool]:
        """(upstream results, whether they came from the cache)."""
        key = tuple(url for url, _ in targets)
        with self._lock:
            last = self._last
            if last is not None and last.key == key and time.monotonic() - last.at < settings.READYZ_CACHE_S:
                return last.upstreams, True
            upstreams = probe()
            self._last = _Probed(key=key, at=time.monotonic(), upstreams=upstreams)
            return upstreams, False


upstream_cache = UpstreamCache()


def _check_inference() -> dict:
    targets = _inference_targets()

    def probe() -> list[dict]:
        with httpx.Client(timeout=httpx.Timeout(PROBE_TIMEOUT_S), trust_env=False) as client:
            return [_probe_upstream(client, url, headers) for url, headers in targets]

    upstreams, cached = upstream_cache.get(targets, probe)
    # The embedded server is ready only once warmed up (assistant/warmup.py): read on
    # every call, never cached, so /readyz turns ready the moment the warm-up ends.
    from assistant.warmup import warm_up_done, warm_up_required

    results = []
    for (url, _), upstream in zip(targets, upstreams, strict=True):
        if warm_up_required(base_url=url):
            upstream = {**upstream, "warmed_up": warm_up_done(base_url=url)}
        results.append(upstream)
    ok = all(u["reachable"] and u.get("warmed_up", True) for u in results)
    return {"ok": ok, "cached": cached, "upstreams": results}


def readiness() -> dict[str, dict]:
    """Every check, each {"ok": bool, "ms": float, ...} (and "error": a kind when not ok)."""
    checks: dict[str, dict] = {}
    probes: list[tuple[str, Callable[[], dict]]] = [
        ("database", _check_database), ("inference", _check_inference), ("ads", _check_ads),
    ]
    if settings.REDIS_URL:
        probes.insert(1, ("redis", _check_redis))
    for name, probe in probes:
        started = time.monotonic()
        try:
            checks[name] = probe()
        except Exception as exc:  # a probe reports any failure, it never raises
            checks[name] = {"ok": False, "error": error_kind(exc)}
        checks[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    return checks


# --- the view ------------------------------------------------------------------------------


def may_see_details(request: HttpRequest) -> bool:
    """Staff users, or a caller whose bearer token is READYZ_TOKEN (compared in constant
    time; an empty setting lets no token in)."""
    token = settings.READYZ_TOKEN
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    from assistant.lifecycle import draining

    checks = readiness()
    # A process draining after SIGTERM takes no new work: load balancers route elsewhere.
    ready = all(check["ok"] for check in checks.values()) and not draining()
    body: dict = {"status": "ready" if ready else "unavailable"}
    if may_see_details(request):
        body["checks"] = checks
    return JsonResponse(body, status=200 if ready else 503)
