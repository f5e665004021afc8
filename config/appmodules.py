"""Find an optional module (``exports``, ``seed``) in every installed app, so that
account-wide features — data export, deletion, demo data — need not know the apps."""

from __future__ import annotations

import importlib
from types import ModuleType

from django.apps import apps


def app_modules(name: str) -> list[tuple[str, ModuleType]]:
    """(app label, module) for every installed app that has ``<app>.<name>``."""
    found = []
    for config in apps.get_app_configs():
        dotted = f"{config.name}.{name}"
        try:
            module = importlib.import_module(dotted)
        except ModuleNotFoundError as exc:
            if exc.name != dotted:
                raise
            continue
        found.append((config.label, module))
    return found
