"""The staff page of live runs: a running answer with its process, tier and tokens, its stop
button (which stops it), the latest failed run with its id, the inference servers' health;
refused to anyone but staff."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client

from assistant.models import GenerationRun
from bench.fake_upstream import Script, words
from tests.assistant.conftest import open_socket
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]


def test_the_live_page_is_for_staff_only(transactional_db):
    assert Client().get("/admin/live/").status_code == 302  # to the admin login
    member = Client()
    member.force_login(UserFactory())
    assert member.get("/admin/live/").status_code == 302


async def test_a_running_answer_is_listed_and_its_stop_button_stops_it(upstream, tier, member, sessions, settings):
    upstream.default = Script(tokens=words(2000), interval=0.01)
    socket = await open_socket(sessions["member"])
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": "Count", "tier": "llama-3.1-8b"})
    started = await socket.recv()
    await socket.until("delta")
    staff = await sync_to_async(UserFactory)(is_staff=True, is_superuser=True)
    client = AsyncClient()
    await sync_to_async(client.force_login)(staff)

    page = await client.get("/admin/live/")
    assert page.status_code == 200
    html = page.content.decode()
    assert started["run_id"] in html and "Llama 3.1 8B" in html
    assert "Inference servers" in html and upstream.base_url.split("//")[1].split("/")[0] in html

    stopped = await client.post("/admin/live/", {"run_id": started["run_id"]})
    assert stopped.status_code == 302
    done = (await socket.until("done"))[-1]
    assert done["status"] == "stopped"
    await socket.close()
    run = await sync_to_async(GenerationRun.objects.get)(pk=started["run_id"])
    assert run.status == "stopped"


async def test_a_failed_run_is_listed_with_its_id(upstream, tier, member, sessions):
    upstream.default = Script(tokens=["a", "b", "c"], fault="drop_mid", fault_after=1)
    socket = await open_socket(sessions["member"])
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": "Hi", "tier": "llama-3.1-8b"})
    error = (await socket.until("error"))[-1]
    await socket.close()
    staff = await sync_to_async(UserFactory)(is_staff=True, is_superuser=True)
    client = AsyncClient()
    await sync_to_async(client.force_login)(staff)
    html = (await client.get("/admin/live/")).content.decode()
    assert error["run_id"] in html and error["code"] in html
