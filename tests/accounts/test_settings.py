"""Settings come from the environment; production refuses to start without its secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _django_check(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "STRIPE_SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL", "DEBUG", "LHAMA_PRODUCTION"}}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup(); from django.conf import settings; print(settings.DEBUG, settings.DATABASES['default']['ENGINE'], settings.CHANNEL_LAYERS['default']['BACKEND'], settings.CELERY_BROKER_URL.split(':')[0])"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_embedded_defaults_with_nothing_set(tmp_path):
    result = _django_check({"LHAMA_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "django.db.backends.sqlite3", "channels.layers.InMemoryChannelLayer", "filesystem"]


def test_postgres_and_redis_from_the_environment(tmp_path):
    result = _django_check({"LHAMA_VAR_DIR": str(tmp_path), "DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/3"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "django.db.backends.postgresql", "config.channel_layers.BoundedRedisChannelLayer", "redis"]


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _django_check({"LHAMA_VAR_DIR": str(tmp_path), "LHAMA_PRODUCTION": "1", "ALLOWED_HOSTS": "lhama.example", "STRIPE_SECRET_KEY": "sk_test_x"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_stripe_or_hosts(tmp_path):
    base = {"LHAMA_VAR_DIR": str(tmp_path), "LHAMA_PRODUCTION": "1", "SECRET_KEY": "x" * 50, "SITE_URL": "https://lhama.example"}
    no_stripe = _django_check({**base, "ALLOWED_HOSTS": "lhama.example"})
    assert no_stripe.returncode != 0 and "STRIPE_SECRET_KEY must be set" in no_stripe.stderr
    no_hosts = _django_check({**base, "STRIPE_SECRET_KEY": "sk_test_x"})
    assert no_hosts.returncode != 0 and "ALLOWED_HOSTS must be set" in no_hosts.stderr


def test_production_refuses_to_start_without_its_public_address(tmp_path):
    # SITE_URL is the origin chat sockets must come from (and Stripe's return address):
    # the development default would refuse every socket from the real site.
    result = _django_check({"LHAMA_VAR_DIR": str(tmp_path), "LHAMA_PRODUCTION": "1", "SECRET_KEY": "x" * 50,
                            "ALLOWED_HOSTS": "lhama.example", "STRIPE_SECRET_KEY": "sk_test_x"})
    assert result.returncode != 0
    assert "SITE_URL must be set" in result.stderr


def test_production_with_everything_set_is_secure(tmp_path):
    env = {"LHAMA_VAR_DIR": str(tmp_path), "LHAMA_PRODUCTION": "1", "SECRET_KEY": "x" * 50, "STRIPE_SECRET_KEY": "sk_test_x", "ALLOWED_HOSTS": "lhama.example",
           "SITE_URL": "https://lhama.example"}
    code = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','config.settings'); django.setup(); from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0, bool(s.SECURE_CSP))"
    full = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SITE_URL"}}
    full.update(env)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "True", "True"]


def test_platform_directory_does_not_shadow_the_standard_library():
    result = subprocess.run([sys.executable, "-c", "import platform; print(platform.system())"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Linux"
    assert not (ROOT / "platform" / "__init__.py").exists()
