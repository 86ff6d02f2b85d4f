"""Doctor's Secret check: every Secret a SyncSchedule or Fabric names exists and has the keys it needs.

Only key names are looked at, and only whether a value is non-empty (the operator treats an
empty value as missing); a value is never decoded, printed or kept, except a Fabric's
kubeconfig, which is parsed in memory to say whether the operator would accept it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from inventory_sync.doctoring.findings import Finding, failed, passed, warned
from inventory_sync.doctoring.scope import FABRIC, SYNC_SCHEDULE, Resource, Scope
from inventory_sync.errors import InventorySyncError, KubeForbidden, SpecError, public_message
from inventory_sync.kube import KubeClient, KubeConnection, resource_path
from inventory_sync.models import FabricSpec, SyncScheduleSpec

CHECK = "secrets"


@dataclass
class _Needs:
    """What one resource needs of one Secret: keys, and who needs each (for the message)."""

    keys: dict[str, list[str]] = field(default_factory=dict)
    #: A Fabric's kubeconfig: (key, context) to parse.
    kubeconfig: tuple[str, str | None] | None = None

    def add(self, key: str, user: str) -> None:
        self.keys.setdefault(key, []).append(user)


class _Secrets:
    """Secrets read once each, as doctor's identity; keys only, values dropped."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._bodies: dict[tuple[str, str], dict[str, Any] | None] = {}

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        key = (namespace, name)
        if key not in self._bodies:
            self._bodies[key] = await self._client.get(
                resource_path("", "v1", "secrets", namespace, name)
            )
        return self._bodies[key]


async def check(client: KubeClient, scope: Scope) -> list[Finding]:
    secrets = _Secrets(client)
    findings: list[Finding] = []
    healthy = 0
    for resource in [*scope.of_kind(SYNC_SCHEDULE), *scope.of_kind(FABRIC)]:
        try:
            needs = _needs(resource)
        except SpecError as error:
            findings.append(warned(CHECK, resource.label, f"Secrets not checked: the spec is "
                                   f"invalid ({error})"))  # fmt: skip
            continue
        problems: list[str] = []
        for name, need in needs.items():
            try:
                problems += await _judge(secrets, resource.namespace, name, need)
            except KubeForbidden as error:
                findings.append(warned(CHECK, resource.label, f"cannot read Secret "
                                       f"{resource.namespace}/{name}: {public_message(error)}"))  # fmt: skip
            except InventorySyncError as error:
                problems.append(f"Secret {resource.namespace}/{name}: {public_message(error)}")
        if problems:
            findings.append(failed(CHECK, resource.label, "; ".join(problems)))
        elif needs:
            healthy += 1
    if not findings:
        text = (
            f"{healthy} resource(s) {scope.where}: every Secret and key they name is present"
            if healthy
            else f"no resource names a Secret {scope.where}"
        )
        findings.append(passed(CHECK, "references", text))
    elif healthy:
        findings.append(passed(CHECK, "references", f"{healthy} other resource(s): every Secret "
                               "and key present"))  # fmt: skip
    return findings


def _needs(resource: Resource) -> dict[str, _Needs]:
    """Secret name → what this resource needs of it (SpecError for an invalid spec)."""
    spec = resource.parsed()
    needs: dict[str, _Needs] = {}
    if isinstance(spec, SyncScheduleSpec):
        for source in spec.sources:
            ref = source.secret_ref
            for key in ref.required_keys:
                needs.setdefault(ref.name, _Needs()).add(key, f"source {source.name}")
    elif isinstance(spec, FabricSpec) and spec.kubeconfig_secret_ref is not None:
        kubeconfig = spec.kubeconfig_secret_ref
        need = needs.setdefault(kubeconfig.name, _Needs())
        need.add(kubeconfig.key, "spec.kubeconfigSecretRef")
        need.kubeconfig = (kubeconfig.key, spec.context)
    return needs


async def _judge(secrets: _Secrets, namespace: str, name: str, need: _Needs) -> list[str]:
    """What is wrong with one Secret for one resource, in words naming keys, never values."""
    body = await secrets.get(namespace, name)
    users = sorted({user for users in need.keys.values() for user in users})
    if body is None:
        keys = ", ".join(repr(k) for k in need.keys)
        return [f"Secret {namespace}/{name} not found (needed by {', '.join(users)} for "
                f"key(s) {keys})"]  # fmt: skip
    data = body.get("data") or {}
    problems = []
    for key, who in need.keys.items():
        if not data.get(key):
            state = "is empty" if key in data else "is missing"
            problems.append(f"Secret {namespace}/{name}: key {key!r} {state} (needed by "
                            f"{', '.join(who)})")  # fmt: skip
    if not problems and need.kubeconfig is not None:
        key, context = need.kubeconfig
        problem = _kubeconfig_problem(str(data[key]), context)
        if problem:
            problems.append(f"Secret {namespace}/{name} key {key!r}: {problem}")
    return problems


def _kubeconfig_problem(encoded: str, context: str | None) -> str | None:
    """Why the operator would refuse this kubeconfig (the rules for kubeconfigs from Secrets:
    embedded credentials only, no exec plugins), or None."""
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return "the value is not base64 of UTF-8 text"
    try:
        KubeConnection.from_kubeconfig_text(text, context)
    except InventorySyncError as error:
        return f"the operator would refuse this kubeconfig: {public_message(error)}"
    return None
