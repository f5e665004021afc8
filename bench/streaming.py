"""Streaming overhead through a real web process (Daphne, embedded defaults: SQLite in
WAL mode, in-process run logs) against the fake upstream.

Measures, for 1, 10 and 50 concurrent chats:
- time from `message.send` to `run.started` and to the first `delta` at the client,
  next to the upstream's own time to first token measured directly (same fake, no
  Lhama in between): the difference is Lhama's overhead (auth, quota, the one
  transaction, the run task, the run log, the socket);
and, for one answer at a GPU-like (~330 tokens/s) and a CPU-like (~50 tokens/s) rate,
the number of delta frames with coalescing (40 ms) and without.

`python -m bench streaming` (or `make bench`); JSON in bench/results/streaming.json.
The measurement runs in a child process with its own temporary database, so the
developer database is never touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "streaming.json"
RESULTS_SCALED = HERE / "results" / "streaming_postgres_redis.json"
CONCURRENCY = (1, 10, 50)
ROUNDS = 3


def _percentiles(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {}
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p95_ms": round(values[min(len(values) - 1, int(len(values) * 0.95))] * 1000, 1),
        "max_ms": round(values[-1] * 1000, 1),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc): a measure that a busy shared
    machine does not distort the way wall-clock latency is distorted."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- child: runs with its own temporary database -------------------------------------------


def _child_env(tmp: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LHAMA_VAR_DIR": tmp,
        "SQLITE_PATH": str(Path(tmp) / "bench.sqlite3"),
        # LHAMA_BENCH_DATABASE_URL / LHAMA_BENCH_REDIS_URL measure the scaled set-up instead
        # (use a scratch database: the benchmark migrates it and adds rows).
        "DATABASE_URL": os.environ.get("LHAMA_BENCH_DATABASE_URL", ""),
        "REDIS_URL": os.environ.get("LHAMA_BENCH_REDIS_URL", ""),
        "CELERY_BROKER_URL": "memory://",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "false",  # as deployed: no per-query debug bookkeeping
        "LOG_LEVEL": "WARNING",
        "BILLING_GUEST_REQUESTS_PER_MINUTE": "1000000",
        "BILLING_GUEST_DAILY_TOKENS": "1000000000",
        "BILLING_GUEST_CONCURRENT_RUNS": "10",
        # Every simulated guest connects from 127.0.0.1: lift the per-network and all-guest limits.
        "BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR": "1000000",
        "BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE": "1000000",
        "BILLING_GUEST_ADDRESS_CONCURRENT_RUNS": "100000",
        "BILLING_GUEST_ADDRESS_DAILY_TOKENS": "1000000000000",
        "BILLING_GUEST_TOTAL_DAILY_TOKENS": "1000000000000",
    }


def _start_daphne(env: dict, coalesce_s: float) -> tuple[subprocess.Popen, int]:
    import httpx

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT, env={**env, "ASSISTANT_COALESCE_S": str(coalesce_s)},
        stdout=subprocess.DEVNULL, stderr=(Path(env["LHAMA_VAR_DIR"]) / f"daphne-{port}.log").open("w"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process, port
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("daphne did not start")


async def _open(port: int, session_key: str):
    from websockets.asyncio.client import connect

    ws = await connect(f"ws://127.0.0.1:{port}/ws/chat/", origin=f"http://127.0.0.1:{port}",
                       additional_headers={"Cookie": f"sessionid={session_key}"}, max_size=None, open_timeout=60)
    json.loads(await ws.recv())  # hello
    return ws


async def _ask(ws, tier: str, conversation_id: str | None = None) -> dict:
    """One message on an open socket, timed from send to run.started and to the first delta."""
    sent = time.perf_counter()
    await ws.send(json.dumps({"type": "message.send", "client_id": "b", "conversation_id": conversation_id,
                              "content": "Benchmark question, please answer.", "tier": tier}))
    started_at = first_at = None
    frames = 0
    text = []
    conversation = None
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "run.started":
            started_at = time.perf_counter()
            conversation = frame["conversation_id"]
        elif frame["type"] == "delta":
            frames += 1
            text.append(frame["text"])
            if first_at is None:
                first_at = time.perf_counter()
        elif frame["type"] == "error":
            raise RuntimeError(frame)
        elif frame["type"] == "done":
            break
    return {"started": started_at - sent, "first_delta": first_at - sent, "frames": frames,
            "chars": len("".join(text)), "conversation_id": conversation}


async def _one_chat(port: int, session_key: str, tier: str, conversation_id: str | None = None) -> dict:
    ws = await _open(port, session_key)
    try:
        return await _ask(ws, tier, conversation_id)
    finally:
        await ws.close()


async def _rounds(port: int, pid: int, sessions: list[str], conversations: list[str], rounds: int):
    """People with open sockets all sending at once, `rounds` times: (chats, web CPU seconds)."""
    sockets = await asyncio.gather(*(_open(port, key) for key in sessions))
    try:
        await asyncio.sleep(0.5)
        cpu_before = _cpu_seconds(pid)
        chats = []
        for _ in range(rounds):
            chats += await asyncio.gather(*(
                _ask(ws, "llama-3.1-8b", conversation) for ws, conversation in zip(sockets, conversations, strict=True)
            ))
        return chats, _cpu_seconds(pid) - cpu_before
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))


async def _direct_first_token(base_url: str, concurrency: int) -> list[float]:
    from assistant.inference import Endpoint, aclose_client, stream_chat

    async def one() -> float:
        sent = time.perf_counter()
        async for chunk in stream_chat(Endpoint(base_url=base_url, model="fake-model"),
                                       messages=[{"role": "user", "content": "x"}], max_tokens=64):
            if chunk.text:
                return time.perf_counter() - sent
        raise RuntimeError("no token")

    await one()  # the pooled client and its first connection, as in a warm web process
    try:
        return list(await asyncio.gather(*(one() for _ in range(concurrency))))
    finally:
        await aclose_client()


def child() -> None:
    import django

    django.setup()
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from assistant.models import ModelTier
    from bench.fake_upstream import FakeUpstream, Script, words

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    upstream = FakeUpstream().start()
    ModelTier.objects.create(slug="llama-3.1-8b", display_name="Llama 3.1 8B", served_model_name="fake-model",
                             base_url=upstream.base_url, context_length=8192, max_output_tokens=1024)
    sessions = []
    for _ in range(max(CONCURRENCY)):
        store = SessionStore()
        store.create()
        sessions.append(store.session_key)
    env = _child_env(os.environ["LHAMA_VAR_DIR"])
    from django.db import connection

    result: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
                    "database": connection.vendor, "redis": bool(os.environ.get("REDIS_URL")),
                    "ttft": {}, "frames": {}}

    process, port = _start_daphne(env, 0.04)
    try:
        upstream.default = Script(tokens=words(20), interval=0.005)
        # Each person's first message makes the conversation (and its title, in the
        # background); the timed messages are the next ones in those conversations.
        conversations = [c["conversation_id"] for c in asyncio.run(_gather_chats(port, sessions, [None] * len(sessions)))]
        time.sleep(2)  # let the titles finish
        for concurrency in CONCURRENCY:
            chats, web_cpu_s = asyncio.run(
                _rounds(port, process.pid, sessions[:concurrency], conversations[:concurrency], ROUNDS)
            )
            started = [c["started"] for c in chats]
            first = [c["first_delta"] for c in chats]
            direct = []
            for _ in range(ROUNDS):
                direct += asyncio.run(_direct_first_token(upstream.base_url, concurrency))
            result["ttft"][f"concurrency_{concurrency}"] = {
                # CPU the web process spent per message on an open socket (quota, insert, 20 tokens
                # in frames, final save, and the ad decision that runs beside every answer).
                "web_process_cpu_ms_per_chat": round(web_cpu_s * 1000 / (ROUNDS * concurrency), 1),
                "run_started": _percentiles(started),
                "first_delta": _percentiles(first),
                "upstream_direct_first_token": _percentiles(direct),
                "overhead_p50_ms": round((statistics.median(first) - statistics.median(direct)) * 1000, 1),
            }
        for label, interval in (("gpu_like_330_tok_s", 0.003), ("cpu_like_50_tok_s", 0.02)):
            upstream.default = Script(tokens=words(300), interval=interval)
            chat = asyncio.run(_one_chat(port, sessions[0], "llama-3.1-8b"))
            result["frames"].setdefault(label, {})["coalesced_40ms"] = {"tokens": 300, "frames": chat["frames"]}
    finally:
        process.terminate()
        process.wait(10)

    process, port = _start_daphne(env, 0.0)
    try:
        for label, interval in (("gpu_like_330_tok_s", 0.003), ("cpu_like_50_tok_s", 0.02)):
            upstream.default = Script(tokens=words(300), interval=interval)
            chat = asyncio.run(_one_chat(port, sessions[0], "llama-3.1-8b"))
            result["frames"][label]["no_coalescing"] = {"tokens": 300, "frames": chat["frames"]}
    finally:
        process.terminate()
        process.wait(10)
        upstream.stop()
    print(json.dumps(result))


async def _gather_chats(port: int, sessions: list[str], conversations: list[str | None]) -> list[dict]:
    return list(await asyncio.gather(*(
        _one_chat(port, key, "llama-3.1-8b", conversation) for key, conversation in zip(sessions, conversations, strict=True)
    )))


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="lhama-bench-") as tmp:
        output = subprocess.run(
            [sys.executable, "-m", "bench.streaming", "--child"], cwd=ROOT, env=_child_env(tmp),
            capture_output=True, text=True, timeout=900, check=False,
        )
    if output.returncode != 0:
        raise RuntimeError(f"bench.streaming failed:\n{output.stderr[-3000:]}")
    result = json.loads(output.stdout.strip().splitlines()[-1])
    path = RESULTS_SCALED if result["redis"] else RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result["ttft"].items():
        print(f"   {key}: first delta p50 {value['first_delta']['p50_ms']} ms, p95 {value['first_delta']['p95_ms']} ms,"
              f" upstream alone p50 {value['upstream_direct_first_token']['p50_ms']} ms,"
              f" web process CPU {value['web_process_cpu_ms_per_chat']} ms per chat")
    for key, value in result["frames"].items():
        print(f"   {key}: {value['coalesced_40ms']['frames']} frames coalesced vs "
              f"{value['no_coalescing']['frames']} without, for 300 tokens")
    return result


def _child_with_logs() -> None:
    try:
        child()
    except BaseException:
        for log in Path(os.environ["LHAMA_VAR_DIR"]).glob("daphne-*.log"):
            print(f"--- {log.name}\n{log.read_text()[-4000:]}", file=sys.stderr)
        raise


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child_with_logs()
    else:
        main()
