"""The first minute of a fresh Lhama.

1. The embedded llama.cpp server answers its first completion after start-up wrongly
   (it recites the system prompt back, whatever the question); from the second request
   on it answers normally. `embedded_serve` (`manage.py embedded_serve`, the `model`
   process of platform/Procfile.embedded) starts the server, sends it one warm-up
   completion, and only then writes a marker file under LHAMA_VAR_DIR. /readyz
   (config/health.py) reports the embedded server not ready until that marker exists
   and the process that wrote it is alive, so every process on the machine (web,
   worker, `make run`'s ready line) sees the same state. Other servers (vLLM) need no
   warm-up and are never held back.
2. The ad engine (embedding model, topic centroids, campaign index) loads when the web
   process starts (`web_process_started`, called from config/asgi.py), in a background
   thread, instead of when the first socket connects.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from django.conf import settings

from assistant.prompts import system_prompt

logger = logging.getLogger(__name__)

# A question like a person's first one, under the real system prompt: the warm-up goes
# through the same chat template and prompt prefix the first real request will.
WARM_UP_QUESTION = "Hello! In one sentence, what can you help me with?"
WARM_UP_MAX_TOKENS = 16
START_TIMEOUT_S = 180.0
WARM_UP_TIMEOUT_S = 120.0


def _normalised(base_url: str) -> str:
    return base_url.strip().rstrip("/")


def warm_up_required(*, base_url: str) -> bool:
    """Whether the server at `base_url` is the embedded one, which must be warmed up."""
    return _normalised(base_url) == _normalised(settings.LLM_EMBEDDED_URL)


def marker_path(*, base_url: str) -> Path:
    digest = hashlib.sha256(_normalised(base_url).encode()).hexdigest()[:16]
    return Path(settings.VAR_DIR) / "warmup" / f"{digest}.json"


def warm_up_mark(*, base_url: str, pid: int) -> None:
    """Record that the server at `base_url`, watched by process `pid`, is warmed up."""
    path = marker_path(base_url=base_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": _normalised(base_url), "pid": pid, "at": time.time()}))
    tmp.replace(path)  # atomic: a reader sees no marker or a whole one


def warm_up_clear(*, base_url: str) -> None:
    marker_path(base_url=base_url).unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def warm_up_done(*, base_url: str) -> bool:
    """True once the server at `base_url` was warmed up by a process that still runs
    (a marker left by a killed server does not count)."""
    try:
        data = json.loads(marker_path(base_url=base_url).read_text())
    except (OSError, ValueError):
        return False
    pid = data.get("pid") if isinstance(data, dict) else None
    return isinstance(pid, int) and pid > 0 and _process_alive(pid)


def warm_up_completion(*, base_url: str, model: str, timeout: float = WARM_UP_TIMEOUT_S) -> str:
    """Send the warm-up completion, streamed like every chat request, and return its
    text (the caller throws it away)."""
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": system_prompt()},
            {"role": "user", "content": WARM_UP_QUESTION},
        ],
        "max_tokens": WARM_UP_MAX_TOKENS,
        "stream": True,
    }
    parts: list[str] = []
    with (
        httpx.Client(timeout=httpx.Timeout(timeout), trust_env=False) as client,
        client.stream("POST", _normalised(base_url) + "/chat/completions", json=body) as response,
    ):
        response.raise_for_status()
        for line in response.iter_lines():
            data = line.removeprefix("data:").strip()
            if not line.startswith("data:") or not data or data == "[DONE]":
                continue
            for choice in json.loads(data).get("choices") or []:
                parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts)


def _wait_listening(*, base_url: str, process: subprocess.Popen, deadline: float) -> None:
    with httpx.Client(timeout=httpx.Timeout(2.0), trust_env=False) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the embedded model server exited with {process.returncode}")
            try:
                if client.get(_normalised(base_url) + "/models").status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"the embedded model server did not answer within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.25)


def embedded_serve(*, argv: list[str], base_url: str, model: str, out=sys.stdout) -> int:
    """Run the embedded server (`argv`) as a child, warm it up, mark it ready, and wait
    for it; SIGTERM/SIGINT are passed on to it. Returns its exit status."""
    warm_up_clear(base_url=base_url)
    process = subprocess.Popen(argv)  # noqa: S603 -- our own interpreter and arguments

    def forward(signum, _frame) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    if threading.current_thread() is threading.main_thread():  # only there can Python take signals
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
    try:
        started = time.monotonic()
        _wait_listening(base_url=base_url, process=process, deadline=started + START_TIMEOUT_S)
        warm_up_completion(base_url=base_url, model=model)
        warm_up_mark(base_url=base_url, pid=os.getpid())
        out.write(f"embedded model server warmed up in {time.monotonic() - started:.1f} s\n")
        out.flush()
        return process.wait()
    except BaseException:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        raise
    finally:
        warm_up_clear(base_url=base_url)


def ready_announce(*, site_url: str, out=sys.stdout, poll_s: float = 0.5) -> None:
    """Wait until the web process at `site_url` answers /readyz with 200 (the embedded
    server warmed up included), say so once, then stay (honcho stops every process
    when one exits)."""
    readyz = site_url.rstrip("/") + "/readyz"
    with httpx.Client(timeout=httpx.Timeout(5.0), trust_env=False) as client:
        while True:
            try:
                if client.get(readyz).status_code == 200:
                    break
            except httpx.HTTPError:
                pass  # the web process is not listening yet
            time.sleep(poll_s)
    out.write(f"\n  Lhama is ready: {site_url.rstrip('/')}/\n\n")
    out.flush()
    while True:
        signal.pause()


def web_process_started() -> None:
    """The web process has started: load the ad engine now, in a background thread, so
    the first message of a fresh process gets its ad (returns at once)."""
    from ads.services.decision import ads_warm_up_in_background

    ads_warm_up_in_background()
