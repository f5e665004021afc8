"""API keys: a person's credentials for the OpenAI-compatible API (docs/api.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """One API key. The secret is shown once, at creation; only its hash is kept.

    The key a client sends is `<prefix>_<secret>`: the prefix ("lhm_" and 8 characters)
    finds the row, the secret is compared with the stored hash in constant time.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="Shown in lists; finds the key.")
    secret_hash = models.CharField(max_length=128, help_text="sha256$<hex> of the secret (never the secret).")
    tier_slugs = models.JSONField(
        default=list, blank=True, help_text="Model tiers this key may use; empty: all the plan unlocks."
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Updated at most once a minute.")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="apikey_user_created")]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def status(self) -> str:
        if self.is_revoked:
            return "revoked"
        if self.is_expired():
            return "expired"
        return "active"
