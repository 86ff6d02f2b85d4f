"""Kubeconfigs as users have them, against the real API server: an exec plugin (a script that
counts its runs and expires its token), proxies (CONNECT and SOCKS5) with a tls-server-name
override, impersonation as the API server sees it, kopf's login session, and the one message a
Fabric run gives when the cluster cannot be reached."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from localcluster import ClusterInfo, issue_client_certificate, write_pki

from inventory_sync.errors import KubeUnavailable
from inventory_sync.kube import KubeClient, KubeConnection
from inventory_sync.kube.sessions import KopfLogin, open_session
from inventory_sync.models import GROUP, VERSION, parse_fabric_spec
from inventory_sync.reconciling.due import REQUESTED_AT
from inventory_sync.results import SourceState
from inventory_sync.store.runs import ResourceIdentity
from inventory_sync.syncing.fabric import NOT_ATTEMPTED, run_fabric_sync

from ..proxies import ConnectProxy, Socks5Proxy, serving

pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[2]
V1 = "client.authentication.k8s.io/v1"
REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"

PLUGIN = """\
#!{python}
# An exec credential plugin for tests: counts its runs, records what it was given, and answers
# as PLUGIN_MODE says (expiring: a token valid PLUGIN_TTL seconds; revoked-first: a bad token
# on the first run; cert: a client certificate).
import datetime, json, os, pathlib, sys
state = pathlib.Path(os.environ["PLUGIN_STATE"])
runs_file = state / "runs"
runs = int(runs_file.read_text()) + 1 if runs_file.exists() else 1
runs_file.write_text(str(runs))
(state / f"info-{{runs}}.json").write_text(os.environ.get("KUBERNETES_EXEC_INFO", ""))
(state / f"stdin-{{runs}}").write_text(repr(sys.stdin.read()))
mode = os.environ["PLUGIN_MODE"]
status = {{}}
if mode == "cert":
    status["clientCertificateData"] = (state / "cert.pem").read_text()
    status["clientKeyData"] = (state / "key.pem").read_text()
elif mode == "revoked-first" and runs == 1:
    status["token"] = "revoked-" + str(runs)
else:
    status["token"] = (state / "token").read_text().strip()
if mode == "expiring":
    ttl = datetime.timedelta(seconds=int(os.environ["PLUGIN_TTL"]))
    when = datetime.datetime.now(datetime.timezone.utc) + ttl
    status["expirationTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({{"apiVersion": "{version}", "kind": "ExecCredential", "status": status}}))
"""


def ca_data(info: ClusterInfo) -> str:
    return base64.b64encode(Path(info.ca_path).read_bytes()).decode()


def kubeconfig(
    info: ClusterInfo, user: dict[str, Any], *, server: str | None = None, **cluster: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": server or info.server,
                    "certificate-authority-data": ca_data(info),
                    **cluster,
                },
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "u"}}],
        "current-context": "local",
    }


def plugin_user(tmp_path: Path, info: ClusterInfo, mode: str, **env: str) -> dict[str, Any]:
    """A kubeconfig user whose exec plugin is the script above, in mode `mode`."""
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN.format(python=sys.executable, version=V1))
    script.chmod(0o755)
    assert info.admin_token is not None
    (tmp_path / "token").write_text(info.admin_token)
    variables = {"PLUGIN_STATE": str(tmp_path), "PLUGIN_MODE": mode, **env}
    return {
        "exec": {
            "apiVersion": V1,
            "command": "./plugin.py",  # relative to the kubeconfig, as client-go resolves it
            "env": [{"name": k, "value": v} for k, v in variables.items()],
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": True,
        }
    }


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs").read_text())


async def whoami(client: KubeClient) -> dict[str, Any]:
    review = await client.create(
        REVIEW, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    user: dict[str, Any] = review["status"]["userInfo"]
    return user


# ----------------------------------------------------------------------------- exec plugins


async def test_an_exec_token_is_cached_until_it_expires_then_the_plugin_runs_again(
    control_plane: ClusterInfo, tmp_path: Path
) -> None:
    user = plugin_user(tmp_path, control_plane, "expiring", PLUGIN_TTL="2")
    connection = KubeConnection.from_kubeconfig_file(
        write(tmp_path, kubeconfig(control_plane, user))
    )

    async with KubeClient(connection) as client:
        assert (await whoami(client))["username"] == "admin"
        await client.get("/api/v1/namespaces/default")
        assert runs(tmp_path) == 1  # cached: not expired yet
        credential = await connection.credentials.current()
        assert credential.expires_at is not None
        await asyncio.sleep(max(0.0, credential.expires_at.timestamp() - time.time()) + 0.2)
        await client.get("/api/v1/namespaces/default")
        assert runs(tmp_path) == 2  # expired: the plugin ran again

    info = json.loads((tmp_path / "info-1.json").read_text())
    assert info["apiVersion"] == V1
    assert info["spec"]["interactive"] is False  # no terminal: the plugin must not prompt
    assert info["spec"]["cluster"]["server"] == control_plane.server
    assert info["spec"]["cluster"]["certificate-authority-data"] == ca_data(control_plane)
    assert (tmp_path / "stdin-1").read_text() == "''"  # stdin closed, not the operator's


async def test_a_401_runs_the_plugin_again_once(control_plane: ClusterInfo, tmp_path: Path) -> None:
    user = plugin_user(tmp_path, control_plane, "revoked-first")
    connection = KubeConnection.from_kubeconfig_file(
        write(tmp_path, kubeconfig(control_plane, user))
    )

    async with KubeClient(connection) as client:
        assert (await whoami(client))["username"] == "admin"
        assert runs(tmp_path) == 2  # the revoked token got a 401, the second run's did not
        await client.get("/api/v1/namespaces/default")
        assert runs(tmp_path) == 2


async def test_an_exec_plugin_may_answer_with_a_client_certificate(
    control_plane: ClusterInfo, tmp_path: Path
) -> None:
    cert, key = issue_client_certificate(Path(control_plane.state_dir), "exec-cert-user", ["ops"])
    (tmp_path / "cert.pem").write_text(cert)
    (tmp_path / "key.pem").write_text(key)
    user = plugin_user(tmp_path, control_plane, "cert")
    connection = KubeConnection.from_kubeconfig_file(
        write(tmp_path, kubeconfig(control_plane, user))
    )

    async with KubeClient(connection) as client:
        me = await whoami(client)

    assert me["username"] == "exec-cert-user"
    assert "ops" in me["groups"]


def test_trigger_works_with_a_kubeconfig_whose_user_is_an_exec_plugin(
    control_plane: ClusterInfo, test_namespace: str, tmp_path: Path
) -> None:
    control_plane.kubectl_run(
        "apply", "-n", test_namespace, "-f", "-",
        stdin=json.dumps({
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Fabric",
            "metadata": {"name": "fab-exec"}, "spec": {"interval": "1h", "suspend": True},
        }),
    )  # fmt: skip
    user = plugin_user(tmp_path, control_plane, "expiring", PLUGIN_TTL="600")
    path = write(tmp_path, kubeconfig(control_plane, user))

    done = subprocess.run(
        [str(REPO / ".venv/bin/inventory-sync"), "trigger", "fabric/fab-exec", "-n", test_namespace,
         "--kubeconfig", str(path)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "run requested" in done.stdout
    assert runs(tmp_path) == 1
    status, body = control_plane.request(
        "GET",
        f"/apis/{GROUP}/{VERSION}/namespaces/{test_namespace}/fabrics/fab-exec",
        token=control_plane.admin_token,
    )
    assert status == 200
    assert REQUESTED_AT in body["metadata"]["annotations"]


# ----------------------------------------------------------------------------- proxies and SNI


def _api_port(info: ClusterInfo) -> int:
    return int(info.server.rsplit(":", 1)[1])


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_proxy_url_and_tls_server_name_are_used_for_real(
    control_plane: ClusterInfo, kind: str
) -> None:
    port = _api_port(control_plane)
    # 127.0.0.2 is on no certificate and nothing listens there: only the proxy reaches the
    # API server, and only tls-server-name makes its certificate acceptable.
    server = f"https://127.0.0.2:{port}"
    user = {"token": control_plane.admin_token}
    proxy = ConnectProxy(upstream=port) if kind == "http" else Socks5Proxy(upstream=port)
    with serving(proxy):
        url = f"{kind}://127.0.0.1:{proxy.port}"
        named = yaml.safe_dump(
            kubeconfig(control_plane, user, server=server, **{"proxy-url": url, "tls-server-name": "localhost"})
        )  # fmt: skip
        unnamed = yaml.safe_dump(
            kubeconfig(control_plane, user, server=server, **{"proxy-url": url})
        )
        for text in (named, unnamed):
            for connection in (
                KubeConnection.from_kubeconfig_text(text),  # a Fabric's Secret
                _file_connection(text),
            ):
                async with KubeClient(connection, get_retries=0) as client:
                    if text is named:
                        assert (await client.get("/version") or {})["gitVersion"]
                    else:
                        with pytest.raises(KubeUnavailable) as caught:
                            await client.get("/version")
                        assert (
                            f"TLS: the certificate of 127.0.0.2:{port} could not be verified for "
                            "the name 127.0.0.2"
                        ) in str(caught.value)
                        assert f"through proxy {kind}://127.0.0.1:{proxy.port}" in str(caught.value)
    assert proxy.requests
    assert set(proxy.requests) == {f"127.0.0.2:{port}"}


def _file_connection(text: str) -> KubeConnection:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".kubeconfig") as handle:
        handle.write(text)
        handle.flush()
        return KubeConnection.from_kubeconfig_file(handle.name)


async def test_kopf_login_session_uses_proxy_server_name_and_impersonation(
    control_plane: ClusterInfo,
) -> None:
    port = _api_port(control_plane)
    user = {"token": control_plane.admin_token, "as": "jane", "as-groups": ["netops"]}
    with serving(ConnectProxy(upstream=port)) as proxy:
        config = kubeconfig(
            control_plane, user, server=f"https://127.0.0.2:{port}",
            **{"proxy-url": f"http://127.0.0.1:{proxy.port}", "tls-server-name": "localhost"},
        )  # fmt: skip
        connection = _file_connection(yaml.safe_dump(config))
        credential = await KopfLogin(connection).credential()
        async with open_session(connection, credential) as session:
            body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            async with session.post(connection.server + REVIEW, json=body) as response:
                assert response.status == 201, await response.text()
                review = await response.json()
    assert review["status"]["userInfo"]["username"] == "jane"
    assert "netops" in review["status"]["userInfo"]["groups"]
    assert proxy.requests == [f"127.0.0.2:{port}"]


# ----------------------------------------------------------------------------- impersonation


@pytest.mark.parametrize("source", ["file", "secret"])
async def test_impersonation_is_what_the_api_server_sees(
    control_plane: ClusterInfo, source: str
) -> None:
    user = {
        "token": control_plane.admin_token,
        "as": "jane@example.com",
        "as-groups": ["netops", "auditors"],
        "as-user-extra": {"scopes": ["view"]},
    }
    text = yaml.safe_dump(kubeconfig(control_plane, user))
    connection = (
        _file_connection(text) if source == "file" else KubeConnection.from_kubeconfig_text(text)
    )

    async with KubeClient(connection) as client:
        me = await whoami(client)

    assert me["username"] == "jane@example.com"
    assert {"netops", "auditors"} <= set(me["groups"])
    assert me["extra"] == {"scopes": ["view"]}


# ----------------------------------------------------------------------------- one message per cause


async def test_an_unreachable_fabric_is_one_message_for_the_run(
    control_plane: ClusterInfo, tmp_path: Path
) -> None:
    write_pki(tmp_path)  # another CA: not the one that signed the API server's certificate
    wrong_ca = base64.b64encode((tmp_path / "ca.crt").read_bytes()).decode()
    port = _api_port(control_plane)
    config = kubeconfig(control_plane, {"token": control_plane.admin_token})
    config["clusters"][0]["cluster"]["certificate-authority-data"] = wrong_ca
    spec = parse_fabric_spec({"interval": "5m"})  # the 12 Hedgehog kinds
    identity = ResourceIdentity(kind="Fabric", namespace="ns", name="fab", uid="u-1")
    closed = KubeConnection.from_kubeconfig_text(
        yaml.safe_dump(kubeconfig(control_plane, {"token": "x"}, server="https://127.0.0.1:9"))
    )

    for connection, cause in (
        (
            KubeConnection.from_kubeconfig_text(yaml.safe_dump(config)),
            # (the reason is OpenSSL's: the other CA has the same name, so "signature failure")
            f"TLS: the certificate of 127.0.0.1:{port} could not be verified for the name "
            "127.0.0.1: ",
        ),
        (closed, "connection refused by 127.0.0.1:9"),
    ):
        async with KubeClient(connection, retry_delay=0) as client:
            result = await run_fabric_sync(
                spec,
                fabric=identity,
                client=client,
                pool=None,  # type: ignore[arg-type]
                trigger="test",
                owner=None,
            )
        assert result.message is not None
        assert result.message.startswith("cannot reach the fabric: ")
        assert cause in result.message
        assert result.message.count("127.0.0.1") <= 2  # once, not once per kind
        assert len(result.sources) == 12
        assert {(o.state, o.message) for o in result.sources} == {
            (SourceState.SKIPPED, NOT_ATTEMPTED)
        }
