"""Two real web processes (Daphne) sharing PostgreSQL and Redis: a run started through
one is resumed and stopped through the other."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from assistant.models import GenerationRun, Message
from bench.fake_upstream import Script, words

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: two web processes must share them",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daphne(port: int, log_path: Path) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    log = log_path.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne on {port} exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"daphne on {port} did not start")


@pytest.fixture
def two_web_processes(transactional_db, tmp_path):
    ports = [free_port(), free_port()]
    processes = [start_daphne(port, tmp_path / f"daphne-{port}.log") for port in ports]
    try:
        for port, process in zip(ports, processes, strict=True):
            wait_healthy(port, process)
        yield list(zip(ports, processes, strict=True))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


async def ws_connect(port: int, session_key: str):
    from websockets.asyncio.client import connect

    ws = await connect(
        f"ws://127.0.0.1:{port}/ws/chat/",
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key}"},
        open_timeout=10,
    )
    hello = json.loads(await ws.recv())
    assert hello["type"] == "hello"
    return ws


async def recv(ws, timeout: float = 10.0) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] != "title":
            return frame


async def test_a_run_started_in_one_process_is_resumed_and_stopped_in_the_other(
    upstream, tier, member, member_session, two_web_processes
):
    (port_a, process_a), (port_b, _process_b) = two_web_processes
    upstream.default = Script(tokens=words(1000), interval=0.02)

    ws_a = await ws_connect(port_a, member_session)
    await ws_a.send(json.dumps({"type": "message.send", "client_id": "x1", "conversation_id": None,
                                "content": "Count for me", "tier": "llama-3.1-8b"}))
    started = await recv(ws_a)
    assert started["type"] == "run.started"
    seen_a = [await recv(ws_a) for _ in range(3)]
    assert [f["type"] for f in seen_a] == ["delta"] * 3

    run = await sync_to_async(GenerationRun.objects.get)(pk=started["run_id"])
    assert run.owner.split("|")[0].split(":")[1] == str(process_a.pid)  # process A owns the run

    ws_b = await ws_connect(port_b, member_session)
    await ws_b.send(json.dumps({"type": "run.subscribe", "run_id": started["run_id"], "after_seq": 3}))
    resync = await recv(ws_b)
    assert (resync["type"], resync["status"]) == ("run.resync", "running")
    assert resync["seq"] >= 3
    assert resync["text"].startswith("".join(f["text"] for f in seen_a))
    live_b = [await recv(ws_b) for _ in range(3)]
    assert [f["seq"] for f in live_b] == [resync["seq"] + 1, resync["seq"] + 2, resync["seq"] + 3]

    await ws_b.send(json.dumps({"type": "run.stop", "run_id": started["run_id"]}))
    frames_b = []
    while not frames_b or frames_b[-1]["type"] != "done":
        frames_b.append(await recv(ws_b))
    done = frames_b[-1]
    assert (done["status"], done["finish_reason"]) == ("stopped", "stopped")
    text_b = resync["text"] + "".join(f["text"] for f in live_b + frames_b if f["type"] == "delta")
    assert text_b == "".join(words(1000))[: len(text_b)]  # in order, nothing lost or repeated
    assert len(text_b) < len("".join(words(1000)))

    # Process A's socket saw the same run end the same way.
    frames_a = list(seen_a)
    while frames_a[-1]["type"] != "done":
        frames_a.append(await recv(ws_a))
    assert frames_a[-1] == done
    assert "".join(f["text"] for f in frames_a if f["type"] == "delta") == text_b

    answer = await sync_to_async(Message.objects.get)(pk=started["assistant_message_id"])
    assert (answer.status, answer.content) == ("stopped", text_b)
    record = upstream.records[0]
    assert await asyncio.to_thread(upstream.wait_for, lambda: record.disconnected, 5)
    await ws_a.close()
    await ws_b.close()


async def test_closing_the_socket_in_one_process_and_resuming_in_the_other(
    upstream, tier, member, member_session, two_web_processes
):
    (port_a, _), (port_b, _) = two_web_processes
    upstream.default = Script(tokens=words(60), interval=0.02)
    ws_a = await ws_connect(port_a, member_session)
    await ws_a.send(json.dumps({"type": "message.send", "client_id": "x1", "conversation_id": None,
                                "content": "Go", "tier": "llama-3.1-8b"}))
    started = await recv(ws_a)
    first = await recv(ws_a)
    await ws_a.close()

    ws_b = await ws_connect(port_b, member_session)
    await ws_b.send(json.dumps({"type": "run.subscribe", "run_id": started["run_id"], "after_seq": first["seq"]}))
    frames = [await recv(ws_b)]
    while frames[-1]["type"] != "done":
        frames.append(await recv(ws_b))
    text = frames[0]["text"] + "".join(f["text"] for f in frames if f["type"] == "delta")
    assert text == "".join(words(60))
    assert frames[-1]["status"] == "complete"
    answer = await sync_to_async(Message.objects.get)(pk=started["assistant_message_id"])
    assert (answer.status, answer.content) == ("complete", text)
    await ws_b.close()
