"""deploy/grafana/webinar.json: a dashboard Grafana imports, whose every query names series the
server exposes (so a renamed metric cannot leave an empty panel behind)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.metrics_support import samples
from tests.unit.test_metrics import FakePipes, Hooks
from webinar.http.metrics import Metrics, Sources

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "webinar.json"
SERIES = re.compile(r"\b((?:webinar|process|python)_[a-z0-9_]+)\b")


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def expressions() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def exposed() -> set[str]:
    """Every sample name one process exposes (a worker's: with media pipes and webhooks,
    after an error reply)."""
    metrics = Metrics()
    metrics.sources = Sources(webhooks=lambda: Hooks(), pipes=lambda: FakePipes())
    metrics.count_error("bad-json")
    return {name for name, _labels in samples(metrics.render())}


def test_every_query_names_a_series_the_server_exposes() -> None:
    names = exposed()
    used = {m for expr in expressions() for m in SERIES.findall(expr)}
    assert used, "no query names a series"
    assert used <= names, used - names


def test_the_panels_an_operator_needs_are_there() -> None:
    exprs = "\n".join(expressions())
    for needed in (
        "rate(webinar_rtp_packets_forwarded_total",
        "rate(webinar_rtp_packets_received_total",
        "rate(webinar_rtp_bytes_forwarded_total",
        "webinar_participants",
        "histogram_quantile(0.5, sum by (le) (rate(webinar_join_seconds_bucket",
        "histogram_quantile(0.95, sum by (le) (rate(webinar_join_seconds_bucket",
        "rate(process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ):
        assert needed in exprs, needed


def test_the_dashboard_imports() -> None:
    data = dashboard()
    assert data["uid"] == "webinar-server" and data["title"]
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "webinar_build_info" in variables["job"]["definition"]
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in data["panels"]:
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["x"] + box["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert '{job=~"$job"}' in target["expr"], target["expr"]
            assert target["datasource"]["uid"] == "${datasource}"
