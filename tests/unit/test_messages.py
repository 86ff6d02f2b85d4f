"""What the operator publishes about a failure: redaction (`public_message`) and one sentence per
connection cause (`connect_errors.describe`)."""

from __future__ import annotations

import socket
import ssl

import httpcore
import httpx
import pytest

from inventory_sync import connect_errors
from inventory_sync.errors import CredentialsError, public_message


@pytest.mark.parametrize(
    ("text", "published"),
    [
        pytest.param(
            "Secret default/glp-token: key 'client_id' missing",
            "Secret default/glp-token: key 'client_id' missing",
            id="a Secret named *-token is not mangled",
        ),
        pytest.param(
            "Secret ns/central-secret has no key 'x'",
            "Secret ns/central-secret has no key 'x'",
            id="a Secret named *-secret is not mangled",
        ),
        pytest.param(
            "Secret ns/c key 'refresh_token': these secrets are read-only",
            "Secret ns/c key 'refresh_token': these secrets are read-only",
            id="a quoted key name followed by prose is not a value",
        ),
        pytest.param(
            'upstream said {"access_token": "abc123", "expires_in": 3600}',
            'upstream said {"access_token": "***", "expires_in": 3600}',
            id="JSON-quoted token",
        ),
        pytest.param(
            '{"client_secret":"s3cr3t"}', '{"client_secret":"***"}', id="JSON without spaces"
        ),
        pytest.param("{'refresh_token': 'r-1'}", "{'refresh_token': '***'}", id="Python repr"),
        pytest.param("access_token=abc&x=1", "access_token=***&x=1", id="form encoded"),
        pytest.param('password="two words"', 'password="***"', id="quoted value after ="),
        pytest.param("Authorization: Bearer eyJ0.abc", "Authorization: Bearer ***", id="bearer"),
        pytest.param(
            "bearer token refused again after a refresh",
            "bearer token refused again after a refresh",
            id="prose about a bearer token stays",
        ),
        pytest.param("Basic dXNlcjpwYXNzd29yZA==", "Basic ***", id="basic auth"),
        pytest.param(
            "GET https://user:pw@h.example.test/x?token=1 failed",
            "GET https://user:***@h.example.test/x failed",
            id="URL password and query",
        ),
    ],
)
def test_public_message_redacts_values_not_names(text: str, published: str) -> None:
    assert public_message(CredentialsError(text)) == published


def _connect_error(cause: BaseException) -> httpx.ConnectError:
    """What httpx raises: httpx.ConnectError from httpcore.ConnectError from the OS error."""
    try:
        try:
            raise cause
        except BaseException as os_error:
            raise httpcore.ConnectError(str(os_error)) from os_error
    except httpcore.ConnectError as core:
        try:
            raise httpx.ConnectError(str(core)) from core
        except httpx.ConnectError as error:
            return error


def _verify_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "unable to get local issuer certificate"
    return error


@pytest.mark.parametrize(
    ("error", "said"),
    [
        pytest.param(
            _connect_error(_verify_error()),
            "TLS: the certificate of fab.example.test:6443 could not be verified for the name "
            "kubernetes.default: unable to get local issuer certificate",
            id="certificate",
        ),
        pytest.param(
            _connect_error(ConnectionRefusedError(111, "Connection refused")),
            "connection refused by fab.example.test:6443 (nothing listens there?)",
            id="refused",
        ),
        pytest.param(
            _connect_error(ExceptionGroup("attempts", [ConnectionRefusedError(111, "refused")])),
            "connection refused by fab.example.test:6443",
            id="refused on every address",
        ),
        pytest.param(
            _connect_error(socket.gaierror(-2, "Name or service not known")),
            "DNS: cannot resolve fab.example.test (Name or service not known)",
            id="DNS",
        ),
        pytest.param(
            httpx.ConnectTimeout("timed out"),
            "timed out connecting to fab.example.test:6443",
            id="connect timeout",
        ),
        pytest.param(
            httpx.ReadTimeout("timed out"),
            "fab.example.test:6443 did not answer in time",
            id="read timeout",
        ),
    ],
)
def test_a_connection_failure_is_one_sentence_naming_its_cause(
    error: BaseException, said: str
) -> None:
    described = connect_errors.describe(
        error, target="fab.example.test:6443", tls_name="kubernetes.default"
    )
    assert described.startswith(said)


def test_the_proxy_is_named_when_one_was_used() -> None:
    error = _connect_error(ConnectionRefusedError(111, "Connection refused"))
    described = connect_errors.describe(
        error, target="10.0.0.1:6443", proxy="socks5://127.0.0.1:1080"
    )
    assert described.endswith("(through proxy socks5://127.0.0.1:1080)")
