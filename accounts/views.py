from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.core import is_ratelimited

from accounts.forms import DeleteAccountForm, ProfileForm
from accounts.services import UserDeleteFailed, user_data_export, user_delete, user_profile_update

# The delete form checks the password: guessing it there is throttled as logins are.
DELETE_RATE = "5/15m"
STEPS = {"billing": "cancelling your subscription with Stripe"}


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user_profile_update(
            user=request.user,
            display_name=form.cleaned_data["display_name"],
            custom_instructions=form.cleaned_data["custom_instructions"],
            is_adult=form.cleaned_is_adult(),
        )
        messages.success(request, "Your settings are saved.")
        return redirect("accounts:profile")
    return render(
        request,
        "accounts/profile.html",
        {"form": form, "delete_form": DeleteAccountForm(user=request.user)},
    )


@login_required
@require_POST
def export(request: HttpRequest) -> HttpResponse:
    data = user_data_export(user=request.user)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False, default=str),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="lhama-data-{stamp}.json"'
    return response


@login_required
@require_POST
def delete(request: HttpRequest) -> HttpResponse:
    if is_ratelimited(request, group="accounts.delete", key="user", rate=DELETE_RATE, increment=True):
        messages.error(request, "Too many attempts to delete this account. Try again in a quarter of an hour.")
        return render(
            request,
            "accounts/profile.html",
            {"form": ProfileForm(instance=request.user), "delete_form": DeleteAccountForm(user=request.user)},
            status=429,
        )
    form = DeleteAccountForm(request.POST, user=request.user)
    if not form.is_valid():
        return render(
            request,
            "accounts/profile.html",
            {"form": ProfileForm(instance=request.user), "delete_form": form},
            status=400,
        )
    try:
        user_delete(user=request.user)
    except UserDeleteFailed as failed:
        step = STEPS.get(failed.step, "a clean-up step")
        messages.error(
            request,
            f"Your account could not be deleted: {step} failed, so nothing has been deleted."
            " Please try again in a few minutes.",
        )
        return redirect("accounts:profile")
    logout(request)
    messages.success(request, "Your account and all its data have been deleted.")
    return redirect("/")
