"""Tracking endpoints: the signed click redirect, the impression acknowledgement,
ad feedback and dismissal. Thin: each reads the request (who is asking, from which
network, over the rate limit or not) and calls a service."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from ads import tracking
from ads.services import delivery
from config.clientip import client_ip

TOO_MANY = {"error": "rate_limited", "message": "Too many requests; try again in a minute."}


def _viewer(request: HttpRequest) -> tracking.Viewer:
    return tracking.Viewer(
        user_id=request.user.pk if request.user.is_authenticated else None,
        session_key=request.session.session_key or "",
        client_hash=tracking.client_hash(client_ip(request)),
        user_agent=request.headers.get("User-Agent", ""),
    )


def _body(request: HttpRequest) -> dict:
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    return request.POST.dict()


def _visible_ms(request: HttpRequest) -> int | None:
    try:
        return max(0, min(int(_body(request)["visible_ms"]), 2**31 - 1))
    except (KeyError, TypeError, ValueError):
        return None


@never_cache
@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    viewer = _viewer(request)
    limited = tracking.rate_limited(request, group="click", viewer=viewer)
    result = delivery.click_record(token=token, viewer=viewer, rate_limited=limited)
    if result.redirect_to is None:
        response = render(
            request, "ads_tracking/click_nowhere.html", {"reason": result.click.invalid_reason}, status=400
        )
    else:
        # Only ever the creative's approved https landing URL, looked up on the server;
        # an invalid click (duplicate, bot, rate-limited …) is redirected too, and free.
        response = HttpResponseRedirect(result.redirect_to)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_POST
def impression_ack(request: HttpRequest, impression_id: str) -> HttpResponse:
    viewer = _viewer(request)
    limited = tracking.rate_limited(request, group="ack", viewer=viewer)
    try:
        result = delivery.impression_acknowledge(
            impression_id=impression_id, viewer=viewer, visible_ms=_visible_ms(request), rate_limited=limited
        )
    except delivery.NotFound:
        return JsonResponse({"error": "not_found"}, status=404)
    if limited:
        return JsonResponse(TOO_MANY, status=429)
    return JsonResponse({"counted": result.counted, "valid": result.valid, "reason": result.reason})


@require_POST
def impression_feedback(request: HttpRequest, impression_id: str) -> HttpResponse:
    viewer = _viewer(request)
    if tracking.rate_limited(request, group="feedback", viewer=viewer):
        return JsonResponse(TOO_MANY, status=429)
    kind = str(_body(request).get("kind", ""))
    if kind not in ("not_relevant", "offensive"):
        return JsonResponse(
            {"error": "invalid_kind", "message": 'kind must be "not_relevant" or "offensive".'}, status=400
        )
    try:
        delivery.feedback_record(
            impression_id=impression_id, user_id=viewer.user_id, session_key=viewer.session_key, kind=kind
        )
    except delivery.NotFound:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse({"ok": True, "kind": kind})


@require_POST
def impression_dismiss(request: HttpRequest, impression_id: str) -> HttpResponse:
    viewer = _viewer(request)
    if tracking.rate_limited(request, group="feedback", viewer=viewer):
        return JsonResponse(TOO_MANY, status=429)
    try:
        delivery.impression_dismiss(impression_id=impression_id, user_id=viewer.user_id, session_key=viewer.session_key)
    except delivery.NotFound:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse({"ok": True, "ads_dismissed": True})
