"""HTTPS for the simulator: a throwaway CA, a server certificate it signs, and the CA file clients trust.

Clients that insist on https (the vendor SDKs' token URLs) reach the simulator by trusting the
CA file: `SSL_CERT_FILE` for httpx, `REQUESTS_CA_BUNDLE` for requests. Needs `cryptography`,
the `tls` extra (`pip install 'inventory-sync-operator[tls]'`): the operator itself never serves
TLS, so its image does not carry it.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

#: Names the server certificate is valid for unless told otherwise: loopback only.
DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1", "::1")
#: Long enough for any test run or demo; short enough that a leaked CA file soon means nothing.
_VALID_DAYS = 7


class TlsConfig(BaseModel):
    """Serve HTTPS. `ca_file`: where to write the CA certificate (None: a file in a directory
    that lives as long as the server); `hostnames`: DNS names and IP addresses the server
    certificate names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = Field(None, description="Where the CA certificate (PEM) is written.")
    hostnames: tuple[str, ...] = Field(
        DEFAULT_HOSTNAMES, min_length=1, description="Subject alternative names of the server."
    )


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of one running server: the CA to trust, and the server's chain and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """The server side's SSL context (TLS 1.2 or newer)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


class TlsUnavailable(RuntimeError):
    """`cryptography` is not installed: the `tls` extra is missing."""


def write_tls_files(config: TlsConfig, directory: Path) -> TlsFiles:
    """Generate a CA and a server certificate for `config.hostnames` into `directory` (the key
    readable by the owner only); the CA also goes to `config.ca_file` when set."""
    ca_pem, cert_pem, key_pem = _generate(config.hostnames)
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = config.ca_file or directory / "ca.pem"
    ca_file.parent.mkdir(parents=True, exist_ok=True)
    ca_file.write_bytes(ca_pem)
    cert_file = directory / "server.pem"
    cert_file.write_bytes(cert_pem + ca_pem)
    key_file = directory / "server-key.pem"
    key_file.touch(mode=0o600)
    key_file.write_bytes(key_pem)
    return TlsFiles(ca_file=ca_file, cert_file=cert_file, key_file=key_file)


def _generate(hostnames: Sequence[str]) -> tuple[bytes, bytes, bytes]:
    """(CA certificate, server certificate, server key), PEM-encoded."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as error:  # an extra: the operator's image does not carry it
        raise TlsUnavailable(
            "serving TLS needs the 'cryptography' package: "
            "pip install 'inventory-sync-operator[tls]'"
        ) from error

    now = datetime.datetime.now(datetime.UTC)
    # Backdated a little: a client clock slightly behind must not see "not yet valid".
    not_before, not_after = (
        now - datetime.timedelta(hours=1),
        now + datetime.timedelta(days=_VALID_DAYS),
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "inventory-sync simulator CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca_cert.public_bytes(pem), cert.public_bytes(pem), key_pem
