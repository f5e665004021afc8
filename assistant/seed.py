"""Seed the three Llama 3.1 tiers from the environment (idempotent).

With VLLM_BASE_URL_<SIZE> (or VLLM_BASE_URL) a tier points at vLLM; without, every
tier points at the embedded llama.cpp server and says which model really answers.
Running it again creates missing tiers and re-points a tier when the environment
changes its server; other fields edited in the admin are kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from assistant.models import ModelTier

# Llama 3.1's recommended sampling (its generation_config); vLLM calls the penalty repetition_penalty.
VLLM_SAMPLING = {"temperature": 0.6, "top_p": 0.9, "repetition_penalty": 1.05}
# A 135M model loops without a firm penalty; llama.cpp calls it repeat_penalty.
EMBEDDED_SAMPLING = {"temperature": 0.6, "top_p": 0.9, "repeat_penalty": 1.15, "frequency_penalty": 0.2}


@dataclass(frozen=True)
class TierSpec:
    slug: str
    display_name: str
    description: str
    served_model_name: str
    size_setting: str
    context_length: int
    max_output_tokens: int
    sort_order: int


TIERS = [
    TierSpec("llama-3.1-8b", "Llama 3.1 8B", "Fast everyday answers", "llama-3.1-8b-instruct", "VLLM_BASE_URL_8B",
             32768, 2048, 10),
    TierSpec("llama-3.1-70b", "Llama 3.1 70B", "Stronger reasoning and writing", "llama-3.1-70b-instruct",
             "VLLM_BASE_URL_70B", 65536, 4096, 20),
    TierSpec("llama-3.1-405b", "Llama 3.1 405B", "The largest open model", "llama-3.1-405b-instruct",
             "VLLM_BASE_URL_405B", 65536, 4096, 30),
]


def embedded_served_by() -> str:
    path = settings.LLM_EMBEDDED_MODEL_PATH
    name = Path(path).stem if path else "SmolLM2-135M-Instruct"
    return f"{name} (embedded llama.cpp server, CPU)"


def tier_connection(spec: TierSpec) -> dict:
    """The server fields of a tier as the environment says them."""
    url = getattr(settings, spec.size_setting) or settings.VLLM_BASE_URL
    if url:
        return {
            "base_url": url.rstrip("/"),
            "served_model_name": spec.served_model_name,
            "served_by": "",
            "api_key_env": "VLLM_API_KEY",
            "tokenizer": ModelTier.Tokenizer.VLLM,
            "context_length": spec.context_length,
            "max_output_tokens": spec.max_output_tokens,
            "sampling": dict(VLLM_SAMPLING),
        }
    return {
        "base_url": settings.LLM_EMBEDDED_URL.rstrip("/"),
        "served_model_name": settings.LLM_EMBEDDED_ALIAS,
        "served_by": embedded_served_by(),
        "api_key_env": "",
        "tokenizer": ModelTier.Tokenizer.LLAMA_CPP,
        "context_length": int(os.environ.get("LLM_EMBEDDED_CTX", "4096")),
        "max_output_tokens": 512,
        "sampling": dict(EMBEDDED_SAMPLING),
    }


def seed_demo(*, stdout) -> None:
    for spec in TIERS:
        connection = tier_connection(spec)
        tier = ModelTier.objects.filter(slug=spec.slug).first()
        if tier is None:
            tier = ModelTier.objects.create(
                slug=spec.slug,
                display_name=spec.display_name,
                description=spec.description,
                sort_order=spec.sort_order,
                **connection,
            )
            action = "created"
        elif tier.base_url != connection["base_url"]:
            for field, value in connection.items():
                setattr(tier, field, value)
            tier.save()
            action = "re-pointed"
        else:
            action = "kept"
        stdout.write(f"Model tier {tier.slug}: {action}, {tier.base_url} model {tier.served_model_name}")
