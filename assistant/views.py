"""The chat page and its HTTP endpoints (thin: forms in, services/selectors, templates out).

The live part (send, stream, stop, regenerate, edit) is the WebSocket consumer; these
views render the page and handle the conversation operations that are plain forms.
Every conversation or message id is looked up for the requester (user or guest
session): anything else is a 404, whether it exists or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assistant import branches, selectors, services
from assistant import conversations as conv
from assistant.forms import FeedbackForm, RenameForm, SearchForm
from assistant.markdown import render_markdown
from assistant.models import Conversation, ModelTier
from billing.public import entitlements_for, plan_unlocking

CHAT_TEMPLATE = "assistant/chat.html"
LIST_LIMIT = 100


# ---------------------------------------------------------------- request helpers


def owner_for(request: HttpRequest, *, create_session: bool = False) -> selectors.Owner:
    """The requester as an owner. Guests need a session (the socket finds them by it)."""
    if create_session and not request.user.is_authenticated and not request.session.session_key:
        # An untouched session is never sent as a cookie: mark it so the socket gets one.
        request.session["guest"] = True
        request.session.save()
    return selectors.owner_for(user=request.user, session_key=request.session.session_key)


def owned_conversation(request: HttpRequest, conversation_id) -> Conversation:
    conversation = selectors.conversation_get_for_owner(owner=owner_for(request), conversation_id=conversation_id)
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# ---------------------------------------------------------------- model picker


@dataclass(frozen=True)
class TierOption:
    slug: str
    display_name: str
    description: str
    served_by: str  # empty unless something else than the display name really answers
    unlocked: bool
    unlock_plan_name: str
    selected: bool


def tier_options(request: HttpRequest, *, current: ModelTier | None) -> list[TierOption]:
    entitlements = entitlements_for(user=request.user if request.user.is_authenticated else None)
    tiers = list(selectors.tiers_active())
    allowed = [t.slug for t in tiers if t.slug in entitlements.tier_slugs]
    wanted = current.slug if current is not None and current.slug in allowed else (allowed[0] if allowed else "")
    options = []
    for tier in tiers:
        unlocked = tier.slug in entitlements.tier_slugs
        plan = None if unlocked else plan_unlocking(tier_slug=tier.slug)
        options.append(
            TierOption(
                slug=tier.slug,
                display_name=tier.display_name,
                description=tier.description,
                served_by=tier.served_by if tier.served_by and tier.served_by != tier.display_name else "",
                unlocked=unlocked,
                unlock_plan_name=plan.name if plan is not None else "",
                selected=tier.slug == wanted,
            )
        )
    return options


def with_html(messages: list) -> list:
    """Answers rendered as Markdown through markdown-it-py + nh3 (assistant.markdown)."""
    for message in messages:
        if message.role == "assistant":
            # render_markdown's output is sanitised by nh3 with a Markdown-only tag list.
            message.html = mark_safe(render_markdown(message.content))  # noqa: S308
    return messages


# ---------------------------------------------------------------- pages


@require_GET
def home(request: HttpRequest, conversation_id=None) -> HttpResponse:
    owner = owner_for(request, create_session=True)
    search = SearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    conversation = None
    thread: list = []
    if conversation_id is not None:
        conversation = owned_conversation(request, conversation_id)
        thread = with_html(conv.conversation_thread(conversation=conversation))
    tiers = tier_options(request, current=conversation.tier if conversation else None)
    context = {
        "conversation": conversation,
        "thread": thread,
        "conversations": selectors.conversations_for_owner(owner=owner, query=query)[:LIST_LIMIT],
        "query": query,
        "active_id": str(conversation.pk) if conversation else "",
        "tiers": tiers,
        "locked_tiers": [t for t in tiers if not t.unlocked],
        "is_guest": not request.user.is_authenticated,
        "max_message_chars": settings.ASSISTANT_MAX_MESSAGE_CHARS,
        "zero_id": "00000000-0000-0000-0000-000000000000",
    }
    return render(request, CHAT_TEMPLATE, context)


@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    search = SearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    active = request.GET.get("active", "")
    items = selectors.conversations_for_owner(owner=owner_for(request), query=query)[:LIST_LIMIT]
    return render(
        request,
        f"{CHAT_TEMPLATE}#conversation_list",
        {"conversations": items, "query": query, "active_id": active},
    )


@require_GET
def conversation_header(request: HttpRequest, conversation_id) -> HttpResponse:
    conversation = owned_conversation(request, conversation_id)
    return render(request, f"{CHAT_TEMPLATE}#conversation_header", {"conversation": conversation})


@require_GET
def conversation_title(request: HttpRequest, conversation_id) -> JsonResponse:
    conversation = owned_conversation(request, conversation_id)
    return JsonResponse({"id": str(conversation.pk), "title": conversation.title})


@require_http_methods(["GET", "POST"])
def conversation_rename(request: HttpRequest, conversation_id) -> HttpResponse:
    conversation = owned_conversation(request, conversation_id)
    if request.method == "GET":
        form = RenameForm(initial={"title": conversation.title})
        context = {"c": conversation, "form": form, "active_id": request.GET.get("active", "")}
        return render(request, f"{CHAT_TEMPLATE}#rename_form", context)
    form = RenameForm(request.POST)
    if not form.is_valid():
        context = {"c": conversation, "form": form, "active_id": request.POST.get("active", "")}
        return render(request, f"{CHAT_TEMPLATE}#rename_form", context, status=400)
    services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
    if is_htmx(request):
        return render(
            request,
            f"{CHAT_TEMPLATE}#renamed",
            {"c": conversation, "active_id": request.POST.get("active", "")},
        )
    return redirect("assistant:conversation", conversation_id=conversation.pk)


@require_POST
def conversation_delete(request: HttpRequest, conversation_id) -> HttpResponse:
    conversation = owned_conversation(request, conversation_id)
    was_active = request.POST.get("active", "") == str(conversation.pk)
    services.conversation_delete(conversation=conversation)
    if is_htmx(request):
        response = HttpResponse("")
        if was_active:
            response["HX-Redirect"] = reverse("assistant:home")
        return response
    return redirect("assistant:home")


@require_POST
def conversation_share(request: HttpRequest, conversation_id) -> HttpResponse:
    conversation = owned_conversation(request, conversation_id)
    services.conversation_share(conversation=conversation)
    return _share_panel(request, conversation)


@require_POST
def conversation_share_revoke(request: HttpRequest, conversation_id) -> HttpResponse:
    conversation = owned_conversation(request, conversation_id)
    services.conversation_unshare(conversation=conversation)
    return _share_panel(request, conversation)


def _share_panel(request: HttpRequest, conversation: Conversation) -> HttpResponse:
    if is_htmx(request):
        return render(request, f"{CHAT_TEMPLATE}#share_panel", {"conversation": conversation})
    return redirect("assistant:conversation", conversation_id=conversation.pk)


@require_GET
def conversation_export(request: HttpRequest, conversation_id, fmt: str) -> HttpResponse:
    conversation = owned_conversation(request, conversation_id)
    name = slugify(conversation.title)[:60] or "conversation"
    if fmt == "json":
        body = json.dumps(conv.conversation_export_data(conversation=conversation), indent=2, ensure_ascii=False)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
    elif fmt == "md":
        body = conv.conversation_export_markdown(conversation=conversation)
        response = HttpResponse(body, content_type="text/markdown; charset=utf-8")
    else:
        raise Http404("Unknown export format.")
    response["Content-Disposition"] = f'attachment; filename="lhama-{name}.{fmt}"'
    return response


@require_POST
def message_feedback(request: HttpRequest, message_id) -> JsonResponse:
    message = conv.message_get_for_owner(owner=owner_for(request), message_id=message_id)
    if message is None:
        raise Http404("No such message.")
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": "Feedback must be up, down or empty."}, status=400)
    try:
        services.message_feedback_set(message=message, feedback=form.cleaned_data["value"])
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"id": str(message.pk), "feedback": message.feedback})


@require_POST
def conversation_branch(request: HttpRequest, conversation_id) -> HttpResponse:
    """Show another version of a message: its branch becomes the active one (stored), and
    the page gets that branch's messages to put in place of the thread's (a temporary chat
    too: the page showing it is the one place it exists)."""
    conversation = selectors.conversation_get_for_owner(
        owner=owner_for(request), conversation_id=conversation_id, include_temporary=True
    )
    if conversation is None:
        raise Http404("No such conversation.")
    try:
        branches.branch_switch(conversation=conversation, message_id=request.POST.get("message_id", ""))
    except branches.BranchError as exc:
        if exc.code == "not_found":
            raise Http404(exc.message) from exc
        return HttpResponse(exc.message, status=409, content_type="text/plain; charset=utf-8")
    thread = with_html(conv.conversation_thread(conversation=conversation))
    return render(request, f"{CHAT_TEMPLATE}#thread_messages", {"thread": thread})


@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    conversation = selectors.conversation_get_shared(share_token=token)
    if conversation is None or conversation.is_temporary:
        raise Http404("This link was revoked or never existed.")
    tree = branches.conversation_tree(conversation=conversation)
    thread = with_html(conv.conversation_thread(conversation=conversation, tree=tree))
    response = render(
        request,
        "assistant/shared.html",
        {"conversation": conversation, "thread": thread, "hidden_versions": len(tree.messages) - len(thread)},
    )
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response
