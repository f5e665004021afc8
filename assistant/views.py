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
from django.contrib.auth.decorators import login_required
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from assistant import attachments as att
from assistant import branches, projects, selectors, services
from assistant import conversations as conv
from assistant.forms import (
    AttachmentUploadForm,
    ConversationMoveForm,
    FeedbackForm,
    ProjectDeleteForm,
    ProjectForm,
    RenameForm,
    SearchForm,
)
from assistant.markdown import render_markdown
from assistant.models import Conversation, ModelTier, Project
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


def owned_project(request: HttpRequest, project_id) -> Project:
    project = projects.project_get_for_owner(owner=owner_for(request), project_id=project_id)
    if project is None:
        raise Http404("No such project.")
    return project


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def redirect_to(request: HttpRequest, url: str) -> HttpResponse:
    """A redirect that htmx follows as a page load (HX-Redirect), or a plain one."""
    if is_htmx(request):
        response = HttpResponse("")
        response["HX-Redirect"] = url
        return response
    return redirect(url)


# ---------------------------------------------------------------- the conversation list

def list_context(request: HttpRequest, *, query: str, project: Project | None, active_id: str) -> dict:
    owner = owner_for(request)
    items = selectors.conversations_for_owner(owner=owner, query=query)
    if project is not None:
        items = items.filter(project=project)
    items = list(items.select_related("project")[:LIST_LIMIT])
    return {
        "conversations": items,
        "groups": conv.conversation_groups(items),
        "query": query,
        "active_id": active_id,
        "list_project": project,
        "projects": list(projects.projects_for_owner(owner=owner)),
    }


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
    prefetch_related_objects([m for m in messages if m.role == "user"], "attachments")  # their chips
    for message in messages:
        if message.role == "assistant":
            # render_markdown's output is sanitised by nh3 with a Markdown-only tag list.
            message.html = mark_safe(render_markdown(message.content))  # noqa: S308
    return messages


# ---------------------------------------------------------------- pages


@require_GET
def home(request: HttpRequest, conversation_id=None, project_id=None) -> HttpResponse:
    owner_for(request, create_session=True)
    search = SearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    conversation = None
    thread: list = []
    project = owned_project(request, project_id) if project_id is not None else None
    if conversation_id is not None:
        conversation = owned_conversation(request, conversation_id)
        thread = with_html(conv.conversation_thread(conversation=conversation))
        project = conversation.project
    current_tier = conversation.tier if conversation else (project.tier if project else None)
    tiers = tier_options(request, current=current_tier)
    # A project's page lists its conversations; a conversation's page lists them all.
    list_project = project if conversation is None else None
    context = {
        **list_context(request, query=query, project=list_project,
                       active_id=str(conversation.pk) if conversation else ""),
        "conversation": conversation,
        "project": project,
        "project_form": ProjectForm(auto_id="project-new-%s"),
        "project_edit_form": project_form_for(project) if project is not None else None,
        "thread": thread,
        "tiers": tiers,
        "locked_tiers": [t for t in tiers if not t.unlocked],
        "is_guest": not request.user.is_authenticated,
        "max_message_chars": settings.ASSISTANT_MAX_MESSAGE_CHARS,
        "attachment_accept": att.ACCEPT,
        "attachment_max_bytes": settings.ASSISTANT_ATTACHMENT_MAX_BYTES,
        "zero_id": "00000000-0000-0000-0000-000000000000",
    }
    return render(request, CHAT_TEMPLATE, context)


@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    search = SearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    project_id = request.GET.get("project", "")
    project = owned_project(request, project_id) if project_id else None
    context = list_context(request, query=query, project=project, active_id=request.GET.get("active", ""))
    return render(request, f"{CHAT_TEMPLATE}#conversation_list", context)


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
    # The renamed entry is rendered whole again, its "Move to" menu included.
    projects_list = list(projects.projects_for_owner(owner=owner_for(request)))
    form = RenameForm(request.POST)
    if not form.is_valid():
        context = {"c": conversation, "form": form, "active_id": request.POST.get("active", "")}
        return render(request, f"{CHAT_TEMPLATE}#rename_form", context, status=400)
    services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
    if is_htmx(request):
        return render(
            request,
            f"{CHAT_TEMPLATE}#renamed",
            {"c": conversation, "active_id": request.POST.get("active", ""), "projects": projects_list},
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


# ---------------------------------------------------------------- projects


def project_form_for(project: Project) -> ProjectForm:
    return ProjectForm(
        initial={"name": project.name, "instructions": project.instructions, "tier": project.tier},
        auto_id="project-edit-%s",
    )


@login_required
@require_POST
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST)
    if not form.is_valid():
        form.auto_id = "project-new-%s"
        return render(request, f"{CHAT_TEMPLATE}#project_form", {"project_form": form, "form_project": None}, status=400)
    project = projects.project_create(owner=owner_for(request), **form.cleaned_data)
    return redirect_to(request, reverse("assistant:project", args=[project.pk]))


@login_required
@require_http_methods(["GET", "POST"])
def project_edit(request: HttpRequest, project_id) -> HttpResponse:
    project = owned_project(request, project_id)
    if request.method == "GET":
        context = {"project_form": project_form_for(project), "form_project": project}
        return render(request, f"{CHAT_TEMPLATE}#project_form", context)
    form = ProjectForm(request.POST, auto_id="project-edit-%s")
    if not form.is_valid():
        context = {"project_form": form, "form_project": project}
        return render(request, f"{CHAT_TEMPLATE}#project_form", context, status=400)
    projects.project_update(project=project, **form.cleaned_data)
    return redirect_to(request, reverse("assistant:project", args=[project.pk]))


@login_required
@require_POST
def project_delete(request: HttpRequest, project_id) -> HttpResponse:
    project = owned_project(request, project_id)
    form = ProjectDeleteForm(request.POST)
    if not form.is_valid():
        return HttpResponse(form.errors["conversations"][0], status=400, content_type="text/plain; charset=utf-8")
    try:
        projects.project_delete(project=project, with_conversations=form.cleaned_data["conversations"] == "delete")
    except projects.ProjectError as exc:
        return HttpResponse(exc.message, status=409, content_type="text/plain; charset=utf-8")
    return redirect_to(request, reverse("assistant:home"))


@require_POST
def conversation_move(request: HttpRequest, conversation_id) -> HttpResponse:
    form = ConversationMoveForm(request.POST)
    if not form.is_valid():
        return HttpResponse("That is not a project.", status=400, content_type="text/plain; charset=utf-8")
    try:
        conversation = projects.conversation_move(
            owner=owner_for(request), conversation_id=conversation_id, project_id=form.cleaned_data["project"]
        )
    except projects.ProjectError as exc:
        raise Http404(exc.message) from exc
    if not is_htmx(request):
        return redirect("assistant:conversation", conversation_id=conversation.pk)
    active_id = request.POST.get("active", "")
    listed_in = request.POST.get("list_project", "")
    if listed_in and listed_in != str(conversation.project_id or ""):
        return HttpResponse("")  # it left the project this list shows
    context = {"c": conversation, "active_id": active_id,
               "projects": list(projects.projects_for_owner(owner=owner_for(request))),
               "list_project": conversation.project if listed_in else None}
    return render(request, f"{CHAT_TEMPLATE}#conversation_item", context)


# ---------------------------------------------------------------- attachments


@require_POST
@ratelimit(key="user_or_ip", rate="30/m", method="POST", block=False)
def attachment_upload(request: HttpRequest) -> JsonResponse:
    """A file for the next message: its text extracted now; the id goes in message.send."""
    if getattr(request, "limited", False):
        return JsonResponse({"error": "Too many files at once: wait a minute and try again.", "code": "rate_limited"},
                            status=429)
    form = AttachmentUploadForm(files=request.FILES)
    if not form.is_valid():
        return JsonResponse({"error": form.errors["file"][0], "code": "invalid"}, status=400)
    upload = form.cleaned_data["file"]
    limit = settings.ASSISTANT_ATTACHMENT_MAX_BYTES
    data = upload.read(limit + 1)  # never more than one byte past the limit into memory
    try:
        attachment = att.attachment_upload(owner=owner_for(request), name=upload.name, data=data)
    except att.AttachmentError as exc:
        return JsonResponse({"error": exc.message, "code": exc.code}, status=413 if exc.code == "too_large" else 400)
    return JsonResponse(
        {"id": str(attachment.pk), "name": attachment.name, "kind": attachment.kind, "size": attachment.size,
         "pages": attachment.pages, "chars": len(attachment.text)},
        status=201,
    )


@require_POST
def attachment_remove(request: HttpRequest, attachment_id) -> JsonResponse:
    if not att.attachment_delete_unsent(owner=owner_for(request), attachment_id=str(attachment_id)):
        raise Http404("No such attachment.")
    return JsonResponse({"id": str(attachment_id), "removed": True})
