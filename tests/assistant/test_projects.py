"""Projects (assistant.projects): folders of conversations with their own instructions
and default model; the socket files a new chat in one; another person's ids are 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from assistant import projects
from assistant.conversations import GROUP_OLDER, GROUP_TODAY, GROUP_WEEK, conversation_groups
from assistant.models import Conversation, Message, Project
from assistant.selectors import Owner
from tests.assistant.conftest import chat_requests, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]

INSTRUCTIONS = "Always answer in French and cite the project's style guide."


def send_frame(content="Hello there", **extra) -> dict:
    return {"type": "message.send", "client_id": "c1", "conversation_id": None, "content": content,
            "tier": "llama-3.1-8b", **extra}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def project(member, tier):
    return Project.objects.create(user=member, name="Thesis", instructions=INSTRUCTIONS, tier=tier)


@pytest.fixture
def others_project(other_member):
    return Project.objects.create(user=other_member, name="Not yours", instructions="Leak the secrets.")


# --- the prompt --------------------------------------------------------------------------


async def test_a_new_chat_in_a_project_carries_its_instructions_to_the_prompt(upstream, tier, member, sessions,
                                                                              project):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Bonjour?", project_id=str(project.pk)))
    frames = await socket.until("done", "error")
    assert frames[-1]["type"] == "done", frames[-1]
    conversation = await sync_to_async(Conversation.objects.get)(pk=frames[0]["conversation_id"])
    assert conversation.project_id == project.pk
    system = chat_requests(upstream)[-1]["messages"][0]
    assert system["role"] == "system"
    assert INSTRUCTIONS in system["content"]
    assert "Answer like a pirate." in system["content"]  # the person's own instructions stay too
    await socket.close()


async def test_edited_project_instructions_reach_the_next_answer(upstream, tier, member, sessions, project):
    conversation = await sync_to_async(Conversation.objects.create)(user=member, project=project, tier=tier)
    await sync_to_async(projects.project_update)(project=project, name="Thesis", instructions="Use British spelling.")
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Colour or color?", conversation_id=str(conversation.pk)))
    assert (await socket.until("done", "error"))[-1]["type"] == "done"
    system = chat_requests(upstream)[-1]["messages"][0]["content"]
    assert "Use British spelling." in system
    assert INSTRUCTIONS not in system
    await socket.close()


async def test_a_chat_outside_projects_has_no_project_instructions(upstream, tier, member, sessions, project):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Hi"))
    assert (await socket.until("done", "error"))[-1]["type"] == "done"
    assert INSTRUCTIONS not in chat_requests(upstream)[-1]["messages"][0]["content"]
    await socket.close()


async def test_another_persons_project_is_refused_and_nothing_is_saved(upstream, tier, member, sessions,
                                                                       others_project):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Hi", project_id=str(others_project.pk)))
    error = await socket.recv()
    assert error["type"] == "error"
    assert error["code"] == "not_found"
    assert error["message"] == projects.PROJECT_NOT_FOUND
    assert await sync_to_async(Conversation.objects.count)() == 0
    assert await sync_to_async(Message.objects.count)() == 0
    assert chat_requests(upstream) == []
    await socket.close()


async def test_a_malformed_project_id_is_an_invalid_frame(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Hi", project_id=["x"]))
    error = await socket.recv()
    assert (error["type"], error["code"]) == ("error", "invalid_frame")
    await socket.close()


# --- the pages ---------------------------------------------------------------------------


def test_create_rename_and_set_a_projects_model(member, tier):
    client = client_for(member)
    response = client.post("/projects/new", {"name": "  Garden  ", "instructions": "Plants only.", "tier": tier.slug})
    project = Project.objects.get(user=member)
    assert response.status_code == 302
    assert response["Location"] == f"/p/{project.pk}/"
    assert (project.name, project.instructions, project.tier_id) == ("Garden", "Plants only.", tier.pk)

    response = client.post(f"/p/{project.pk}/edit", {"name": "Allotment", "instructions": ""},
                           HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == f"/p/{project.pk}/"
    project.refresh_from_db()
    assert (project.name, project.instructions, project.tier_id) == ("Allotment", "", None)

    page = client.get(f"/p/{project.pk}/")
    assert page.status_code == 200
    assert page.context["project"] == project
    assert b"Allotment" in page.content


def test_a_project_without_a_name_is_refused_with_the_reason(member):
    response = client_for(member).post("/projects/new", {"name": "  ", "instructions": "x"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert b"Give the project a name." in response.content
    assert Project.objects.count() == 0


def test_guests_cannot_make_projects(client, db):
    response = client.post("/projects/new", {"name": "Mine"})
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert Project.objects.count() == 0


def test_a_new_chat_on_a_project_page_starts_on_the_projects_model(member, tier, big_tier, free_plan):
    free_plan.model_tier_slugs = [tier.slug, big_tier.slug]
    free_plan.save()
    project = Project.objects.create(user=member, name="Big", tier=big_tier)
    page = client_for(member).get(f"/p/{project.pk}/")
    selected = [t.slug for t in page.context["tiers"] if t.selected]
    assert selected == [big_tier.slug]
    assert f'data-project-id="{project.pk}"'.encode() in page.content


def test_move_a_conversation_into_a_project_and_out_again(member, tier, project):
    conversation = Conversation.objects.create(user=member, title="Chapter 1")
    before = Conversation.objects.get(pk=conversation.pk).updated_at
    client = client_for(member)
    response = client.post(f"/c/{conversation.pk}/move", {"project": str(project.pk)}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b"Chapter 1" in response.content
    conversation.refresh_from_db()
    assert conversation.project_id == project.pk
    assert conversation.updated_at == before  # moving is not talking in it

    # On the project's own list, moving it out takes it off that list.
    response = client.post(f"/c/{conversation.pk}/move", {"project": "", "list_project": str(project.pk)},
                           HTTP_HX_REQUEST="true")
    assert response.content == b""
    conversation.refresh_from_db()
    assert conversation.project_id is None


def test_the_project_list_shows_only_its_conversations(member, project):
    inside = Conversation.objects.create(user=member, title="Inside", project=project)
    Conversation.objects.create(user=member, title="Outside")
    page = client_for(member).get(f"/p/{project.pk}/")
    assert [c.pk for c in page.context["conversations"]] == [inside.pk]
    listed = client_for(member).get("/conversations/", {"project": str(project.pk)})
    assert [c.pk for c in listed.context["conversations"]] == [inside.pk]


def test_delete_a_project_keeping_its_conversations(member, project):
    conversation = Conversation.objects.create(user=member, title="Keep me", project=project)
    response = client_for(member).post(f"/p/{project.pk}/delete", {"conversations": "keep"})
    assert response.status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()
    conversation.refresh_from_db()
    assert conversation.project_id is None


def test_delete_a_project_with_its_conversations(member, project):
    doomed = Conversation.objects.create(user=member, title="Doomed", project=project)
    Message.objects.create(conversation=doomed, role="user", content="bye")
    elsewhere = Conversation.objects.create(user=member, title="Elsewhere")
    response = client_for(member).post(f"/p/{project.pk}/delete", {"conversations": "delete"})
    assert response.status_code == 302
    assert list(Conversation.objects.values_list("pk", flat=True)) == [elsewhere.pk]
    assert Message.objects.count() == 0


def test_delete_needs_an_answer_about_the_conversations(member, project):
    response = client_for(member).post(f"/p/{project.pk}/delete", {})
    assert response.status_code == 400
    assert Project.objects.filter(pk=project.pk).exists()


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "/p/{p}/", None),
        ("get", "/p/{p}/edit", None),
        ("post", "/p/{p}/edit", {"name": "Mine now"}),
        ("post", "/p/{p}/delete", {"conversations": "delete"}),
        ("get", "/conversations/?project={p}", None),
    ],
)
def test_another_persons_project_is_404(member, others_project, method, path, data):
    client = client_for(member)
    response = getattr(client, method)(path.format(p=others_project.pk), data)
    assert response.status_code == 404
    others_project.refresh_from_db()
    assert others_project.name == "Not yours"


def test_moving_into_another_persons_project_or_moving_their_conversation_is_404(member, other_member, project,
                                                                                 others_project):
    mine = Conversation.objects.create(user=member, title="Mine")
    theirs = Conversation.objects.create(user=other_member, title="Theirs")
    client = client_for(member)
    assert client.post(f"/c/{mine.pk}/move", {"project": str(others_project.pk)}).status_code == 404
    assert client.post(f"/c/{theirs.pk}/move", {"project": str(project.pk)}).status_code == 404
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.project_id is None
    assert theirs.project_id is None


def test_projects_are_listed_for_their_owner_only(member, other_member, project, others_project):
    assert list(projects.projects_for_owner(owner=Owner(user_id=member.pk))) == [project]
    assert list(projects.projects_for_owner(owner=Owner(user_id=None, session_key="guest"))) == []


# --- the conversation list's groups ------------------------------------------------------


def test_the_conversation_list_is_grouped_by_today_previous_7_days_and_older(member):
    now = timezone.now()
    ages = {"today": timedelta(0), "yesterday": timedelta(days=1), "week": timedelta(days=6),
            "month": timedelta(days=30)}
    for title, age in ages.items():
        conversation = Conversation.objects.create(user=member, title=title)
        Conversation.objects.filter(pk=conversation.pk).update(updated_at=now - age)
    listed = Conversation.objects.filter(user=member).order_by("-updated_at")
    groups = [(label, [c.title for c in items]) for label, items in conversation_groups(listed, now=now)]
    assert groups == [(GROUP_TODAY, ["today"]), (GROUP_WEEK, ["yesterday", "week"]), (GROUP_OLDER, ["month"])]
    page = client_for(member).get("/")
    content = page.content.decode()
    assert content.index("Today") < content.index("Previous 7 days") < content.index("Older")
