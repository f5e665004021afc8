"""SIGKILL to one of two web processes mid-stream (a crash): 20 concurrent chats over both and
a Celery worker (with beat) on PostgreSQL and Redis. The runs of the process that lives
complete untouched; the dead process's runs are marked interrupted within 10 s with their
partial text, their followers (reconnected to the live process) are told so, their quota
reservations are settled, and "continue" works."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest
from asgiref.sync import sync_to_async
from websockets.exceptions import ConnectionClosed

from assistant.models import GenerationRun, Message
from bench.fake_upstream import Script, words
from billing.entitlements import entitlements_for
from billing.quotas import quota_usage_today
from tests.platform.processes import free_port, recv, start_daphne, start_worker, stop, wait_healthy, ws_connect

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: two web processes and a worker must share them",
    ),
]

CHATS = 20
TOKENS = words(250)  # under the tier's 256-token output limit
# Beats every second, dead after 3 silent seconds; the reaper (beat) runs every second.
PROCESS_ENV = {
    "ASSISTANT_PROCESS_HEARTBEAT_S": "1",
    "ASSISTANT_PROCESS_STALE_S": "3",
    "ASSISTANT_SNAPSHOT_INTERVAL_S": "0.5",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture
def stack(transactional_db, tmp_path):
    ports = [free_port(), free_port()]
    webs = [start_daphne(port, tmp_path / f"daphne-{port}.log", **PROCESS_ENV) for port in ports]
    worker_log = tmp_path / "worker.log"
    worker = start_worker(worker_log, beat=True, **PROCESS_ENV)
    try:
        for port, process in zip(ports, webs, strict=True):
            wait_healthy(port, process)
        deadline = time.monotonic() + 90
        while " ready." not in worker_log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, worker_log.read_text()[-3000:]
            time.sleep(0.2)
        yield list(zip(ports, webs, strict=True))
    finally:
        for process in (*webs, worker):
            stop(process)


async def chat(port: int, session: str, i: int):
    ws = await ws_connect(f"ws://127.0.0.1:{port}/ws/chat/", f"http://127.0.0.1:{port}", session)
    await ws.send(json.dumps({"type": "message.send", "client_id": f"c{i}", "conversation_id": None,
                              "content": f"Count {i}", "tier": "llama-3.1-8b"}))
    started = await recv(ws, timeout=30)
    assert started["type"] == "run.started", started
    return ws, started


async def until(ws, *types: str, timeout: float = 30) -> list[dict]:
    frames = []
    deadline = time.monotonic() + timeout
    while not frames or frames[-1]["type"] not in types:
        frames.append(await recv(ws, timeout=max(0.1, deadline - time.monotonic())))
    return frames


async def test_sigkill_mid_stream_interrupts_only_the_dead_processes_runs_within_seconds(
    upstream, tier, free_plan, member, member_session, stack
):
    (port_a, process_a), (port_b, process_b) = stack
    free_plan.concurrent_runs = CHATS
    await sync_to_async(free_plan.save)()
    upstream.default = Script(tokens=TOKENS, interval=0.05)

    opened = await asyncio.gather(*(chat(port_a if i % 2 == 0 else port_b, member_session, i) for i in range(CHATS)))
    on_a = {started["run_id"]: (ws, started) for i, (ws, started) in enumerate(opened) if i % 2 == 0}
    on_b = {started["run_id"]: (ws, started) for i, (ws, started) in enumerate(opened) if i % 2 == 1}
    seen: dict[str, list[dict]] = {run_id: [] for run_id in on_a}
    for run_id, (ws, _) in on_a.items():
        seen[run_id].append(await recv(ws))
    # Mid-stream, with partial text saved by a snapshot of every run on A.
    a_messages = [started["assistant_message_id"] for _, started in on_a.values()]

    def snapshotted() -> bool:
        return Message.objects.filter(pk__in=a_messages).exclude(content="").count() == len(a_messages)

    deadline = time.monotonic() + 20
    while not await sync_to_async(snapshotted)():
        assert time.monotonic() < deadline, "runs on A never snapshotted"
        await asyncio.sleep(0.1)

    process_a.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    process_a.wait(5)

    async def followed_on_b_until_interrupted(run_id: str) -> float:
        ws, _ = on_a[run_id]
        with pytest.raises(ConnectionClosed):
            while True:
                await recv(ws, timeout=10)
        ws_b = await ws_connect(f"ws://127.0.0.1:{port_b}/ws/chat/", f"http://127.0.0.1:{port_b}", member_session)
        await ws_b.send(json.dumps({"type": "run.subscribe", "run_id": run_id, "after_seq": seen[run_id][-1]["seq"]}))
        frames = await until(ws_b, "error", timeout=15)
        interrupted_after = time.monotonic() - killed_at
        assert frames[-1]["code"] == "interrupted" and frames[-1]["retryable"] is True
        await ws_b.close()
        return interrupted_after

    async def completes(run_id: str) -> str:
        ws, _ = on_b[run_id]
        frames = await until(ws, "done", timeout=60)
        await ws.close()
        assert frames[-1]["status"] == "complete"
        return "".join(f["text"] for f in frames if f["type"] == "delta")

    results = await asyncio.gather(
        *(followed_on_b_until_interrupted(r) for r in on_a), *(completes(r) for r in on_b)
    )
    delays, texts = results[: len(on_a)], results[len(on_a):]
    print(f"dead process's runs interrupted after {min(delays):.1f}-{max(delays):.1f} s")  # docs/deploy.md
    assert max(delays) < 10, f"interrupted after {max(delays):.1f} s"
    full = "".join(TOKENS)
    assert texts == [full] * len(on_b)  # the live process's runs: untouched, complete

    runs = await sync_to_async(lambda: {str(r.pk): r for r in GenerationRun.objects.filter(pk__in=[*on_a, *on_b])})()
    assert {runs[r].status for r in on_a} == {"interrupted"}
    assert {runs[r].status for r in on_b} == {"complete"}
    answers = await sync_to_async(lambda: {
        str(m.pk): m for m in Message.objects.filter(pk__in=[s["assistant_message_id"] for _, s in opened])
    })()
    for _, started in on_a.values():
        answer = answers[started["assistant_message_id"]]
        assert answer.status == "interrupted"
        assert answer.content and full.startswith(answer.content)  # the partial text, kept
    # Every reservation settled: nothing reserved, no run counted as active.
    usage = await sync_to_async(lambda: quota_usage_today(
        subject=f"user:{member.pk}", entitlements=entitlements_for(user=member)))()
    assert (usage.tokens_reserved, usage.active_runs) == (0, 0)

    # "Continue" goes on from the saved text, on the live process.
    _, started = next(iter(on_a.values()))
    partial = answers[started["assistant_message_id"]].content
    upstream.default = Script(tokens=words(5, prefix="more"), interval=0.01)
    ws_b = await ws_connect(f"ws://127.0.0.1:{port_b}/ws/chat/", f"http://127.0.0.1:{port_b}", member_session)
    await ws_b.send(json.dumps({"type": "message.continue", "client_id": "k1",
                                "conversation_id": started["conversation_id"],
                                "message_id": started["assistant_message_id"], "tier": "llama-3.1-8b"}))
    frames = await until(ws_b, "done", "error", timeout=30)
    await ws_b.close()
    assert frames[-1]["type"] == "done" and frames[-1]["status"] == "complete", frames[-1]
    answer = await sync_to_async(Message.objects.get)(pk=started["assistant_message_id"])
    assert answer.content == partial + "".join(words(5, prefix="more"))
