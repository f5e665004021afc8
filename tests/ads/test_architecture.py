"""The shape of the ads app: services by sub-domain with no re-export layer, no import
cycle between its modules (a service reaches a task only through a function-level
import), and its ADS_* settings declared once, in config/settings.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADS = ROOT / "ads"
MAX_SERVICE_LINES = 400


def _modules() -> dict[str, Path]:
    modules = {}
    for path in ADS.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _module_level_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The ads modules `path` imports when it is loaded (imports inside functions excluded)."""
    names: list[str] = []
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from ads.services import review` names a module; `from ads.models import Campaign` does not
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    found = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name.startswith("ads"):
            found.add(name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_import_cycle_between_modules_of_ads():
    modules = _modules()
    graph = {
        name: {m for m in _module_level_imports(path, modules) if m != name and not name.startswith(m + ".")}
        for name, path in modules.items()
    }
    assert "ads.services.review" in graph["ads.services.campaigns"]  # the scan sees `from ads.services...`
    assert _cycles(graph) == []


def test_services_are_modules_by_sub_domain_without_a_re_export_layer():
    services = ADS / "services"
    assert (services / "__init__.py").read_text() == ""
    assert sorted(p.name for p in services.glob("*.py")) == [
        "__init__.py",
        "campaigns.py",
        "decision.py",
        "delivery.py",
        "funding.py",
        "importing.py",
        "reporting.py",
        "review.py",
    ]
    too_long = {p.name: n for p in services.glob("*.py") if (n := len(p.read_text().splitlines())) > MAX_SERVICE_LINES}
    assert too_long == {}


def test_ads_settings_are_declared_once_and_read_without_a_second_default():
    declared = set(re.findall(r"^(ADS_[A-Z0-9_]+) = ", (ROOT / "config" / "settings.py").read_text(), re.M))
    sources = {path: path.read_text() for path in ADS.rglob("*.py") if "migrations" not in path.parts}
    read = {name for text in sources.values() for name in re.findall(r"\bsettings\.(ADS_[A-Z0-9_]+)", text)}
    second_defaults = sorted(
        f"{path.relative_to(ROOT)}: {match}"
        for path, text in sources.items()
        for match in re.findall(r"getattr\(\s*settings\s*,\s*[\"']ADS_[A-Z0-9_]+[\"']\s*,[^)]*\)", text)
    )
    assert read <= declared
    assert "ADS_INDEX_SYNC" in read
    assert second_defaults == []
