"""Real-world kubeconfig shapes, read from a file and from a Fabric's Secret: each one is either
used as written (the test looks at what a request actually carries) or refused with a message
naming the field. No row may be accepted and ignored.

The shapes follow what the tools write: `aws eks update-kubeconfig`, `gcloud container clusters
get-credentials` (gke-gcloud-auth-plugin), `az aks get-credentials` + `kubelogin convert-kubeconfig`,
kubelogin's OIDC setup, Teleport's `tsh kube login`, kind/k3s (client certificates), Rancher
(tokens), vcluster/port-forwards (tls-server-name), bastions (proxy-url).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
import yaml

from inventory_sync.errors import KubeConfigError
from inventory_sync.kube import KubeClient, KubeConnection

TOKEN = "tok-kubeconfig-shapes-0123"
SERVER = "https://api.fabric.example.test:6443"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Stand-ins for the PEM material (made per session by conftest's `pem`), replaced in the text.
CERT, KEY = "PEM-CERT-B64", "PEM-KEY-B64"


@dataclass(frozen=True)
class Seen:
    """What using a connection shows: the request's headers, TLS settings and routing."""

    connection: KubeConnection
    headers: httpx.Headers
    context: ssl.SSLContext
    pool: Any
    pem: Any


Check = Callable[[Seen], None]


@dataclass(frozen=True)
class Refused:
    field: str


Expect = Check | Refused


async def observe(connection: KubeConnection, pem: Any) -> Seen:
    """Send one GET through a recording transport; build the real client to see TLS/proxy."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"kind": "Namespace"})

    async with KubeClient(connection, transport=httpx.MockTransport(answer)) as client:
        await client.get("/api/v1/namespaces/default")
    credential = await connection.credentials.current()
    real = KubeClient(connection)
    try:
        http = real._client_for(credential)
        pool = http._transport_for_url(httpx.URL(connection.server))._pool  # type: ignore[attr-defined]
    finally:
        await real.aclose()
    return Seen(connection, seen[0].headers, connection.ssl_context(credential), pool, pem)


# ------------------------------------------------------------------------- checks


def bearer(expected: str) -> Check:
    def check(seen: Seen) -> None:
        assert seen.headers["authorization"] == f"Bearer {expected}"

    return check


def exec_plugin(command: str, *args: str, mode: str = "IfAvailable", **extra: Any) -> Check:
    def check(seen: Seen) -> None:
        plugin = seen.connection.exec_plugin
        assert plugin is not None
        assert (plugin.command, plugin.args, plugin.interactive_mode) == (command, args, mode)
        for key, value in extra.items():
            assert getattr(plugin, key) == value, key

    return check


def both(*checks: Check) -> Check:
    def check(seen: Seen) -> None:
        for one in checks:
            one(seen)

    return check


def impersonated(seen: Seen) -> None:
    headers = seen.headers
    assert headers["impersonate-user"] == "jane@example.com"
    assert headers["impersonate-uid"] == "1234"
    assert headers.get_list("impersonate-group") == ["netops", "auditors"]
    assert headers.get_list("impersonate-extra-scopes") == ["view", "edit"]
    assert headers.get_list("impersonate-extra-acme.com%2Fproject") == ["fabric"]
    assert headers["authorization"] == f"Bearer {TOKEN}"


def proxied(kind: type, url: bytes) -> Check:
    def check(seen: Seen) -> None:
        assert isinstance(seen.pool, kind)
        origin = seen.pool._proxy_url
        assert origin.scheme + b"://" + origin.host + b":" + str(origin.port).encode() == url

    return check


def server_name(name: str) -> Check:
    def check(seen: Seen) -> None:
        assert getattr(seen.context, "server_name", None) == name
        assert seen.context.check_hostname
        assert seen.context.verify_mode is ssl.CERT_REQUIRED

    return check


def unverified(seen: Seen) -> None:
    assert seen.context.verify_mode is ssl.CERT_NONE
    assert not seen.context.check_hostname


def trusts_one_ca(seen: Seen) -> None:
    assert len(seen.context.get_ca_certs()) == 1
    assert seen.context.verify_mode is ssl.CERT_REQUIRED


def basic_auth(seen: Seen) -> None:
    assert seen.headers["authorization"] == "Basic " + b64(f"admin:{TOKEN}")


def uncompressed(seen: Seen) -> None:
    assert seen.headers["accept-encoding"] == "identity"


def client_cert_inline(seen: Seen) -> None:
    assert seen.connection.client_cert_data == seen.pem.cert
    assert seen.connection.client_key_data == seen.pem.key
    assert "authorization" not in seen.headers


# ------------------------------------------------------------------------- the table

EKS = {
    "exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "aws",
        "args": ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "fab"],
        "env": [{"name": "AWS_PROFILE", "value": "netops"}],
    }
}
GKE = {
    "exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "gke-gcloud-auth-plugin",
        "installHint": "Install gke-gcloud-auth-plugin for use with kubectl",
        "provideClusterInfo": True,
    }
}
AKS = {
    "exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "kubelogin",
        "args": ["get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368"],
    }
}
OIDC = {
    "exec": {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "kubectl",
        "args": ["oidc-login", "get-token", "--oidc-issuer-url=https://idp.example.test"],
        "interactiveMode": "IfAvailable",
    }
}
TELEPORT = {
    "exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "tsh",
        "args": ["kube", "credentials", "--kube-cluster=fab", "--teleport-cluster=tele"],
        "env": [{"name": "TELEPORT_PROXY", "value": "tele.example.test:443"}],
    }
}
IMPERSONATION = {
    "token": TOKEN,
    "as": "jane@example.com",
    "as-uid": "1234",
    "as-groups": ["netops", "auditors"],
    "as-user-extra": {"scopes": ["view", "edit"], "acme.com/project": ["fabric"]},
}

SECRET_EXEC = Refused("exec credential plugin")
CA = {"certificate-authority-data": CERT}
ROWS = [
    pytest.param(
        EKS,
        {},
        exec_plugin("aws", *EKS["exec"]["args"], env=(("AWS_PROFILE", "netops"),)),
        SECRET_EXEC,
        id="EKS aws exec plugin",
    ),
    pytest.param(
        GKE,
        CA,
        exec_plugin("gke-gcloud-auth-plugin", provide_cluster_info=True),
        SECRET_EXEC,
        id="GKE gke-gcloud-auth-plugin",
    ),
    pytest.param(
        AKS, CA, exec_plugin("kubelogin", *AKS["exec"]["args"]), SECRET_EXEC, id="AKS kubelogin"
    ),
    pytest.param(
        OIDC,
        CA,
        exec_plugin("kubectl", *OIDC["exec"]["args"]),
        SECRET_EXEC,
        id="OIDC kubelogin exec v1",
    ),
    pytest.param(
        TELEPORT, CA, exec_plugin("tsh", *TELEPORT["exec"]["args"]), SECRET_EXEC, id="Teleport tsh"
    ),
    pytest.param(
        {"exec": {**OIDC["exec"], "interactiveMode": None}},
        {},
        Refused("interactiveMode is required"),
        SECRET_EXEC,
        id="exec v1 without interactiveMode",
    ),
    pytest.param(
        {"exec": {**EKS["exec"], "apiVersion": "client.authentication.k8s.io/v1alpha1"}},
        {},
        Refused("apiVersion"),
        SECRET_EXEC,
        id="exec v1alpha1 (removed in 1.24)",
    ),
    pytest.param(
        {"exec": {**EKS["exec"], "interactive": True}},
        {},
        Refused("'interactive'"),
        SECRET_EXEC,
        id="exec with an unknown field",
    ),
    pytest.param(
        {"token": TOKEN, "exec": EKS["exec"]},
        {},
        Refused("exec or a token"),
        SECRET_EXEC,
        id="exec and a token",
    ),
    pytest.param(
        {"token": TOKEN},
        CA,
        both(bearer(TOKEN), trusts_one_ca),
        both(bearer(TOKEN), trusts_one_ca),
        id="Rancher-style token",
    ),
    pytest.param(
        {"client-certificate-data": CERT, "client-key-data": KEY},
        CA,
        client_cert_inline,
        client_cert_inline,
        id="kind client certificate",
    ),
    pytest.param(
        {"tokenFile": "token"},
        {},
        bearer("from-the-file"),
        Refused("local file (tokenFile)"),
        id="tokenFile",
    ),
    pytest.param(
        {"client-certificate": "client.crt", "client-key": "client.key"},
        {},
        lambda seen: None,
        Refused("local file (client-certificate)"),
        id="client certificate files",
    ),
    pytest.param(
        {"username": "admin", "password": TOKEN}, CA, basic_auth, basic_auth, id="basic auth"
    ),
    pytest.param(
        {"username": "admin", "password": TOKEN, "token": TOKEN},
        {},
        Refused("username/password or a token"),
        Refused("username/password or a token"),
        id="basic auth and a token",
    ),
    pytest.param(IMPERSONATION, {}, impersonated, impersonated, id="impersonation"),
    pytest.param(
        {"token": TOKEN, "as-groups": ["x"]},
        {},
        Refused("need as"),
        Refused("need as"),
        id="as-groups without as",
    ),
    pytest.param(
        {"token": TOKEN},
        {"proxy-url": "http://bastion.example.test:3128"},
        proxied(httpcore.AsyncHTTPProxy, b"http://bastion.example.test:3128"),
        proxied(httpcore.AsyncHTTPProxy, b"http://bastion.example.test:3128"),
        id="proxy-url http CONNECT",
    ),
    pytest.param(
        {"token": TOKEN},
        {"proxy-url": "socks5://127.0.0.1:1080"},
        proxied(httpcore.AsyncSOCKSProxy, b"socks5://127.0.0.1:1080"),
        proxied(httpcore.AsyncSOCKSProxy, b"socks5://127.0.0.1:1080"),
        id="proxy-url socks5 (ssh -D)",
    ),
    pytest.param(
        {"token": TOKEN},
        {"proxy-url": "ftp://x.example.test"},
        Refused("proxy-url"),
        Refused("proxy-url"),
        id="proxy-url of another scheme",
    ),
    pytest.param(
        {"token": TOKEN},
        {**CA, "tls-server-name": "kubernetes.default"},
        server_name("kubernetes.default"),
        server_name("kubernetes.default"),
        id="tls-server-name (vcluster)",
    ),
    pytest.param(
        {"token": TOKEN},
        {**CA, "insecure-skip-tls-verify": True},
        Refused("insecure-skip-tls-verify together"),
        Refused("insecure-skip-tls-verify together"),
        id="insecure with a CA",
    ),
    pytest.param(
        {"token": TOKEN},
        {"insecure-skip-tls-verify": True},
        unverified,
        unverified,
        id="insecure without a CA",
    ),
    pytest.param(
        {"token": TOKEN},
        {"disable-compression": True},
        uncompressed,
        uncompressed,
        id="disable-compression",
    ),
    pytest.param(
        {"auth-provider": {"name": "oidc", "config": {"id-token": TOKEN}}},
        {},
        Refused("auth-provider 'oidc'"),
        Refused("auth-provider 'oidc'"),
        id="OIDC auth-provider",
    ),
    pytest.param(
        {"auth-provider": {"name": "gcp"}},
        {},
        Refused("auth-provider 'gcp'"),
        Refused("auth-provider 'gcp'"),
        id="gcp auth-provider (removed in 1.26)",
    ),
    pytest.param(
        {"token": TOKEN, "act-as": "x"},
        {},
        Refused("field 'act-as'"),
        Refused("field 'act-as'"),
        id="unknown user field",
    ),
    pytest.param(
        {"token": TOKEN},
        {"proxy": "http://p"},
        Refused("field 'proxy'"),
        Refused("field 'proxy'"),
        id="unknown cluster field",
    ),
    pytest.param(
        {"token": TOKEN},
        {"certificate-authority": "ca.crt", **CA},
        Refused("certificate-authority or certificate-authority-data"),
        Refused("local file (certificate-authority)"),
        id="CA file and data",
    ),
    pytest.param(
        {"token": TOKEN},
        {"server": "http://fabric.example.test:8080"},
        bearer(TOKEN),
        Refused("plain http"),
        id="plain http server",
    ),
    pytest.param(
        {"token": TOKEN},
        {"server": "https://169.254.169.254"},
        bearer(TOKEN),
        Refused("link-local"),
        id="metadata address as server",
    ),
]


def document(user: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fab", "cluster": {"server": SERVER, **cluster}}],
        "users": [{"name": "u", "user": {k: v for k, v in user.items() if v is not None}}],
        "contexts": [{"name": "fab", "context": {"cluster": "fab", "user": "u"}}],
        "current-context": "fab",
        "preferences": {},
    }


def _strip_none(user: dict[str, Any]) -> dict[str, Any]:
    out = dict(user)
    if isinstance(out.get("exec"), dict):
        out["exec"] = {k: v for k, v in out["exec"].items() if v is not None}
    return out


@pytest.fixture(params=["file", "secret"])
def source(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(("user", "cluster", "from_file", "from_secret"), ROWS)
async def test_a_kubeconfig_shape_is_used_as_written_or_refused_by_field(
    tmp_path: Path,
    pem: Any,
    user: dict[str, Any],
    cluster: dict[str, Any],
    from_file: Expect,
    from_secret: Expect,
    source: str,
) -> None:
    text = yaml.safe_dump(document(_strip_none(user), cluster))
    text = text.replace(CERT, b64(pem.cert)).replace(KEY, b64(pem.key))
    (tmp_path / "token").write_text("from-the-file\n")
    (tmp_path / "client.crt").write_text(pem.cert)
    (tmp_path / "client.key").write_text(pem.key)
    (tmp_path / "ca.crt").write_text(pem.cert)
    expect = from_file if source == "file" else from_secret
    (tmp_path / "config").write_text(text)

    def load() -> KubeConnection:
        if source == "file":
            return KubeConnection.from_kubeconfig_file(tmp_path / "config")
        return KubeConnection.from_kubeconfig_text(text)

    if isinstance(expect, Refused):
        with pytest.raises(KubeConfigError) as caught:
            load()
        assert expect.field in str(caught.value)
        assert TOKEN not in str(caught.value)
        return
    connection = load()
    if connection.exec_plugin is not None:
        expect(Seen(connection, httpx.Headers(), connection.ssl_context(), None, pem))
        return
    expect(await observe(connection, pem))
