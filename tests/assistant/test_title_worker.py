"""With Redis, the title is made by a real Celery worker process and pushed to the page
through the channel layer (the embedded mode makes it in the web process; the same
`title` frame is asserted for both in test_consumer.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from assistant.models import Conversation
from tests.assistant.conftest import open_socket

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_runs_drained"),
    pytest.mark.skipif(
        not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: the worker process must share them",
    ),
]


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    from config.celery import app

    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while "ready" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the Celery worker did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    app.conf.task_always_eager = False  # this test publishes to the real broker
    try:
        yield log
    finally:
        app.conf.task_always_eager = True
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


async def test_the_worker_makes_the_title_and_the_page_gets_it(upstream, tier, member, sessions,
                                                                celery_worker_process):
    socket = await open_socket(sessions["member"])
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": "Hello world, how are you?", "tier": "llama-3.1-8b"})
    frames = await socket.until("done")
    title = await socket.recv(timeout=20, titles=True)
    assert title == {"type": "title", "conversation_id": frames[0]["conversation_id"], "title": "Greeting the world"}
    conversation = await sync_to_async(Conversation.objects.get)(pk=frames[0]["conversation_id"])
    assert conversation.title == "Greeting the world"
    assert "Task assistant.conversation_title_generate" in celery_worker_process.read_text()  # made by the worker
    await socket.close()
