"""Secrets out of fabric objects before anything is stored: the redaction rules (syncing layer).

Applied to every object of every kind in `stage_object`, so nothing below it (the merge, the
tables, the views) ever sees a secret. docs/fabrics.md documents the same rules for users.

1. Kind rules, for kinds known to carry credentials:
   * agent.githedgehog.com Agent: `spec` is the switch's whole rendered configuration (its
     `users` with password hashes and SSH keys, registry credentials, telemetry tokens, and a
     copy of every object the switch needs). Only `spec.role` and `spec.description` are kept;
     the operational state is in `status`, which is kept.
   * fabricator.githedgehog.com Fabricator: `spec.config.control.defaultUser`,
     `spec.config.fabric.defaultSwitchUsers` and the registry's `upstream.username`/`password`.
2. Name rule, on every mapping key at any depth of the object (not on label keys, which carry
   relations and object names): the key is split into words (camelCase, `-`, `_`, `.`), and its
   value is replaced when a word is password, passwd, passphrase, secret(s), token(s),
   credential(s) (`password`, `joinToken`, `bearerToken`, `clientSecret`), or when the last word
   is key or keys after another word that is not "public" (`sshKeys`, `authorizedKeys`,
   `privateKey`). Kept: `keyUsage`, `keyAlgorithm` (key is not the last word), `publicKey`, a bare
   `key` (the name of a key, as in selectors), `noPassAuth`, `tokenizer` (whole words only).
   A key that is a single lowercase word (`token`) may also be a user's name for a map entry (a
   VPC subnet called `token`): it is replaced when its value is a scalar or a list of scalars,
   and searched deeper when it is an object.
3. Value rule, on every string, labels and annotations included: PEM private keys, crypt(3)
   password hashes (`$6$…`, `$2b$…`, `$y$…`), SSH public keys (`ssh-ed25519 …`) and JWTs are
   replaced whatever their key.

A replaced value becomes the string "<redacted>", so a consumer sees that a value exists, and
a changed secret never counts as a changed row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

REDACTED = "<redacted>"

_SECRET_WORDS = frozenset(
    {"password", "passwd", "passphrase", "secret", "secrets", "token", "tokens"}
    | {"credential", "credentials"}
)
_KEY_WORDS = frozenset({"key", "keys"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_SECRET_VALUE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----"  # PEM private keys (RSA, EC, OPENSSH, encrypted…)
    r"|^\$(?:1|2[abxy]|5|6|7|y|gy|sha1|md5)\$"  # crypt(3) password hashes
    r"|^(?:ssh-(?:rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp\d+|sk-(?:ssh|ecdsa)-\S+) [A-Za-z0-9+/]"
    r"|^eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."  # JWTs (a header and a claims segment)
)

Object = dict[str, Any]


def words(name: str) -> list[str]:
    """`bearerToken` → [bearer, token]; `ssh_keys`, `api-token`, `TLSKey` split likewise."""
    return [w.lower() for w in _WORD.findall(name)]


def is_secret_name(name: str) -> bool:
    """Whether the name rule (2 above) redacts a field called `name`."""
    parts = words(name)
    if _SECRET_WORDS.intersection(parts):
        return True
    return len(parts) > 1 and parts[-1] in _KEY_WORDS and parts[-2] != "public"


def is_secret_value(value: str) -> bool:
    """Whether the value rule (3 above) redacts `value` whatever its key."""
    return bool(_SECRET_VALUE.search(value))


def redact_object(obj: Mapping[str, Any], *, group: str, kind: str) -> Object:
    """A copy of `obj` with the kind rules, then the name and value rules, applied."""
    copied: Object = json.loads(json.dumps(obj))  # a deep copy that is plain JSON
    rule = _KIND_RULES.get((group, kind))
    if rule is not None:
        rule(copied)
    metadata = copied.get("metadata")
    body = {k: v for k, v in copied.items() if k != "metadata"}
    redacted: Object = _redact(body)
    if isinstance(metadata, dict):
        redacted["metadata"] = _redact_metadata(metadata)
    return redacted


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _redact_entry(str(key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item) for item in value]
    if isinstance(value, str) and is_secret_value(value):
        return REDACTED
    return value


def _redact_entry(key: str, value: Any) -> Any:
    if value is None or not is_secret_name(key):
        return _redact(value)
    # One lowercase word may be a map entry's name rather than a field: look inside objects.
    if key.isalpha() and key.islower() and isinstance(value, dict):
        return _redact(value)
    return REDACTED


def _redact_metadata(metadata: Object) -> Object:
    """Names, labels and owner references are relations: only the value rule applies to them.
    Annotations also get the name rule on the key's name part (`example.com/api-token`), and a
    JSON annotation (another tool's copy of the object) is redacted like the object."""
    out = dict(metadata)
    labels = metadata.get("labels")
    if isinstance(labels, dict):
        out["labels"] = {k: _redact_scalar(v) for k, v in labels.items()}
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        out["annotations"] = {k: _redact_annotation(str(k), v) for k, v in annotations.items()}
    return out


def _redact_scalar(value: Any) -> Any:
    return REDACTED if isinstance(value, str) and is_secret_value(value) else value


def _redact_annotation(key: str, value: Any) -> Any:
    if is_secret_name(key.rsplit("/", 1)[-1]):
        return REDACTED
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return _redact_scalar(value)
        return json.dumps(_redact(parsed), separators=(",", ":"))
    return _redact_scalar(value)


# ----------------------------------------------------------------------------- kind rules


def _agent(obj: Object) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        obj["spec"] = {k: spec[k] for k in ("role", "description") if k in spec}


def _fabricator(obj: Object) -> None:
    config = _at(obj, "spec", "config")
    _blank(_at(config, "control"), "defaultUser")
    _blank(_at(config, "fabric"), "defaultSwitchUsers")
    upstream = _at(config, "registry", "upstream")
    _blank(upstream, "username")
    _blank(upstream, "password")


def _at(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _blank(obj: Any, key: str) -> None:
    if isinstance(obj, dict) and obj.get(key) is not None:
        obj[key] = REDACTED


_KIND_RULES: dict[tuple[str, str], Callable[[Object], None]] = {
    ("agent.githedgehog.com", "Agent"): _agent,
    ("fabricator.githedgehog.com", "Fabricator"): _fabricator,
}
