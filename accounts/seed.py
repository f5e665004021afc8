from __future__ import annotations

import os
import secrets

from django.conf import settings

from accounts.models import User

DEMO_STAFF_EMAIL = "admin@lhama.localhost"


def _demo_password() -> str:
    """DEMO_ADMIN_PASSWORD, or one generated on first run and kept in var/ (never a fixed default)."""
    if os.environ.get("DEMO_ADMIN_PASSWORD"):
        return os.environ["DEMO_ADMIN_PASSWORD"]
    path = settings.VAR_DIR / "demo-admin-password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


def seed_demo(*, stdout) -> None:
    password = _demo_password()
    user = User.objects.filter(email=DEMO_STAFF_EMAIL).first()
    if user is None:
        user = User.objects.create_superuser(DEMO_STAFF_EMAIL, password, display_name="Lhama staff", is_adult=True)
    elif not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    stdout.write(f"Staff user: {DEMO_STAFF_EMAIL}  password: {password}")
