"""SIGTERM to one of two web processes mid-stream (a deploy): 20 concurrent chats over both,
every answer completes and is saved once; the draining process's sockets are closed with
4503, reconnect to the other process and follow their runs there to the end; the drained
process exits by itself. Past LHAMA_DRAIN_S, what still runs is saved as interrupted, its
quota settled, and its followers are told so."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from websockets.exceptions import ConnectionClosed

from assistant.lifecycle import CLOSE_DRAINING
from assistant.models import GenerationRun, Message
from bench.fake_upstream import Script, words
from tests.platform.processes import free_port, recv, start_daphne, stop, wait_healthy, ws_connect

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: two web processes must share them",
    ),
]

CHATS = 20
TOKENS = words(150)
PROCESS_ENV = {"LHAMA_DRAIN_S": "30", "ASSISTANT_SNAPSHOT_INTERVAL_S": "0.5", "LOG_LEVEL": "INFO"}


def web_processes(tmp_path, **env: str):
    ports = [free_port(), free_port()]
    processes = [start_daphne(port, tmp_path / f"daphne-{port}.log", **{**PROCESS_ENV, **env}) for port in ports]
    try:
        for port, process in zip(ports, processes, strict=True):
            wait_healthy(port, process)
        yield list(zip(ports, processes, strict=True)), tmp_path
    finally:
        for process in processes:
            stop(process)


@pytest.fixture
def two_web_processes(transactional_db, tmp_path):
    yield from web_processes(tmp_path)


@pytest.fixture
def two_web_processes_short_drain(transactional_db, tmp_path):
    yield from web_processes(tmp_path, LHAMA_DRAIN_S="1")


async def chat(port: int, session: str, i: int):
    ws = await ws_connect(f"ws://127.0.0.1:{port}/ws/chat/", f"http://127.0.0.1:{port}", session)
    await ws.send(json.dumps({"type": "message.send", "client_id": f"c{i}", "conversation_id": None,
                              "content": f"Count {i}", "tier": "llama-3.1-8b"}))
    started = await recv(ws, timeout=30)
    assert started["type"] == "run.started", started
    return ws, started


async def follow(ws, frames: list[dict]) -> None:
    """Frames until `done` (the run's end), or until the socket closes."""
    while not frames or frames[-1]["type"] != "done":
        frames.append(await recv(ws, timeout=30))


async def test_sigterm_mid_stream_every_answer_completes_once_and_its_sockets_follow_elsewhere(
    upstream, tier, free_plan, member, member_session, two_web_processes
):
    (procs, tmp) = two_web_processes
    (port_a, process_a), (port_b, _process_b) = procs
    free_plan.concurrent_runs = CHATS
    await sync_to_async(free_plan.save)()
    upstream.default = Script(tokens=TOKENS, interval=0.03)

    opened = await asyncio.gather(*(chat(port_a if i % 2 == 0 else port_b, member_session, i) for i in range(CHATS)))
    frames: dict[str, list[dict]] = {started["run_id"]: [started] for _, started in opened}
    on_a = {started["run_id"]: ws for i, (ws, started) in enumerate(opened) if i % 2 == 0}
    on_b = {started["run_id"]: ws for i, (ws, started) in enumerate(opened) if i % 2 == 1}
    for run_id, ws in on_a.items():  # mid-stream: every run on A has sent text
        frames[run_id].append(await recv(ws))
        assert frames[run_id][-1]["type"] == "delta"

    ready_url = f"http://127.0.0.1:{port_a}/readyz"
    deadline = time.monotonic() + 60  # ready once its ad engine has loaded (in the background at start)
    while (await asyncio.to_thread(httpx.get, ready_url, timeout=5)).status_code != 200:
        assert time.monotonic() < deadline, "A never said ready"
        await asyncio.sleep(0.1)
    process_a.send_signal(signal.SIGTERM)
    # While it drains, A says it is not ready (a load balancer sends new work elsewhere).
    deadline = time.monotonic() + 5
    while (await asyncio.to_thread(httpx.get, ready_url, timeout=5)).status_code != 503:
        assert time.monotonic() < deadline, "A kept saying ready while draining"
        await asyncio.sleep(0.05)

    async def drained_then_followed_on_b(run_id: str, ws) -> None:
        try:
            await follow(ws, frames[run_id])
            raise AssertionError(f"{run_id}: A's socket was not closed by the drain")
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == CLOSE_DRAINING
        seen = [f for f in frames[run_id] if f["type"] == "delta"]
        ws_b = await ws_connect(f"ws://127.0.0.1:{port_b}/ws/chat/", f"http://127.0.0.1:{port_b}", member_session)
        await ws_b.send(json.dumps({"type": "run.subscribe", "run_id": run_id, "after_seq": seen[-1]["seq"]}))
        resync = await recv(ws_b, timeout=30)
        assert resync["type"] == "run.resync"
        assert resync["text"].startswith("".join(f["text"] for f in seen))
        followed = [resync]
        if resync["status"] == "running":
            await follow(ws_b, followed)
        frames[run_id] = [*frames[run_id][:1], *followed]
        await ws_b.close()

    async def to_the_end(run_id: str, ws) -> None:
        await follow(ws, frames[run_id])
        await ws.close()

    await asyncio.gather(
        *(drained_then_followed_on_b(r, ws) for r, ws in on_a.items()),
        *(to_the_end(r, ws) for r, ws in on_b.items()),
    )
    # The drained process exits by itself once its runs are done.
    assert await asyncio.to_thread(process_a.wait, 60) is not None
    log_a = next(tmp.glob(f"daphne-{port_a}.log")).read_text()
    assert "SIGTERM: draining" in log_a and "drained; exiting" in log_a

    full = "".join(TOKENS)
    for run_id, run_frames in frames.items():
        if run_frames[1]["type"] == "run.resync":  # followed on B after the drain
            text = run_frames[1]["text"] + "".join(f["text"] for f in run_frames[2:] if f["type"] == "delta")
        else:
            text = "".join(f["text"] for f in run_frames if f["type"] == "delta")
        assert text == full, run_id
    runs = await sync_to_async(lambda: list(GenerationRun.objects.filter(pk__in=list(frames))))()
    assert sorted(r.status for r in runs) == ["complete"] * CHATS
    assert {r.owner.split(":")[1] for r in runs} == {str(process_a.pid), str(_process_b.pid)}
    answers = await sync_to_async(lambda: list(
        Message.objects.filter(role="assistant", conversation__runs__pk__in=list(frames)).distinct()
    ))()
    assert len(answers) == CHATS  # saved once: one answer per chat, each with one run
    assert all(a.content == full and a.status == "complete" for a in answers)


async def test_runs_still_going_at_the_drain_deadline_are_saved_as_interrupted(
    upstream, tier, free_plan, member, member_session, two_web_processes_short_drain
):
    from billing.entitlements import entitlements_for
    from billing.quotas import quota_usage_today

    (procs, _tmp) = two_web_processes_short_drain
    (port_a, process_a), (port_b, _) = procs
    free_plan.concurrent_runs = 4
    await sync_to_async(free_plan.save)()
    upstream.default = Script(tokens=words(250), interval=0.05)  # 12.5 s: far past the 1 s drain
    opened = await asyncio.gather(*(chat(port_a, member_session, i) for i in range(4)))
    seen = {}
    for ws, started in opened:
        seen[started["run_id"]] = await recv(ws)
        assert seen[started["run_id"]]["type"] == "delta"
    process_a.send_signal(signal.SIGTERM)

    async def followed_on_b(ws, started) -> list[dict]:
        with pytest.raises(ConnectionClosed):
            while True:
                await recv(ws, timeout=30)
        ws_b = await ws_connect(f"ws://127.0.0.1:{port_b}/ws/chat/", f"http://127.0.0.1:{port_b}", member_session)
        await ws_b.send(json.dumps({"type": "run.subscribe", "run_id": started["run_id"], "after_seq": 0}))
        frames = [await recv(ws_b, timeout=30)]
        while frames[-1]["type"] not in ("error", "done") and not (
            frames[-1]["type"] == "run.resync" and frames[-1]["status"] != "running"
        ):
            frames.append(await recv(ws_b, timeout=30))
        await ws_b.close()
        return frames

    followed = await asyncio.gather(*(followed_on_b(ws, started) for ws, started in opened))
    for frames in followed:
        last = frames[-1]
        assert (last["type"] == "error" and last["code"] == "interrupted") or last.get("status") == "interrupted"
    assert await asyncio.to_thread(process_a.wait, 60) is not None
    full = "".join(words(250))
    for _, started in opened:
        answer = await sync_to_async(Message.objects.get)(pk=started["assistant_message_id"])
        assert answer.status == "interrupted"
        assert answer.content and full.startswith(answer.content) and answer.content != full
        run = await sync_to_async(GenerationRun.objects.get)(pk=started["run_id"])
        assert run.status == "interrupted"
    usage = await sync_to_async(lambda: quota_usage_today(
        subject=f"user:{member.pk}", entitlements=entitlements_for(user=member)))()
    assert (usage.tokens_reserved, usage.active_runs) == (0, 0)
