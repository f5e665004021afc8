"""Production mode, in a subprocess with a production environment: Django's deployment
checks pass with no warning, and the security headers are what docs/security.md says."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Everything production requires, nothing inherited that could change the result."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("SECURE_", "CSRF_", "READYZ_", "STRIPE_", "VLLM_", "LHAMA_"))
            and k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL",
                          "DJANGO_SETTINGS_MODULE"}}
    keep.update(
        LHAMA_PRODUCTION="1",
        LHAMA_VAR_DIR=str(tmp_path / "var"),
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="lhama.example",
        SITE_URL="https://lhama.example",
        STRIPE_SECRET_KEY="sk_test_" + secrets.token_hex(12),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    keep.update(overrides)
    return keep


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    program = "import django; django.setup()\n" + code
    return subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


CHECK_DEPLOY = """
from django.conf import settings
from django.core.management import call_command
call_command("check", "--deploy", fail_level="WARNING")
print("silenced:", settings.SILENCED_SYSTEM_CHECKS)
"""


def test_check_deploy_passes_in_production_with_no_warning(tmp_path):
    result = run_python(CHECK_DEPLOY, production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "silenced: []" in result.stdout


def test_check_deploy_does_fail_on_a_warning(tmp_path):
    # The same command with a guessable key: the deployment checks are live, not skipped.
    result = run_python(CHECK_DEPLOY, production_env(tmp_path, SECRET_KEY="x" * 50))
    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_without_the_ssl_redirect_only_that_deliberate_warning_is_silenced(tmp_path):
    result = run_python(CHECK_DEPLOY, production_env(tmp_path, SECURE_SSL_REDIRECT="0"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "silenced: ['security.W008']" in result.stdout


HEADERS = """
import json
from django.test import Client
response = Client().get("/healthz", HTTP_HOST="lhama.example", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({"status": response.status_code, "csp": response["Content-Security-Policy"],
                  "referrer": response["Referrer-Policy"]}))
"""


def csp_directives(header: str) -> dict[str, str]:
    return {part.split()[0]: " ".join(part.split()[1:]) for part in (p.strip() for p in header.split(";")) if part}


def test_production_headers_connect_only_to_self_and_send_no_referrer_outside(tmp_path):
    result = run_python(HEADERS, production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    headers = json.loads(result.stdout.strip().splitlines()[-1])
    assert headers["status"] == 200
    assert csp_directives(headers["csp"])["connect-src"] == "'self'"
    assert headers["referrer"] == "same-origin"


@pytest.mark.django_db
def test_development_headers_are_the_same(client):
    response = client.get("/")
    assert response.status_code == 200
    directives = csp_directives(response["Content-Security-Policy"])
    assert directives["connect-src"] == "'self'"
    assert "ws:" not in response["Content-Security-Policy"] and "wss:" not in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
