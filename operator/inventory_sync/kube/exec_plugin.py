"""Running a kubeconfig's exec credential plugin (kube layer): EKS, GKE, AKS/kubelogin, Teleport.

The protocol is client-go's (`client.authentication.k8s.io/v1` and `v1beta1`): the plugin gets
`KUBERNETES_EXEC_INFO` (an ExecCredential whose spec says whether it may prompt, and, with
`provideClusterInfo`, the cluster it is for) and prints an ExecCredential whose status holds a
token or a client certificate and key, optionally with an `expirationTimestamp`. Its stderr is
the user's (prompts, warnings); its stdout is read and never shown, since it holds the secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inventory_sync.errors import KubeConfigError, KubernetesError
from inventory_sync.kube.credentials import Credential

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
SUPPORTED_VERSIONS = (V1, V1BETA1)
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")
#: The cluster extension whose content `provideClusterInfo` passes on as `cluster.config`.
CLUSTER_CONFIG_EXTENSION = "client.authentication.k8s.io/exec"
# A plugin that may not prompt and still runs this long is stuck (a hung SSO refresh): better a
# clear error than a sync that waits forever. Interactive plugins wait for the user.
NON_INTERACTIVE_TIMEOUT = 120.0


@dataclass(frozen=True)
class ExecConfig:
    """A kubeconfig `user.exec` stanza, validated; `command` is already resolved against the
    kubeconfig's directory when it was a relative path."""

    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    install_hint: str | None = None
    provide_cluster_info: bool = False
    interactive_mode: str = "IfAvailable"
    #: The `spec.cluster` handed over with provideClusterInfo (server, CA data, config…).
    cluster_info: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def interactive(config: ExecConfig, *, terminal: bool, origin: str) -> bool:
    """May the plugin prompt? Never: no; IfAvailable: when stdin is a terminal; Always: it
    must be, or the plugin cannot work (client-go's rules)."""
    if config.interactive_mode == "Never":
        return False
    if config.interactive_mode == "Always" and not terminal:
        raise KubeConfigError(
            f"{origin}: exec plugin {config.command!r} needs a terminal (interactiveMode: Always) "
            "but standard input is not one"
        )
    return terminal


async def run_plugin(
    config: ExecConfig,
    *,
    origin: str,
    terminal: bool | None = None,
    give_up_after: float = NON_INTERACTIVE_TIMEOUT,
) -> Credential:
    """Run the plugin once and return what it printed; KubeConfigError for a setup problem
    (not installed, wrong answer), KubernetesError when it ran and failed (retry later)."""
    is_terminal = sys.stdin.isatty() if terminal is None else terminal
    may_prompt = interactive(config, terminal=is_terminal, origin=origin)
    spec: dict[str, Any] = {"interactive": may_prompt}
    if config.provide_cluster_info:
        spec["cluster"] = dict(config.cluster_info)
    environment = dict(os.environ)
    environment.update(config.env)
    environment["KUBERNETES_EXEC_INFO"] = json.dumps(
        {"apiVersion": config.api_version, "kind": "ExecCredential", "spec": spec}
    )
    name = os.path.basename(config.command)
    try:
        process = await asyncio.create_subprocess_exec(
            config.command,
            *config.args,
            # Without a terminal the plugin must not wait for input that never comes.
            stdin=None if may_prompt else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None,  # the user's: prompts and the plugin's own error messages
            env=environment,
        )
    except FileNotFoundError:
        hint = f"; {config.install_hint.strip()}" if config.install_hint else ""
        raise KubeConfigError(f"{origin}: exec plugin {config.command!r} not found{hint}") from None
    except PermissionError:
        raise KubeConfigError(
            f"{origin}: exec plugin {config.command!r} is not executable"
        ) from None
    try:
        async with asyncio.timeout(None if may_prompt else give_up_after):
            stdout, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise KubernetesError(
            f"{origin}: exec plugin {name!r} gave no answer within {give_up_after:.0f}s"
        ) from None
    if process.returncode != 0:
        raise KubernetesError(
            f"{origin}: exec plugin {name!r} failed with exit code {process.returncode} "
            "(its own message is on standard error)"
        )
    return parse_exec_credential(stdout, config=config, origin=origin)


def parse_exec_credential(raw: bytes, *, config: ExecConfig, origin: str) -> Credential:
    """The status of the plugin's ExecCredential; errors say what was wrong, never the value."""
    name = os.path.basename(config.command)
    where = f"{origin}: exec plugin {name!r}"
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KubeConfigError(f"{where} did not print an ExecCredential (not JSON)") from None
    if not isinstance(document, dict) or document.get("kind") != "ExecCredential":
        raise KubeConfigError(f"{where} did not print an ExecCredential")
    if document.get("apiVersion") != config.api_version:
        raise KubeConfigError(
            f"{where} answered with apiVersion {document.get('apiVersion')!r}, but the "
            f"kubeconfig asks for {config.api_version}"
        )
    status = document.get("status")
    if not isinstance(status, dict):
        raise KubeConfigError(f"{where}: the ExecCredential has no status")
    token = _text(status, "token", where)
    cert = _text(status, "clientCertificateData", where)
    key = _text(status, "clientKeyData", where)
    if bool(cert) != bool(key):
        raise KubeConfigError(f"{where}: clientCertificateData and clientKeyData come together")
    if not token and not cert:
        raise KubeConfigError(f"{where} gave neither a token nor a client certificate")
    return Credential(
        token=token,
        client_cert_data=cert,
        client_key_data=key,
        expires_at=_timestamp(status.get("expirationTimestamp"), where),
    )


def _text(status: Mapping[str, Any], key: str, where: str) -> str | None:
    value = status.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise KubeConfigError(f"{where}: status.{key} is not a string")
    return value


def _timestamp(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise KubeConfigError(f"{where}: expirationTimestamp is not RFC 3339") from None
    if parsed.tzinfo is None:
        raise KubeConfigError(f"{where}: expirationTimestamp has no time zone")
    return parsed
