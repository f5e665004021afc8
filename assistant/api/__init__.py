"""Lhama's OpenAI-compatible HTTP API (/api/v1/) and the API keys that open it (docs/api.md)."""
