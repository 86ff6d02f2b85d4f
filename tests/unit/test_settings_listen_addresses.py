"""The operator's two ports listen on loopback unless told otherwise; the chart opens them to
the pod's interfaces (the kubelet probes the pod IP, Prometheus scrapes it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inventory_sync.errors import SpecError
from inventory_sync.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HEALTH_ADDRESS", "METRICS_ADDRESS", "HEALTH_PORT"):
        monkeypatch.delenv(f"INVENTORY_SYNC_{name}", raising=False)
    settings = load_settings()
    assert str(settings.health_address) == "127.0.0.1"
    assert str(settings.metrics_address) == "127.0.0.1"
    assert settings.health_url == "http://127.0.0.1:8080/healthz"


def test_environment_sets_the_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVENTORY_SYNC_HEALTH_ADDRESS", "::")
    monkeypatch.setenv("INVENTORY_SYNC_METRICS_ADDRESS", "0.0.0.0")
    monkeypatch.setenv("INVENTORY_SYNC_HEALTH_PORT", "18080")
    settings = load_settings()
    assert settings.health_url == "http://[::]:18080/healthz"
    assert str(settings.metrics_address) == "0.0.0.0"


def test_a_bad_address_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVENTORY_SYNC_METRICS_ADDRESS", "all-interfaces")
    with pytest.raises(SpecError, match="INVENTORY_SYNC_METRICS_ADDRESS"):
        load_settings()


def test_health_port_zero_disables_the_endpoint() -> None:
    assert Settings(health_port=0).health_url is None


def test_chart_opens_both_ports_to_the_pod_interfaces() -> None:
    """The probes reach the pod IP, so a loopback default inside the pod would kill it."""
    values = yaml.safe_load((REPO / "helm/inventory-sync-operator/values.yaml").read_text())
    assert values["operator"]["healthAddress"] == "0.0.0.0"
    assert values["operator"]["metricsAddress"] == "0.0.0.0"
    deployment = (REPO / "manifests/base/deployment.yaml").read_text()
    docs = list(yaml.safe_load_all(deployment))
    env = {
        e["name"]: e.get("value")
        for d in docs
        if d
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["INVENTORY_SYNC_HEALTH_ADDRESS"] == "0.0.0.0"
    assert env["INVENTORY_SYNC_METRICS_ADDRESS"] == "0.0.0.0"
