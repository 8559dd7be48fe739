"""The Prometheus alert rules under ``deploy/`` use only metrics the runtime exports.

``deploy/prometheus/vmcp-alerts.yaml`` is checked for syntax by ``promtool check rules``;
this test checks what promtool cannot know: that every ``vmcp_*`` series an expression
reads (and every label it matches on) exists in :mod:`vmcp_actors.metrics.registry`, so a
renamed metric cannot leave an alert silently matching nothing.  A missing file fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.project import DEPLOY_DIR
from vmcp_actors.metrics.registry import EVENT_METRICS, METRIC_NAMES, exposed_names
from vmcp_actors.metrics.state import STATE_METRICS

RULES_FILE = DEPLOY_DIR / "prometheus" / "vmcp-alerts.yaml"
_SELECTOR = re.compile(r"\b(vmcp_[a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")

#: The two alerts the README shows, checked here like the file's.
README_EXAMPLES = (
    "vmcp_backend_routable == 0",
    'rate(vmcp_status_writes_total{outcome="failed"}[5m]) > 0',
)


def _family(sample: str) -> str:
    """The family a sample name belongs to (``x_bucket`` -> ``x``, ``x_created`` -> ``x_total``)."""
    if sample in METRIC_NAMES:
        return sample
    for suffix in ("_bucket", "_sum", "_count"):
        if sample.endswith(suffix) and sample.removesuffix(suffix) in METRIC_NAMES:
            return sample.removesuffix(suffix)
    return sample.removesuffix("_created") + "_total"


def problems(expr: str) -> list[str]:
    """What in ``expr`` reads a series or a label the runtime does not export."""
    found: list[str] = []
    labels_of = {name: set(spec[2]) for name, spec in {**EVENT_METRICS, **STATE_METRICS}.items()}
    for match in _SELECTOR.finditer(expr):
        name, selector = match.group(1), match.group(2) or ""
        if name not in exposed_names():
            found.append(f"unknown metric {name}")
            continue
        family = _family(name)
        allowed = labels_of[family] | ({"le"} if name.endswith("_bucket") else set())
        found.extend(f"{name} has no label {label!r}" for label in _MATCHER.findall(selector) if label not in allowed)
    return found


def _rules(document: Any) -> list[dict[str, Any]]:
    assert isinstance(document, dict), "a rules file is a mapping"
    assert isinstance(document.get("groups"), list), "a rules file has groups"
    rules: list[dict[str, Any]] = []
    for group in document["groups"]:
        assert isinstance(group, dict), f"a group is a mapping: {group!r}"
        assert group.get("name"), f"a group without a name: {group!r}"
        assert isinstance(group.get("rules"), list), f"group {group['name']} has no rules"
        assert group["rules"], f"group {group['name']} has no rules"
        rules.extend(group["rules"])
    return rules


def test_the_checker_sees_unknown_metrics_and_labels() -> None:
    assert problems('vmcp_backend_routable{backend="a"} == 0') == []
    assert problems('histogram_quantile(0.99, rate(vmcp_backend_probe_duration_seconds_bucket{le="1"}[5m]))') == []
    assert problems("vmcp_backend_up == 0") == ["unknown metric vmcp_backend_up"]
    assert problems('vmcp_status_pending{sink="file"} == 1') == ["vmcp_status_pending has no label 'sink'"]
    assert problems("up == 0") == []  # not ours to check


@pytest.mark.parametrize("expr", README_EXAMPLES)
def test_the_readme_examples_use_only_exported_metrics(expr: str) -> None:
    assert problems(expr) == []


def test_every_alert_in_the_deployed_rules_reads_exported_metrics() -> None:
    assert RULES_FILE.is_file(), f"{RULES_FILE.relative_to(DEPLOY_DIR.parent)} is missing"
    rules = _rules(yaml.safe_load(Path(RULES_FILE).read_text(encoding="utf-8")))
    alerts = [rule for rule in rules if "alert" in rule]
    assert alerts, "the rules file defines no alert"
    read: set[str] = set()
    for rule in rules:
        expr = str(rule.get("expr", ""))
        assert expr, f"rule {rule.get('alert') or rule.get('record')} has no expr"
        assert problems(expr) == [], f"rule {rule.get('alert') or rule.get('record')}: {problems(expr)}"
        read.update(_family(m.group(1)) for m in _SELECTOR.finditer(expr))
    assert "vmcp_backend_routable" in read, "no alert on a backend that is down"
    assert "vmcp_status_writes_total" in read, "no alert on failing status writes"
