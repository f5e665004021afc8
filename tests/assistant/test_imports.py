"""The modules of assistant/ import each other one way: no cycle, except a task and the
code that queues it, through imports inside functions (HackSoft's task <-> service)."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "assistant"
TASKS = "assistant.tasks"


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(imported assistant module, inside a function?) for every import in the file, leaving
    out `if TYPE_CHECKING:` blocks (annotations only, never run)."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module, in_function))
                found.extend((f"{child.module}.{alias.name}", in_function) for alias in child.names)
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(ast.parse(path.read_text()), False)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {f"assistant.{p.stem}" for p in APP.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module in modules:
        for target, in_function in imports_of(APP / f"{module.split('.')[1]}.py"):
            if target not in modules or target == module:
                continue
            if in_function and TASKS in (module, target):
                continue  # the one cycle allowed: a task and who queues it, inside functions
            graph[module].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_no_import_cycle_between_the_modules_of_assistant():
    assert find_cycle(import_graph()) is None


def test_the_check_finds_a_cycle_when_there_is_one():
    graph = import_graph()
    graph["assistant.events"].add("assistant.runs")  # runs imports events
    assert find_cycle(graph) is not None
