"""A tier's `api_key_env` may only name variables with an allowed prefix (issue 9): a
staff editor cannot point a tier at STRIPE_SECRET_KEY and have it sent, as a bearer
token, to a server of their choosing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from assistant.inference import endpoint_for_tier
from assistant.models import ModelTier

pytestmark = pytest.mark.django_db


def tier(**fields) -> ModelTier:
    defaults = {"slug": "llama-8b", "display_name": "Llama 3.1 8B", "served_model_name": "m",
                "base_url": "http://gpu.example:8000/v1"}
    return ModelTier(**{**defaults, **fields})


@pytest.mark.parametrize("name", ["VLLM_API_KEY", "LHAMA_TIER_70B_KEY", "INFERENCE_TOKEN", ""])
def test_allowed_names_validate(name):
    tier(api_key_env=name).full_clean()


@pytest.mark.parametrize(
    "name", ["STRIPE_SECRET_KEY", "SECRET_KEY", "DATABASE_URL", "vllm_api_key", "VLLM", "VLLM_API KEY", "XVLLM_KEY"]
)
def test_other_names_are_refused_by_the_model(name):
    with pytest.raises(ValidationError) as caught:
        tier(api_key_env=name).full_clean()
    assert list(caught.value.message_dict) == ["api_key_env"]


def test_the_admin_refuses_them_too(client, staff_user):
    client.force_login(staff_user)
    form = {
        "display_name": "Llama 3.1 8B", "slug": "llama-8b", "description": "", "is_active": "on",
        "sort_order": "10", "base_url": "http://attacker.example/v1", "served_model_name": "m", "served_by": "",
        "api_key_env": "STRIPE_SECRET_KEY", "tokenizer": "estimate", "context_length": "4096",
        "max_output_tokens": "256", "sampling": "{}",
    }
    response = client.post(reverse("admin:assistant_modeltier_add"), form)
    assert response.status_code == 200
    assert "api_key_env" in response.context["adminform"].form.errors
    assert not ModelTier.objects.exists()


def test_the_inference_client_never_reads_a_refused_name(monkeypatch, caplog):
    """A row written around the model's validation (a raw update, an old row) still cannot send the secret."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_secret")
    monkeypatch.setenv("VLLM_API_KEY", "vllm-token")
    assert endpoint_for_tier(tier(api_key_env="VLLM_API_KEY")).headers() == {"Authorization": "Bearer vllm-token"}
    refused = endpoint_for_tier(tier(api_key_env="STRIPE_SECRET_KEY"))
    assert (refused.api_key, refused.headers()) == ("", {})
    assert "may not read" in caplog.text
