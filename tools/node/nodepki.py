"""Certificates and kubeconfigs of the single-node cluster (tools/node/localnode.py).

One throwaway CA signs everything: the apiserver's serving certificate (its SANs cover the
node IP, loopback and the first service IP, which is how pods reach it), the kubelet's
serving certificate, and one client certificate per identity the components use. A second
key pair signs ServiceAccount tokens. Nothing leaves the node's state directory.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Client identities: file stem -> (user, groups). RBAC's bootstrap roles name these users.
CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("admin", ("system:masters",)),
    "controller-manager": ("system:kube-controller-manager", ()),
    "scheduler": ("system:kube-scheduler", ()),
    "kube-proxy": ("system:kube-proxy", ()),
    # The apiserver's identity towards the kubelet (exec, logs, port-forward).
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("system:masters",)),
}


@dataclass(frozen=True)
class NodePKI:
    """Paths of everything `write_pki` made."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca(self) -> Path:
        return self.path("ca.crt")


def _key_bytes(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _name(common: str, groups: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common)])


class _CA:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        name = _name("inventory-sync-node-ca")
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        subject: x509.Name,
        *,
        client: bool,
        server_names: list[str] | None = None,
    ) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate clock skew
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
        )
        if server_names:
            alt: list[x509.GeneralName] = []
            for name in server_names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(name)))
                except ValueError:
                    alt.append(x509.DNSName(name))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_bytes(key)


def write_pki(directory: Path, *, node_name: str, node_ip: str, first_service_ip: str) -> NodePKI:
    """Write the CA, serving and client certificates, and the ServiceAccount key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _CA()
    _write(directory / "ca.crt", ca.cert.public_bytes(serialization.Encoding.PEM))
    _write(directory / "ca.key", _key_bytes(ca.key), private=True)
    apiserver_names = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "127.0.0.1",
        node_ip,
        first_service_ip,
    ]
    for stem, subject, names in (
        ("apiserver", _name("kube-apiserver"), apiserver_names),
        ("kubelet", _name(node_name), [node_name, node_ip, "127.0.0.1"]),
    ):
        cert, key = ca.issue(subject, client=False, server_names=names)
        _write(directory / f"{stem}.crt", cert)
        _write(directory / f"{stem}.key", key, private=True)
    clients = dict(CLIENTS)
    clients["kubelet-client"] = (f"system:node:{node_name}", ("system:nodes",))
    for stem, (user, groups) in clients.items():
        cert, key = ca.issue(_name(user, groups), client=True)
        _write(directory / f"{stem}.crt", cert)
        _write(directory / f"{stem}.key", key, private=True)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(directory / "sa.key", _key_bytes(sa_key), private=True)
    _write(
        directory / "sa.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return NodePKI(directory)


def write_kubeconfig(path: Path, *, server: str, pki: NodePKI, client: str) -> Path:
    """A kubeconfig for the client certificate `client` (a stem of CLIENTS or kubelet-client),
    with everything embedded. JSON is valid YAML."""

    def data(name: str) -> str:
        return base64.b64encode(pki.path(name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "node",
                "cluster": {"server": server, "certificate-authority-data": data("ca.crt")},
            }
        ],
        "users": [
            {
                "name": client,
                "user": {
                    "client-certificate-data": data(f"{client}.crt"),
                    "client-key-data": data(f"{client}.key"),
                },
            }
        ],
        "contexts": [{"name": client, "context": {"cluster": "node", "user": client}}],
        "current-context": client,
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path
