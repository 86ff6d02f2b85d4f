"""Reading a multi-document YAML manifest for the one-shot CLI: SyncSchedules plus their Secrets."""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inventory_sync.errors import SpecError
from inventory_sync.models import SyncSchedule, parse_sync_schedule
from inventory_sync.syncing.credentials import StaticSecrets


@dataclass
class Manifest:
    schedules: list[SyncSchedule] = field(default_factory=list)
    secrets: StaticSecrets = field(default_factory=StaticSecrets)


def load_manifest(path: Path) -> Manifest:
    """Parse every document; SpecError names the document and field of the first problem."""
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except OSError as error:
        raise SpecError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML: {error}") from None
    manifest = Manifest()
    for index, document in enumerate(documents):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise SpecError(f"{path}: document {index + 1} is not a mapping")
        kind = document.get("kind")
        if kind == "Secret":
            _add_secret(manifest.secrets, document, where=f"{path}: document {index + 1}")
        elif kind == "SyncSchedule":
            manifest.schedules.append(parse_sync_schedule(document))
        # Other kinds (Fabric, Namespace…) may share the file; the one-shot CLI ignores them.
    if not manifest.schedules:
        raise SpecError(f"{path}: no SyncSchedule found")
    return manifest


def _add_secret(secrets: StaticSecrets, document: dict[str, Any], *, where: str) -> None:
    metadata = document.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str):
        raise SpecError(f"{where}: Secret metadata.name is required")
    namespace = str(metadata.get("namespace") or "default")
    data: dict[str, str] = {}
    for key, value in (document.get("data") or {}).items():
        try:
            data[str(key)] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise SpecError(f"{where}: Secret {name} data.{key} is not valid base64") from None
    for key, value in (document.get("stringData") or {}).items():
        data[str(key)] = str(value)
    secrets.add(namespace, name, data)


def env_name(secret: str, key: str) -> str:
    """The environment variable that can supply a Secret key: glp-creds/client_secret →
    INVENTORY_SYNC_SECRET_GLP_CREDS_CLIENT_SECRET."""
    return "INVENTORY_SYNC_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", f"{secret}_{key}").upper()


class EnvOverlaySecrets:
    """Secrets from the manifest, with any key overridable from the environment so that real
    credentials never have to be written into a file."""

    def __init__(self, base: StaticSecrets, environ: dict[str, str] | None = None) -> None:
        self._base = base
        self._environ = dict(os.environ if environ is None else environ)

    async def read(self, namespace: str, name: str) -> dict[str, str] | None:
        data = await self._base.read(namespace, name)
        prefix = env_name(name, "")
        overrides = {
            k[len(prefix) :].lower(): v
            for k, v in self._environ.items()
            if k.startswith(prefix) and v
        }
        if data is None and not overrides:
            return None
        merged = dict(data or {})
        for key in list(merged) + list(overrides):
            value = self._environ.get(env_name(name, key))
            if value:
                merged[key] = value
        for key, value in overrides.items():
            merged.setdefault(key, value)
        return merged
