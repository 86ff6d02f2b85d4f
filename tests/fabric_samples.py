"""Hedgehog-shaped Agent and Fabricator objects carrying credentials, for the redaction tests.

Every secret value is generated per call (nothing secret-looking is committed) and returned,
so a test can prove that none of them is stored anywhere.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

AGENT = "agent.githedgehog.com"
FABRICATOR = "fabricator.githedgehog.com"


@dataclass
class Sample:
    """An object (spec only: status goes through the status subresource), its status, and
    the secret values it holds."""

    body: dict[str, Any]
    status: dict[str, Any] | None
    secrets: list[str] = field(default_factory=list)


def _token(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(18)}"


def ssh_public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    text = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return text.decode() + " admin@laptop"


def pem_private_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def password_hash() -> str:
    # The shape of a crypt(3) SHA-512 hash, as Hedgehog stores switch users' passwords.
    return f"$6${secrets.token_hex(8)}${secrets.token_urlsafe(64)}"


def agent(name: str, namespace: str, *, heartbeat: str) -> Sample:
    """An Agent as the controller renders it (switch users with a password hash and SSH key,
    registry credentials, a telemetry token) and as the switch reports it (status)."""
    user_hash, ssh_key = password_hash(), ssh_public_key()
    registry_password, bearer, basic = _token("registry"), _token("bearer"), _token("basic")
    spec = {
        "role": "server-leaf",
        "description": f"agent of {name}",
        "switch": {"role": "server-leaf", "profile": "dell-s5248f-on", "asn": 65101},
        "users": [
            {"name": "admin", "role": "admin", "password": user_hash, "sshKeys": [ssh_key]},
        ],
        "version": {
            "default": "v0.87.0",
            "repo": "172.30.0.1:31000/githedgehog/agent",
            "ca": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "username": "pull",
            "password": registry_password,
        },
        "alloy": {
            "prometheusTargets": {
                "grafana-cloud": {
                    "url": "https://prometheus.example.net/api/prom/push",
                    "bearerToken": bearer,
                    "basicAuth": {"username": "123456", "password": basic},
                }
            }
        },
    }
    status = {
        "version": "v0.87.0",
        "lastHeartbeat": heartbeat,
        "lastAppliedTime": heartbeat,
        "lastAppliedGen": 1,
        "conditions": [
            {
                "type": "Applied",
                "status": "True",
                "reason": "ApplySucceeded",
                "message": "",
                "lastTransitionTime": heartbeat,
            },
        ],
        "state": {
            "nos": {
                "serialNumber": f"SN-{name.upper()}",
                "softwareVersion": "4.4.2-Enterprise_Base",
                "platformName": "x86_64-dellemc_s5248f_c3538-r0",
                "mfgName": "Dell EMC",
                "hwskuVersion": "DellEMC-S5248f-P-25G-DPB",
            },
            "interfaces": {"E1/1": {"enabled": True, "oper": "up", "speed": "25G"}},
            "bgpNeighbors": {
                "default": {"172.30.128.0": {"state": "established", "peerAS": 65100}}
            },
        },
    }
    body = {
        "apiVersion": f"{AGENT}/v1beta1",
        "kind": "Agent",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    return Sample(body, status, [user_hash, ssh_key, registry_password, bearer, basic])


def fabricator(name: str, namespace: str) -> Sample:
    """A Fabricator with the credentials its config may hold: default users (hash, SSH key),
    the join token, registry upstream credentials, telemetry tokens, a pasted private key."""
    user_hash, switch_hash, ssh_key = password_hash(), password_hash(), ssh_public_key()
    join, registry_password, bearer, basic = (
        _token("join"), _token("registry"), _token("bearer"), _token("basic"),
    )  # fmt: skip
    private_key = pem_private_key()
    spec = {
        "config": {
            "control": {
                "controlVIP": "172.30.0.1/32",
                "joinToken": join,
                "defaultUser": {"password": user_hash, "authorizedKeys": [ssh_key]},
                "tlsSAN": ["control-1.example.net"],
            },
            "registry": {
                "mode": "upstream",
                "upstream": {
                    "repo": "ghcr.io",
                    "prefix": "githedgehog",
                    "username": "robot",
                    "password": registry_password,
                },
            },
            "fabric": {
                "mode": "spine-leaf",
                "spineASN": 65100,
                "defaultSwitchUsers": {
                    "admin": {"role": "admin", "password": switch_hash, "authorizedKeys": [ssh_key]}
                },
            },
            "observability": {
                "targets": {
                    "prometheus": {
                        "grafana-cloud": {
                            "url": "https://prometheus.example.net/api/prom/push",
                            "bearerToken": bearer,
                            "basicAuth": {"username": "123456", "password": basic},
                            "certPEM": private_key,  # a key pasted where a certificate belongs
                        }
                    }
                }
            },
        }
    }
    body = {
        "apiVersion": f"{FABRICATOR}/v1beta1",
        "kind": "Fabricator",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    secrets_ = [user_hash, switch_hash, ssh_key, join, registry_password, bearer, basic]
    # The PEM's base64 body is the secret part (its BEGIN/END lines are not).
    secrets_.append(private_key.splitlines()[1])
    return Sample(body, None, secrets_)
