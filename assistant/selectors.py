from __future__ import annotations

from django.conf import settings


def tier_base_urls() -> list[str]:
    """The distinct inference servers that the model tiers point at."""
    urls = [settings.VLLM_BASE_URL_8B, settings.VLLM_BASE_URL_70B, settings.VLLM_BASE_URL_405B, settings.VLLM_BASE_URL]
    configured = sorted({u for u in urls if u})
    return configured or [settings.LLM_EMBEDDED_URL]
