"""`make bench` / `python -m bench [name ...]`: run every benchmark module in bench/
(each exposes `main() -> dict` and writes its JSON to bench/results/)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Modules that are parts of a benchmark, not benchmarks (the relay's own processes).
HELPERS = frozenset({"fake_upstream", "paced_upstream", "load_client"})


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(HERE)])
                           if not m.name.startswith("_") and m.name not in HELPERS)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"== bench.{name}", flush=True)
        started = time.monotonic()
        module.main()
        print(f"   ({time.monotonic() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
