"""The first minute: the embedded model server is warmed up before /readyz calls it
ready, and the web process loads the ad engine when it starts (assistant/warmup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from assistant import warmup
from assistant.prompts import DEFAULT_SYSTEM_PROMPT
from bench.fake_upstream import Script
from config import health
from tests.assistant.conftest import make_tier

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_probe_cache(settings):
    settings.READYZ_TOKEN = ""
    health.upstream_cache.clear()
    yield
    health.upstream_cache.clear()


@pytest.fixture
def embedded_tier(settings, upstream):
    """A tier on the embedded server's URL (the fake upstream stands where llama.cpp does)."""
    settings.LLM_EMBEDDED_URL = upstream.base_url
    return make_tier(upstream)


def _checks(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/readyz")
    return response.status_code, response.json()["checks"]["inference"]


def test_readyz_holds_the_embedded_server_back_until_it_is_warmed_up(
    client, staff_user, embedded_tier, upstream, settings
):
    settings.ADS_INDEX_SYNC = True  # this process's ad engine counts as loaded (its own test: test_health)
    status, inference = _checks(client, staff_user)
    assert status == 503
    assert inference["upstreams"][0]["reachable"] is True
    assert inference["upstreams"][0]["warmed_up"] is False

    warmup.warm_up_mark(base_url=upstream.base_url + "/", pid=os.getpid())  # this process: alive
    status, inference = _checks(client, staff_user)
    assert status == 200, inference
    assert inference["cached"] is True  # the probe was cached; the warm-up state is read every time
    assert inference["upstreams"][0]["warmed_up"] is True


def test_a_marker_left_by_a_dead_server_does_not_count(client, staff_user, embedded_tier, upstream):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    warmup.warm_up_mark(base_url=upstream.base_url, pid=dead.pid)
    assert warmup.warm_up_done(base_url=upstream.base_url) is False
    assert client.get("/readyz").status_code == 503


def test_other_servers_need_no_warm_up(client, staff_user, settings, upstream):
    settings.LLM_EMBEDDED_URL = "http://127.0.0.1:1/v1"  # the embedded server is not what the tier uses
    make_tier(upstream)
    status, inference = _checks(client, staff_user)
    assert status == 200
    assert "warmed_up" not in inference["upstreams"][0]


def test_embedded_serve_warms_the_server_up_before_marking_it_ready(settings, upstream, tmp_path):
    """The wrapper starts the server process, waits until it listens, sends one warm-up
    completion under the real system prompt, and only then writes the marker; when the
    server exits the marker goes."""
    settings.LLM_EMBEDDED_URL = upstream.base_url
    release = tmp_path / "release"
    seen_marker_before_warm_up: list[bool] = []

    def route(body):
        seen_marker_before_warm_up.append(warmup.warm_up_done(base_url=upstream.base_url))
        return Script(tokens=["Hi", " there"])

    upstream.route = route
    # The "server" child: a process that lives until told to go (the HTTP side is the fake upstream).
    child = [sys.executable, "-c", f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.05)"]
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(code=warmup.embedded_serve(argv=child, base_url=upstream.base_url, model="m")),
    )
    thread.start()
    try:
        assert upstream.wait_for(lambda: warmup.warm_up_done(base_url=upstream.base_url), timeout=15)
        assert len(upstream.requests) == 1
        body = upstream.requests[0]
        assert body["messages"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
        assert body["messages"][1]["role"] == "user"
        assert body["stream"] is True
        assert seen_marker_before_warm_up == [False]
    finally:
        release.touch()
        thread.join(15)
    assert result == {"code": 0}
    assert not warmup.marker_path(base_url=upstream.base_url).exists()


def test_a_failed_warm_up_stops_the_server_and_marks_nothing(settings, upstream, tmp_path):
    settings.LLM_EMBEDDED_URL = upstream.base_url
    upstream.push(Script(fault="http_500"))
    child = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(Exception, match="500"):
        warmup.embedded_serve(argv=child, base_url=upstream.base_url, model="m")
    assert not warmup.marker_path(base_url=upstream.base_url).exists()


def test_a_server_that_exits_at_start_is_reported(settings, tmp_path):
    settings.LLM_EMBEDDED_URL = "http://127.0.0.1:1/v1"
    with pytest.raises(RuntimeError, match="exited with 3"):
        warmup.embedded_serve(argv=[sys.executable, "-c", "raise SystemExit(3)"], base_url=settings.LLM_EMBEDDED_URL,
                              model="m")


def test_the_web_process_loads_the_ad_engine_when_it_starts(settings, monkeypatch):
    """config/asgi.py calls web_process_started at import: the engine's warm-up starts
    then, in a background thread, before any socket connects."""
    from ads.services import decision

    settings.ADS_INDEX_SYNC = False
    started = threading.Event()
    monkeypatch.setattr(decision, "_engine_loaded", lambda: False)
    monkeypatch.setattr(decision, "ads_warm_up", started.set)
    monkeypatch.setattr(decision, "_warming", False)
    warmup.web_process_started()
    assert started.wait(5)


def test_a_decision_waits_for_the_warm_up_under_way_within_its_budget(settings, monkeypatch):
    from ads.services import decision

    settings.ADS_INDEX_SYNC = False
    loaded = threading.Event()
    go = threading.Event()

    def slow_warm_up():
        go.wait(5)
        loaded.set()

    monkeypatch.setattr(decision, "_engine_loaded", loaded.is_set)
    monkeypatch.setattr(decision, "ads_warm_up", slow_warm_up)
    monkeypatch.setattr(decision, "_warming", False)
    assert decision._engine_ready() is False  # starts the warm-up, does not wait
    threading.Timer(0.05, go.set).start()
    assert decision._engine_ready(wait_s=5) is True
