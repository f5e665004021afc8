"""platform/nginx.conf: Debian's nginx accepts it (`nginx -t`), and a chat streams through
the real nginx to two real Daphne processes (PostgreSQL + Redis): the WebSocket upgrade,
the stream, the balancing over both processes, static files, X-Request-ID."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async

from assistant.models import GenerationRun, Message
from bench.fake_upstream import Script, words
from tests.platform.processes import (
    NGINX,
    free_port,
    nginx_command,
    nginx_conf_for,
    recv,
    start_daphne,
    stop,
    wait_healthy,
    ws_connect,
)

METRICS_TOKEN = "scrape-token-0123456789"
needs_nginx = pytest.mark.skipif(NGINX is None, reason="needs Debian's nginx (apt-get install nginx-light)")


@needs_nginx
def test_debians_nginx_accepts_the_config(tmp_path):
    conf = nginx_conf_for(tmp_path, [free_port(), free_port()], free_port(), tmp_path / "static")
    result = subprocess.run(nginx_command(conf, "-t"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


@needs_nginx
def test_nginx_t_refuses_a_broken_config(tmp_path):
    conf = nginx_conf_for(tmp_path, [free_port()], free_port(), tmp_path / "static")
    conf.write_text(conf.read_text().replace("proxy_http_version 1.1;", "proxy_http_version;", 1))
    result = subprocess.run(nginx_command(conf, "-t"), capture_output=True, text=True, timeout=30)
    assert result.returncode != 0


@pytest.fixture
def stack(transactional_db, tmp_path):
    """nginx in front of two Daphne processes."""
    ports = [free_port(), free_port()]
    # Both processes share one multiprocess directory, as the processes of one host do.
    (tmp_path / "metrics").mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "METRICS_TOKEN": METRICS_TOKEN}
    webs = [start_daphne(port, tmp_path / f"daphne-{port}.log", **env) for port in ports]
    # nginx's workers drop root for an unprivileged user: the static folder must be readable
    # by it (pytest's own tmp folders are root-only).
    static = Path(tempfile.mkdtemp(prefix="lhama-static-"))
    static.chmod(0o755)
    (static / "css").mkdir(mode=0o755)
    (static / "css" / "probe.css").write_text("body{}")
    (static / "css" / "probe.css").chmod(0o644)
    listen = free_port()
    conf = nginx_conf_for(tmp_path, ports, listen, static)
    nginx = subprocess.Popen(nginx_command(conf), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for port, process in zip(ports, webs, strict=True):
            wait_healthy(port, process)
        wait_healthy(listen, nginx)
        yield {"listen": listen, "ports": ports, "webs": webs, "tmp": tmp_path}
    finally:
        stop(nginx)
        for process in webs:
            stop(process)
        shutil.rmtree(static, ignore_errors=True)


needs_postgres_and_redis = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
    reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: two web processes must share them",
)


@pytest.mark.postgres
@pytest.mark.redis
@needs_postgres_and_redis
@needs_nginx
@pytest.mark.django_db(transaction=True)
async def test_chats_stream_through_nginx_to_both_web_processes(upstream, tier, free_plan, member, member_session, stack):
    listen = stack["listen"]
    free_plan.concurrent_runs = 4
    await sync_to_async(free_plan.save)()
    upstream.default = Script(tokens=words(40), interval=0.01)
    sockets = [
        await ws_connect(f"ws://127.0.0.1:{listen}/ws/chat/", f"http://127.0.0.1:{listen}", member_session)
        for _ in range(4)
    ]
    for i, ws in enumerate(sockets):
        await ws.send(json.dumps({"type": "message.send", "client_id": f"c{i}", "conversation_id": None,
                                  "content": f"Count {i}", "tier": "llama-3.1-8b"}))
    answers = []
    for ws in sockets:
        started = await recv(ws)
        assert started["type"] == "run.started", started
        frames = [await recv(ws)]
        while frames[-1]["type"] != "done":
            frames.append(await recv(ws))
        text = "".join(f["text"] for f in frames if f["type"] == "delta")
        assert text == "".join(words(40))
        assert sum(1 for f in frames if f["type"] == "delta") > 1  # streamed, not buffered into one
        answers.append(started["assistant_message_id"])
        await ws.close()
    saved = await sync_to_async(lambda: list(Message.objects.filter(pk__in=answers).values_list("content", flat=True)))()
    assert saved == ["".join(words(40))] * 4

    # least_conn spread the four sockets over both processes.
    owners = await sync_to_async(lambda: set(
        GenerationRun.objects.filter(assistant_message_id__in=answers).values_list("owner", flat=True)
    ))()
    assert {owner.split(":")[1] for owner in owners} == {str(p.pid) for p in stack["webs"]}

    # One scrape through nginx adds up both processes (prometheus_client's multiprocess mode).
    from prometheus_client.parser import text_string_to_metric_families

    scraped = httpx.get(f"http://127.0.0.1:{listen}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                        timeout=10)
    assert scraped.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    outcomes = {tuple(s.labels.items()): s.value for s in families["lhama_run_outcomes"].samples
                if s.name == "lhama_run_outcomes_total"}
    assert outcomes[(("status", "complete"),)] == 4
    pids = {s.labels["pid"] for s in families["lhama_runs_active"].samples}
    assert pids == {str(p.pid) for p in stack["webs"]}  # one series per live process
    assert httpx.get(f"http://127.0.0.1:{listen}/metrics", timeout=10).status_code == 403


@pytest.mark.postgres
@pytest.mark.redis
@needs_postgres_and_redis
@needs_nginx
@pytest.mark.django_db(transaction=True)
def test_nginx_serves_static_files_and_passes_a_request_id(stack):
    listen = stack["listen"]
    static = httpx.get(f"http://127.0.0.1:{listen}/static/css/probe.css", timeout=5)
    assert static.status_code == 200 and static.text == "body{}"
    assert "immutable" in static.headers["cache-control"]
    health = httpx.get(f"http://127.0.0.1:{listen}/healthz", timeout=5)
    assert health.status_code == 200
    rid = health.headers["x-request-id"]
    assert len(rid) == 32  # nginx's $request_id, echoed by Django
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and f"rid={rid}" not in (stack["tmp"] / "access.log").read_text():
        time.sleep(0.05)
    assert f"rid={rid}" in (stack["tmp"] / "access.log").read_text()
