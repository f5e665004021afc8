"""Tracking endpoints: the signed click redirect, the impression acknowledgement,
ad feedback and dismissal. Thin: each reads the request and calls a service."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from ads import tracking
from ads.services import delivery


def _viewer(request: HttpRequest) -> tuple[int | None, str]:
    user_id = request.user.pk if request.user.is_authenticated else None
    return user_id, request.session.session_key or ""


def _kind(request: HttpRequest) -> str:
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return ""
        return str(body.get("kind", "")) if isinstance(body, dict) else ""
    return request.POST.get("kind", "")


@never_cache
@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    user_id, session_key = _viewer(request)
    result = delivery.click_record(
        token=token,
        user_agent=request.headers.get("User-Agent", ""),
        viewer=tracking.viewer_key(user_id=user_id, session_key=session_key),
    )
    if result.redirect_to is None:
        response = render(
            request, "ads_tracking/click_nowhere.html", {"reason": result.click.invalid_reason}, status=400
        )
    else:
        # Only ever the creative's approved https landing URL, looked up on the server.
        response = HttpResponseRedirect(result.redirect_to)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@require_POST
def impression_ack(request: HttpRequest, impression_id: str) -> HttpResponse:
    user_id, session_key = _viewer(request)
    try:
        result = delivery.impression_acknowledge(
            impression_id=impression_id,
            user_id=user_id,
            session_key=session_key,
            user_agent=request.headers.get("User-Agent", ""),
        )
    except delivery.NotFound:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse({"counted": result.counted, "valid": result.valid, "reason": result.reason})


@require_POST
def impression_feedback(request: HttpRequest, impression_id: str) -> HttpResponse:
    user_id, session_key = _viewer(request)
    kind = _kind(request)
    if kind not in ("not_relevant", "offensive"):
        return JsonResponse(
            {"error": "invalid_kind", "message": 'kind must be "not_relevant" or "offensive".'}, status=400
        )
    try:
        delivery.feedback_record(impression_id=impression_id, user_id=user_id, session_key=session_key, kind=kind)
    except delivery.NotFound:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse({"ok": True, "kind": kind})


@require_POST
def impression_dismiss(request: HttpRequest, impression_id: str) -> HttpResponse:
    user_id, session_key = _viewer(request)
    try:
        delivery.impression_dismiss(impression_id=impression_id, user_id=user_id, session_key=session_key)
    except delivery.NotFound:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse({"ok": True, "ads_dismissed": True})
