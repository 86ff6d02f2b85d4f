"""KubeConnection: kubeconfig parsing, in-cluster discovery, TLS material and secrecy of credentials."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory_sync.errors import KubeConfigError
from inventory_sync.kube import KubeConnection

TOKEN = "tok-very-secret-0123456789"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(
    *,
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    current: str = "main",
    namespace: str | None = "fabric-a",
) -> str:
    context: dict[str, Any] = {"cluster": "c1", "user": "u1"}
    if namespace:
        context["namespace"] = namespace
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c1", "cluster": cluster or {"server": "https://fabric.example.test:6443"}},
            {"name": "c2", "cluster": {"server": "https://other.example.test"}},
        ],
        "users": [
            {"name": "u1", "user": user if user is not None else {"token": TOKEN}},
            {"name": "u2", "user": {"token": "other-token"}},
        ],
        "contexts": [
            {"name": "main", "context": context},
            {"name": "other", "context": {"cluster": "c2", "user": "u2"}},
        ],
        "current-context": current,
    }
    return yaml.safe_dump(document)


def test_current_context_gives_server_token_and_namespace() -> None:
    connection = KubeConnection.from_kubeconfig_text(kubeconfig())
    assert connection.server == "https://fabric.example.test:6443"
    assert connection.bearer_token() == TOKEN
    assert connection.namespace == "fabric-a"


def test_an_explicit_context_wins_over_current_context() -> None:
    connection = KubeConnection.from_kubeconfig_text(kubeconfig(), context="other")
    assert (connection.server, connection.bearer_token()) == (
        "https://other.example.test",
        "other-token",
    )
    assert connection.namespace == "default"


@pytest.mark.parametrize(
    ("text", "context", "message"),
    [
        pytest.param(kubeconfig(), "missing", "no context named 'missing'", id="unknown context"),
        pytest.param(kubeconfig(current=""), None, "no current-context", id="no current context"),
        pytest.param("- a\n- list\n", None, "not a kubeconfig", id="not a mapping"),
        pytest.param(
            kubeconfig(cluster={"insecure-skip-tls-verify": True}),
            None,
            "has no server",
            id="cluster without server",
        ),
    ],
)
def test_unusable_kubeconfigs_raise_kubeconfig_errors(
    text: str, context: str | None, message: str
) -> None:
    with pytest.raises(KubeConfigError, match=message) as caught:
        KubeConnection.from_kubeconfig_text(text, context)
    assert caught.value.permanent


def test_invalid_yaml_names_the_line_not_the_content() -> None:
    text = f"users:\n- name: u\n  user: {{token: {TOKEN}\n"
    with pytest.raises(KubeConfigError, match="not valid YAML at line") as caught:
        KubeConnection.from_kubeconfig_text(text)
    assert TOKEN not in str(caught.value)


def test_bad_base64_names_the_field_not_the_value() -> None:
    text = kubeconfig(user={"client-certificate-data": "!!", "client-key-data": TOKEN + "@"})
    with pytest.raises(KubeConfigError, match="client-certificate-data is not valid base64"):
        KubeConnection.from_kubeconfig_text(text)


def test_repr_hides_token_and_key() -> None:
    connection = KubeConnection(
        server="https://k.example.test", token=TOKEN, client_key_data="-----KEY-----"
    )
    assert TOKEN not in repr(connection)
    assert "KEY" not in repr(connection)


@pytest.mark.parametrize(
    "field", ["tokenFile", "client-key", "client-certificate", "certificate-authority"]
)
def test_a_kubeconfig_from_a_secret_may_not_point_at_local_files(field: str) -> None:
    # The Secret's author must not make the operator send its own token or read its files.
    target = "cluster" if field == "certificate-authority" else "user"
    body = {field: "/var/run/secrets/kubernetes.io/serviceaccount/token"}
    text = kubeconfig(
        user=body if target == "user" else {"token": TOKEN},
        cluster={"server": "https://x.example.test", **body} if target == "cluster" else None,
    )
    with pytest.raises(KubeConfigError, match=f"local file \\({field}\\)"):
        KubeConnection.from_kubeconfig_text(text)
    allowed = KubeConnection.from_kubeconfig_text(text, allow_local_files=True)
    assert allowed.server.startswith("https://")


def test_a_token_file_is_read_on_every_use(tmp_path: Path) -> None:
    # Projected ServiceAccount tokens rotate in place; a cached token would expire.
    (tmp_path / "token").write_text("first\n")
    (tmp_path / "config").write_text(kubeconfig(user={"tokenFile": "token"}))
    connection = KubeConnection.from_kubeconfig_file(tmp_path / "config")
    assert connection.token_file == str(tmp_path / "token")  # relative to the kubeconfig
    assert connection.bearer_token() == "first"
    (tmp_path / "token").write_text("second\n")
    assert connection.bearer_token() == "second"


def test_an_unreadable_token_file_is_a_kubeconfig_error(tmp_path: Path) -> None:
    connection = KubeConnection(server="https://k.example.test", token_file=str(tmp_path / "nope"))
    with pytest.raises(KubeConfigError, match="cannot read token file"):
        connection.bearer_token()


def test_inline_token_wins_over_token_file(tmp_path: Path) -> None:
    text = kubeconfig(user={"token": TOKEN, "tokenFile": str(tmp_path / "absent")})
    connection = KubeConnection.from_kubeconfig_text(text, allow_local_files=True)
    assert connection.bearer_token() == TOKEN


def test_embedded_ca_and_client_certificate_build_a_tls_context(pem: Any) -> None:
    text = kubeconfig(
        cluster={
            "server": "https://fabric.example.test",
            "certificate-authority-data": b64(pem.cert),
        },
        user={"client-certificate-data": b64(pem.cert), "client-key-data": b64(pem.key)},
    )
    connection = KubeConnection.from_kubeconfig_text(text)
    assert connection.ca_data == pem.cert
    context = connection.ssl_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert len(context.get_ca_certs()) == 1


def test_ca_and_client_certificate_files_are_resolved_next_to_the_kubeconfig(
    tmp_path: Path, pem: Any
) -> None:
    (tmp_path / "ca.crt").write_text(pem.cert)
    (tmp_path / "client.crt").write_text(pem.cert)
    (tmp_path / "client.key").write_text(pem.key)
    (tmp_path / "config").write_text(
        kubeconfig(
            cluster={"server": "https://f.example.test", "certificate-authority": "ca.crt"},
            user={"client-certificate": "client.crt", "client-key": "client.key"},
        )
    )
    connection = KubeConnection.from_kubeconfig_file(tmp_path / "config")
    assert connection.ca_file == str(tmp_path / "ca.crt")
    assert len(connection.ssl_context().get_ca_certs()) == 1


def test_a_mismatched_key_is_a_kubeconfig_error_without_key_material(pem: Any) -> None:
    connection = KubeConnection(
        server="https://k.example.test", client_cert_data=pem.cert, client_key_data="garbage"
    )
    with pytest.raises(KubeConfigError, match="client certificate or key is not usable") as caught:
        connection.ssl_context()
    assert "garbage" not in str(caught.value)


def test_insecure_skip_tls_verify_turns_verification_off() -> None:
    text = kubeconfig(
        cluster={"server": "https://f.example.test", "insecure-skip-tls-verify": True}
    )
    context = KubeConnection.from_kubeconfig_text(text).ssl_context()
    assert context.verify_mode is ssl.CERT_NONE
    assert not context.check_hostname


def _service_account_dir(tmp_path: Path, pem: Any) -> Path:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_text(pem.cert)
    (tmp_path / "namespace").write_text("inventory-sync-system\n")
    return tmp_path


def test_in_cluster_uses_the_service_account_mount(tmp_path: Path, pem: Any) -> None:
    directory = _service_account_dir(tmp_path, pem)
    environ = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    connection = KubeConnection.in_cluster(environ=environ, directory=directory)
    assert connection.server == "https://10.0.0.1:443"
    assert connection.namespace == "inventory-sync-system"
    assert connection.bearer_token() == "sa-token"
    assert len(connection.ssl_context().get_ca_certs()) == 1


def test_in_cluster_brackets_an_ipv6_service_host(tmp_path: Path, pem: Any) -> None:
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    connection = KubeConnection.in_cluster(
        environ=environ, directory=_service_account_dir(tmp_path, pem)
    )
    assert connection.server == "https://[fd00::1]:443"


def test_outside_a_pod_in_cluster_says_why(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="KUBERNETES_SERVICE_HOST"):
        KubeConnection.in_cluster(environ={}, directory=tmp_path)


def test_default_merges_kubeconfig_files_first_one_wins(tmp_path: Path) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.write_text(
        yaml.safe_dump(
            {"users": [{"name": "u1", "user": {"token": "from-first"}}], "current-context": "main"}
        )
    )
    second.write_text(kubeconfig(current="other"))
    missing = tmp_path / "missing"  # kubectl skips absent files in the list
    environ = {"KUBECONFIG": f"{missing}:{first}:{second}"}
    connection = KubeConnection.default(environ=environ)
    assert connection.server == "https://fabric.example.test:6443"
    assert connection.bearer_token() == "from-first"


def test_default_falls_back_to_home_then_in_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeConfigError, match="KUBERNETES_SERVICE_HOST"):
        KubeConnection.default(environ={})
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(kubeconfig())
    assert KubeConnection.default(environ={}).bearer_token() == TOKEN


def test_default_with_kubeconfig_naming_no_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="no existing file"):
        KubeConnection.default(environ={"KUBECONFIG": str(tmp_path / "absent")})
