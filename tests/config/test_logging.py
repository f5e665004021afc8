"""Logs: one id follows a chat message from the socket through the run and the upstream
request (x-request-id) to the error frame, and every log line of the run carries it; JSON
lines in production, readable lines otherwise; HTTP requests carry nginx's X-Request-ID."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from bench.fake_upstream import Script
from tests.assistant.conftest import chat_requests, login_session, open_socket

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_runs_drained")
async def test_a_failed_runs_log_line_carries_the_id_of_its_error_frame(upstream, tier, member):
    from asgiref.sync import sync_to_async

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("assistant").addHandler(handler)

    upstream.default = Script(tokens=["a", "b", "c", "d"], fault="drop_mid", fault_after=2)
    socket = await open_socket(await sync_to_async(login_session)(member))
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": "Hello", "tier": "llama-3.1-8b"})
    try:
        frames = await socket.until("error")
    finally:
        logging.getLogger("assistant").removeHandler(handler)
    await socket.close()
    error = frames[-1]
    run_id = error["run_id"]
    assert run_id and run_id == frames[0]["run_id"]
    failed = [r for r in records if r.name == "assistant.generation" and "run ended with" in r.getMessage()]
    assert len(failed) == 1, [(r.name, r.getMessage()) for r in records]
    assert failed[0].request_id == run_id
    assert error["code"] in failed[0].getMessage()
    # The same id went to the model server with the request.
    chat = next(r for r in upstream.records if r.body in chat_requests(upstream))
    assert chat.headers["x-request-id"] == run_id


def test_production_logs_are_json_lines_with_the_id():
    env = {
        **os.environ, "LHAMA_PRODUCTION": "1", "SECRET_KEY": "x" * 50, "STRIPE_SECRET_KEY": "sk_test_x",
        "ALLOWED_HOSTS": "lhama.example", "SITE_URL": "https://lhama.example", "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    code = (
        "import django, logging; django.setup(); from config.logs import request_id_set; "
        "request_id_set('run-123'); logging.getLogger('assistant.generation').warning('run ended with %s', 'upstream_error')"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "run ended with upstream_error"
    assert (line["level"], line["logger"], line["request_id"]) == ("WARNING", "assistant.generation", "run-123")
    assert "time" in line and "pid" in line


def test_development_logs_are_readable_lines_with_the_id(capsys):
    from config.logs import logging_config, request_id_reset, request_id_set

    formatter = logging.Formatter(logging_config(production=False, level="INFO")["formatters"]["lhama"]["format"])
    token = request_id_set("run-7")
    try:
        record = logging.getLogger("x").makeRecord("x", logging.WARNING, __file__, 1, "hello", (), None)
    finally:
        request_id_reset(token)
    assert formatter.format(record).endswith("WARNING x [run-7]: hello")


@pytest.mark.django_db
def test_an_http_request_carries_the_proxys_request_id_or_a_new_one():
    echoed = Client().get("/healthz", HTTP_X_REQUEST_ID="0123456789abcdef0123456789abcdef")
    assert echoed["X-Request-ID"] == "0123456789abcdef0123456789abcdef"
    replaced = Client().get("/healthz", HTTP_X_REQUEST_ID="<script>")
    assert replaced["X-Request-ID"] != "<script>" and len(replaced["X-Request-ID"]) == 32
