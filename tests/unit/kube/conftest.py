"""Fixtures for the kube client tests: throwaway PEM material and a scripted API server."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pem:
    """A self-signed certificate and its key, as PEM text (usable as CA and client cert)."""

    cert: str
    key: str


@pytest.fixture(scope="session")
def pem() -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "inventory-sync-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Pem(
        cert=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeApi:
    """An API server in memory: answers from `handler`, or scripted responses queued first."""

    handler: Handler = lambda _request: httpx.Response(404, json=FakeApi.status(404, "NotFound"))
    queued: list[httpx.Response | Exception] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    @staticmethod
    def status(code: int, reason: str, message: str = "") -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": reason,
            "message": message or reason,
            "code": code,
        }

    @staticmethod
    def body(request: httpx.Request) -> Any:
        return json.loads(request.content)

    def queue(self, *outcomes: httpx.Response | Exception) -> None:
        self.queued.extend(outcomes)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queued:
            outcome = self.queued.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return self.handler(request)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()
