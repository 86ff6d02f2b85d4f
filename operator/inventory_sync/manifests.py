"""Reading a multi-document YAML manifest for the one-shot CLI: SyncSchedules plus their Secrets,
and keeping the refresh tokens classic Central rotates in a private per-user file."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inventory_sync.errors import CredentialsError, SpecError
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


def rotated_tokens_dir(environ: dict[str, str]) -> Path:
    """$XDG_CACHE_HOME (when absolute) or ~/.cache, then inventory-sync/rotated-tokens."""
    cache = environ.get("XDG_CACHE_HOME", "")
    if not cache or not os.path.isabs(cache):
        home = environ.get("HOME") or str(Path.home())
        cache = os.path.join(home, ".cache")
    return Path(cache) / "inventory-sync" / "rotated-tokens"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class RotatedTokens:
    """Secret values the CLI had to replace (rotated refresh tokens), one JSON file per Secret,
    `<namespace>_<name>.json` (mode 0600) in a directory of mode 0700.

    Each entry remembers a digest of the manifest's value it replaces: while the manifest
    (or environment) still holds that value, the saved one is used instead; once the user
    puts a new value there, the new one wins.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, namespace: str, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{namespace}_{name}")
        return self.directory / f"{safe}.json"

    def _load(self, path: Path) -> dict[str, dict[str, str]]:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise CredentialsError(f"{path}: cannot read: {error.strerror}") from None
        try:
            entries = json.loads(text)["keys"]
            if not all(isinstance(e["value"], str) for e in entries.values()):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            # The value is never echoed: the file holds secrets.
            raise CredentialsError(
                f"{path}: not a rotated-token file; remove it to use the manifest's values"
            ) from None
        return dict(entries)

    def overlay(self, namespace: str, name: str, data: dict[str, str]) -> dict[str, str]:
        """`data` with every saved value whose replaced manifest value is still in `data`."""
        merged = dict(data)
        for key, entry in self._load(self.path(namespace, name)).items():
            current = data.get(key)
            if current is not None and _digest(current) == entry.get("replaces"):
                merged[key] = entry["value"]
        return merged

    def save(self, namespace: str, name: str, key: str, value: str, *, replaces: str) -> None:
        """Record `value` for `key` in place of the manifest value `replaces`; written to a
        private temporary file first, then renamed, so a crash never leaves half a file."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)  # tighten a directory someone else created wider
        path = self.path(namespace, name)
        entries = self._load(path)
        entries[key] = {"value": value, "replaces": _digest(replaces)}
        document = {"namespace": namespace, "name": name, "keys": entries}
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:  # mkstemp: mode 0600
                json.dump(document, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


class EnvOverlaySecrets:
    """Secrets from the manifest, with any key overridable from the environment so that real
    credentials never have to be written into a file; a SecretWriter too: rotated refresh
    tokens go to RotatedTokens (in `token_dir`, default `rotated_tokens_dir(environ)`) and are
    preferred over the manifest's on the next run."""

    def __init__(
        self,
        base: StaticSecrets,
        environ: dict[str, str] | None = None,
        *,
        token_dir: Path | None = None,
    ) -> None:
        self._base = base
        self._environ = dict(os.environ if environ is None else environ)
        self.rotated = RotatedTokens(token_dir or rotated_tokens_dir(self._environ))

    async def read(self, namespace: str, name: str) -> dict[str, str] | None:
        data = await self._manifest_and_env(namespace, name)
        return None if data is None else self.rotated.overlay(namespace, name, data)

    async def write(self, namespace: str, name: str, key: str, value: str) -> None:
        """Save a rotated value for the next run (the manifest file itself is never edited)."""
        data = await self._manifest_and_env(namespace, name) or {}
        replaces = data.get(key, "")
        await asyncio.to_thread(self.rotated.save, namespace, name, key, value, replaces=replaces)

    async def _manifest_and_env(self, namespace: str, name: str) -> dict[str, str] | None:
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
