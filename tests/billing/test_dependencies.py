"""Dependencies point one way: assistant uses ads and billing, ads uses billing, billing uses neither;
the apps above billing use it through one module, billing.public."""

from __future__ import annotations

import ast
from pathlib import Path

from django.apps import apps
from django.conf import settings

BILLING = Path(__file__).resolve().parents[2] / "billing"
ABOVE_BILLING = ("assistant", "ads")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_billing_code_imports_neither_assistant_nor_ads():
    offenders = sorted(
        f"{path.relative_to(BILLING.parent)}: {name}"
        for path in BILLING.rglob("*.py")
        if "migrations" not in path.parts  # history: the M2M to assistant.ModelTier was there once
        for name in _imported_modules(path)
        if name.split(".")[0] in ABOVE_BILLING
    )
    assert offenders == []


def test_billing_tables_point_at_no_table_of_assistant_or_ads():
    allowed = {"billing", apps.get_model(settings.AUTH_USER_MODEL)._meta.app_label}
    relations = sorted(
        f"{model.__name__}.{field.name} -> {field.related_model._meta.label}"
        for model in apps.get_app_config("billing").get_models()
        for field in model._meta.get_fields()
        if field.is_relation and field.related_model is not None and not field.auto_created
        and field.related_model._meta.app_label not in allowed
    )
    assert relations == []


def test_assistant_and_ads_reach_billing_only_through_billing_public():
    root = BILLING.parent
    offenders = sorted(
        f"{path.relative_to(root)}: {name}"
        for app in ABOVE_BILLING
        for path in (root / app).rglob("*.py")
        if "migrations" not in path.parts
        for name in _imported_modules(path)
        if name.split(".")[0] == "billing" and name != "billing.public"
    )
    assert offenders == []


def _module_level_billing_imports(path: Path) -> set[str]:
    """billing modules imported at module level (function-level imports, the task <-> service pattern, excluded)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("billing.")}


def test_no_import_cycle_between_billing_modules():
    modules = {
        ".".join(path.relative_to(BILLING.parent).with_suffix("").parts): path
        for path in BILLING.rglob("*.py")
        if "migrations" not in path.parts and path.name != "__init__.py"
    }
    graph = {name: _module_level_billing_imports(path) & modules.keys() for name, path in modules.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    assert sorted(name for name in graph if reaches(name, name, set())) == []
