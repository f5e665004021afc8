"""The API's HTTP surface: thin async views over keys.py and completions.py, and the
account page's API keys. Key-authenticated views ignore cookies (no session, no CSRF)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from assistant.api.completions import CompletionRun, completion_body_parse, completion_prepare
from assistant.api.errors import ApiError, error_response
from assistant.api.forms import ApiKeyCreateForm
from assistant.api.keys import AuthenticatedKey, api_key_authenticate, api_key_create, api_keys_revoke_for_user
from assistant.api.selectors import api_keys_for_user, models_for_key, tier_choices_for_user
from config.logs import request_id_set


async def _authenticate(request: HttpRequest) -> AuthenticatedKey:
    return await database_sync_to_async(api_key_authenticate)(authorization=request.headers.get("Authorization", ""))


def _body(request: HttpRequest) -> bytes:
    limit = settings.API_MAX_BODY_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise ApiError.bad_request("The Content-Length header is not a number.") from None
    if declared > limit:
        raise ApiError.too_large(limit)
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiError.too_large(limit) from None
    if len(body) > limit:
        raise ApiError.too_large(limit)
    return body


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return error_response(ApiError.method_not_allowed(request.method or "", "POST"))
    try:
        raw = _body(request)
        key = await _authenticate(request)
        prepared = await completion_prepare(key=key, body=completion_body_parse(raw))
    except ApiError as error:
        return error_response(error)
    request_id_set(prepared.request_id)  # the rest of this request logs under the API's own id
    headers = {"x-request-id": prepared.request_id, **prepared.ratelimit_headers}
    run = CompletionRun(prepared)
    run.start()
    try:
        if prepared.stream:
            await run.first()
        else:
            data = await run.collect()
    except ApiError as error:
        await run.close()
        return error_response(error, headers=headers)
    except BaseException:  # the client left (cancelled) or a bug: the upstream is closed, the admission settled
        await run.close()
        raise
    if not prepared.stream:
        return JsonResponse(data, headers=headers)
    response = StreamingHttpResponse(run.sse(), content_type="text/event-stream", headers=headers)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy in front must not hold the tokens back
    return response


@csrf_exempt
async def models(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return error_response(ApiError.method_not_allowed(request.method or "", "GET"))
    try:
        key = await _authenticate(request)
    except ApiError as error:
        return error_response(error)
    data = await database_sync_to_async(models_for_key)(key=key)
    return JsonResponse({"object": "list", "data": data})


@csrf_exempt
async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    if request.method != "GET":
        return error_response(ApiError.method_not_allowed(request.method or "", "GET"))
    try:
        key = await _authenticate(request)
    except ApiError as error:
        return error_response(error)
    data = await database_sync_to_async(models_for_key)(key=key)
    found = next((model for model in data if model["id"] == model_id), None)
    if found is None:
        return error_response(ApiError.not_found(f"The model '{model_id}' does not exist or is not yours.",
                                                 code="model_not_found", param="model"))
    return JsonResponse(found)


@csrf_exempt
async def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    return error_response(ApiError.not_found(f"Unknown API route: {request.method} /api/v1/{path}.",
                                             code="unknown_route"))


# --- the account page: API keys --------------------------------------------------------


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    """List and create keys. A new key's secret is in this one response and nowhere else."""
    choices = tier_choices_for_user(user=request.user)
    form = ApiKeyCreateForm(request.POST or None, tier_choices=choices)
    created = None
    if request.method == "POST" and form.is_valid():
        created = api_key_create(
            user=request.user, name=form.cleaned_data["name"], expires_at=form.expires_at(),
            tier_slugs=form.cleaned_data["tiers"],
        )
        form = ApiKeyCreateForm(tier_choices=choices)
    response = render(request, "api/keys.html", {
        "form": form, "created": created, "keys": api_keys_for_user(user=request.user),
        "tier_names": dict(choices),
    })
    response["Cache-Control"] = "no-store"  # the page may hold a secret
    return response


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    if api_keys_revoke_for_user(user=request.user, key_ids=[key_id]):
        messages.success(request, "The key is revoked: requests with it are refused from now on.")
    return redirect("apikeys:list")
