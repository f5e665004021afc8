"""Real Lhama processes for the operations tests: Daphne web processes and a Celery worker
on the test's PostgreSQL database and Redis, and nginx in front of them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "platform" / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(**extra: str) -> dict[str, str]:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "INFO",
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    env.update(extra)
    return env


def start_daphne(port: int, log_path: Path, **extra: str) -> subprocess.Popen:
    with log_path.open("w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=ROOT, env=process_env(**extra), stdout=log, stderr=subprocess.STDOUT,
        )


def start_worker(log_path: Path, *, beat: bool = False, **extra: str) -> subprocess.Popen:
    """A Celery worker on the test's database and Redis; with `beat`, the periodic tasks too
    (django-celery-beat's scheduler, in the worker: -B)."""
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--concurrency=1",
             "--without-gossip", "--without-mingle", "--pool=solo",
             *(["-B", f"--schedule={log_path.parent / 'celerybeat-schedule'}"] if beat else [])],
            cwd=ROOT, env=process_env(**extra), stdout=log, stderr=subprocess.STDOUT,
        )


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process on {port} exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"process on {port} did not start")


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def nginx_conf_for(tmp: Path, upstream_ports: list[int], listen_port: int, static_root: Path) -> Path:
    """platform/nginx.conf with the compose names replaced by this machine's addresses: the
    upstream `web:8000` by the test's Daphne processes, port 80 by a free port, the static
    volume by a folder (there is no Docker DNS here)."""
    text = NGINX_CONF.read_text()
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=3 fail_timeout=10s;" for p in upstream_ports)
    text = text.replace("        server web:8000 max_fails=3 fail_timeout=10s;", servers)
    text = text.replace("listen 80 default_server;", f"listen 127.0.0.1:{listen_port} default_server;")
    text = text.replace("alias /srv/lhama/static/;", f"alias {static_root}/;")
    text = text.replace("access_log /dev/stdout lhama;", f"access_log {tmp}/access.log lhama;")
    assert text.count("127.0.0.1:") == len(upstream_ports) + 1, "nginx.conf changed shape: update nginx_conf_for"
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


def nginx_command(conf: Path, *args: str) -> list[str]:
    """nginx on `conf` with its prefix, pid file and error log in conf's folder (Debian's
    nginx keeps its temporary files in /var/lib/nginx, which the package creates)."""
    prefix = conf.parent
    return [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
            "-g", f"daemon off; pid {prefix / 'nginx.pid'};", *args]


async def ws_connect(url: str, origin: str, session_key: str, headers: dict | None = None):
    from websockets.asyncio.client import connect

    ws = await connect(
        url, origin=origin,
        additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key}", **(headers or {})},
        open_timeout=10,
    )
    hello = json.loads(await ws.recv())
    assert hello["type"] == "hello"
    return ws


async def recv(ws, timeout: float = 10.0) -> dict:
    """The next frame that is not a title."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] != "title":
            return frame
