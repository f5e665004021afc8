"""The Grafana dashboard (platform/grafana/lhama.json) and the alerting rules
(platform/prometheus/alerts.yml) only query metrics that /metrics exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

ROOT = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\blhama_[a-z_]+")
SUFFIXES = re.compile(r"(_total|_bucket|_count|_sum|_created)+$")


@pytest.fixture
def exported(transactional_db) -> set[str]:
    """Every sample name /metrics can produce (metrics with labels export nothing until they
    have a child, so their families are read from the definitions too)."""
    import ads.metrics
    import assistant.metrics
    import billing.metrics
    from config import metrics as config_metrics

    text = generate_latest(config_metrics._registry()).decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    # A family read from rows has no sample while its table is empty: its TYPE line counts.
    for family in re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M):
        names.update(f"{family[0]}{suffix}" for suffix in ("", "_total"))
    for module in (assistant.metrics, ads.metrics, billing.metrics, config_metrics):
        for value in vars(module).values():
            describe = getattr(value, "describe", None)
            if callable(describe) and hasattr(value, "_name"):
                for family in describe():
                    names.update(f"{family.name}{suffix}" for suffix in ("", "_total", "_bucket", "_count", "_sum"))
    return names


def expressions() -> list[str]:
    dashboard = json.loads((ROOT / "platform" / "grafana" / "lhama.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((ROOT / "platform" / "prometheus" / "alerts.yml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    return exprs


def test_every_dashboard_and_alert_expression_queries_an_exported_metric(exported):
    queried = {name for expr in expressions() for name in METRIC.findall(expr)}
    assert queried, "no expression found"
    assert queried - exported == set()


def test_the_dashboard_has_a_panel_for_every_metric_family(exported):
    queried = {name for expr in expressions() for name in METRIC.findall(expr)}
    families = {SUFFIXES.sub("", n) for n in exported if n.startswith("lhama_")}
    bases = {SUFFIXES.sub("", n) for n in queried}
    assert families - bases == set()
