"""Reading kubeconfig files and kubeconfig text into a KubeConnection (kube layer); strict, so
nothing a kubeconfig says is silently dropped.

Two policies. A kubeconfig the user owns (a file: `--kubeconfig`, $KUBECONFIG, ~/.kube/config)
may use what kubectl supports and we implement: tokens, token files, client certificates from
files or inline, exec plugins, proxy-url, tls-server-name, impersonation. A kubeconfig from a
Secret (a Fabric's) may carry embedded credentials only: its author must not be able to run
commands in the operator or make it read, and send, the operator's own files (Flux refuses
the same). Under both, a field we do not implement is refused with its name; only the cluster,
user and context the chosen context uses are judged, so an unrelated entry never gets in the way.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from inventory_sync.endpoints import static_url_problem
from inventory_sync.errors import KubeConfigError
from inventory_sync.kube.exec_plugin import (
    CLUSTER_CONFIG_EXTENSION,
    INTERACTIVE_MODES,
    SUPPORTED_VERSIONS,
    V1,
    ExecConfig,
)

# What each section may hold. `extensions` and `preferences` are metadata for tools; client-go
# itself does not act on them either (bar the exec cluster extension, passed on below).
_TOP_FIELDS = frozenset(
    {"apiVersion", "kind", "clusters", "users", "contexts", "current-context", "preferences", "extensions"}
)  # fmt: skip
_CLUSTER_FIELDS = frozenset(
    {
        "server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify",
        "tls-server-name", "proxy-url", "disable-compression", "extensions",
    }
)  # fmt: skip
_USER_FIELDS = frozenset(
    {
        "token", "tokenFile", "client-certificate", "client-certificate-data", "client-key",
        "client-key-data", "username", "password", "as", "as-uid", "as-groups", "as-user-extra",
        "exec", "auth-provider", "extensions",
    }
)  # fmt: skip
_CONTEXT_FIELDS = frozenset({"cluster", "user", "namespace", "extensions"})
_EXEC_FIELDS = frozenset(
    {"command", "args", "env", "apiVersion", "installHint", "provideClusterInfo", "interactiveMode"}
)
# Fields naming files on the machine that reads the kubeconfig (resolved next to the file).
_FILE_FIELDS = ("certificate-authority", "client-certificate", "client-key", "tokenFile")
PROXY_SCHEMES = ("http", "https", "socks5")


@dataclass(frozen=True)
class Policy:
    """What a kubeconfig from this source may ask the operator to do."""

    local_files: bool
    exec_plugins: bool
    #: Plain http (with credentials) to a non-loopback server, or a link-local server, refused.
    egress_rules: bool


#: The user's own files: everything we implement.
FROM_FILE = Policy(local_files=True, exec_plugins=True, egress_rules=False)
#: A Secret written by whoever may write Secrets in a namespace: embedded credentials only.
FROM_SECRET = Policy(local_files=False, exec_plugins=False, egress_rules=True)


@dataclass
class Kubeconfig:
    """The named clusters/users/contexts of one or more merged kubeconfig documents."""

    origin: str
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    current_context: str = ""
    #: Where each entry's relative paths are resolved (None for text from a Secret).
    base_dirs: dict[tuple[str, str], Path] = field(default_factory=dict)

    @classmethod
    def load_files(cls, paths: list[Path]) -> Kubeconfig:
        merged = cls(origin=f"kubeconfig {os.pathsep.join(str(p) for p in paths)}")
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as error:
                raise KubeConfigError(f"kubeconfig {path}: {error.strerror}") from None
            merged.merge(cls.parse(text, origin=f"kubeconfig {path}", base_dir=path.parent))
        return merged

    @classmethod
    def parse(cls, text: str, *, origin: str, base_dir: Path | None) -> Kubeconfig:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            # The YAML error's snippet would quote the document, tokens included: give the line.
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise KubeConfigError(f"{origin}: not valid YAML{where}") from None
        if document is None:
            document = {}
        if not isinstance(document, dict):
            raise KubeConfigError(f"{origin}: not a kubeconfig (expected a mapping)")
        _refuse_unknown(document, _TOP_FIELDS, f"{origin}:")
        config = cls(origin=origin, current_context=str(document.get("current-context") or ""))
        for section, key, target in (
            ("clusters", "cluster", config.clusters),
            ("users", "user", config.users),
            ("contexts", "context", config.contexts),
        ):
            entries = document.get(section) or []
            if not isinstance(entries, list):
                raise KubeConfigError(f"{origin}: {section} must be a list")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise KubeConfigError(f"{origin}: every entry of {section} needs a name")
                body = entry.get(key) or {}
                if not isinstance(body, dict):
                    raise KubeConfigError(f"{origin}: {key} {entry['name']!r} is not a mapping")
                target.setdefault(entry["name"], body)
                if base_dir is not None:
                    config.base_dirs.setdefault((key, entry["name"]), base_dir)
        return config

    def merge(self, other: Kubeconfig) -> None:
        """The first document to define a name or current-context wins (kubectl's rule)."""
        for mine, theirs in (
            (self.clusters, other.clusters),
            (self.users, other.users),
            (self.contexts, other.contexts),
        ):
            for name, body in theirs.items():
                mine.setdefault(name, body)
        for key, directory in other.base_dirs.items():
            self.base_dirs.setdefault(key, directory)
        self.current_context = self.current_context or other.current_context

    def context_parts(
        self, context: str | None
    ) -> tuple[str, dict[str, Any], str, dict[str, Any], str, dict[str, Any]]:
        """(context name, context, cluster name, cluster, user name, user) of `context`
        (default: current-context)."""
        name = context or self.current_context
        if not name:
            raise KubeConfigError(f"{self.origin}: no context given and no current-context set")
        ctx = self.contexts.get(name)
        if ctx is None:
            raise KubeConfigError(f"{self.origin}: no context named {name!r}")
        _refuse_unknown(ctx, _CONTEXT_FIELDS, f"{self.origin}: context {name!r}:")
        cluster_name = str(ctx.get("cluster") or "")
        cluster = self.clusters.get(cluster_name)
        if cluster is None:
            raise KubeConfigError(f"{self.origin}: context {name!r} names an unknown cluster")
        user_name = str(ctx.get("user") or "")
        if user_name and user_name not in self.users:
            raise KubeConfigError(f"{self.origin}: context {name!r} names an unknown user")
        user = self.users.get(user_name, {}) if user_name else {}
        return name, ctx, cluster_name, cluster, user_name, user

    def resolve(self, kind: str, name: str, value: str) -> str:
        """A file path as kubectl reads it: relative to the kubeconfig that named it."""
        base = self.base_dirs.get((kind, name))
        if base is None or os.path.isabs(value):
            return value
        return str(base / value)


def _refuse_unknown(body: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in body if k not in known)
    if unknown:
        raise KubeConfigError(
            f"{where} field {unknown[0]!r} is not supported (refused rather than ignored)"
        )


# ----------------------------------------------------------------------------- field readers


@dataclass(frozen=True)
class Fields:
    """Typed access to one kubeconfig entry; every error names the entry and the field."""

    body: Mapping[str, Any]
    where: str  # "kubeconfig x: user 'u1'"

    def text(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise KubeConfigError(f"{self.where}: {key} must be a string")
        return value

    def flag(self, key: str) -> bool:
        value = self.body.get(key, False)
        if not isinstance(value, bool):
            raise KubeConfigError(f"{self.where}: {key} must be true or false")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.body.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise KubeConfigError(f"{self.where}: {key} must be a list of strings")
        return tuple(value)

    def pem(self, key: str) -> str | None:
        """A base64 `*-data` field as PEM text; the error names the field, never its content."""
        value = self.text(key)
        if value is None:
            return None
        try:
            # Hand-written kubeconfigs sometimes wrap the base64 over lines.
            return base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise KubeConfigError(f"{self.where}: {key} is not valid base64 PEM") from None

    def one_of(self, file_key: str, data_key: str) -> None:
        if self.body.get(file_key) and self.body.get(data_key):
            raise KubeConfigError(f"{self.where}: set {file_key} or {data_key}, not both")


def check_user(user: Fields, policy: Policy) -> None:
    """Refuse what this policy does not allow, before anything is used."""
    _refuse_unknown(user.body, _USER_FIELDS, f"{user.where}:")
    provider = user.body.get("auth-provider")
    if provider:
        name = provider.get("name") if isinstance(provider, dict) else None
        raise KubeConfigError(
            f"{user.where}: auth-provider {name or '?'!r} is not supported (client-go dropped the "
            "gcp and azure providers in v1.26); use an exec plugin, e.g. kubelogin for OIDC"
        )
    if user.body.get("exec") and not policy.exec_plugins:
        raise KubeConfigError(
            f"{user.where}: uses an exec credential plugin; a kubeconfig from a Secret may not "
            "run commands in the operator: embed a token or a client certificate instead"
        )
    if not policy.local_files:
        used = [f for f in _FILE_FIELDS if user.body.get(f)]
        if used:
            raise KubeConfigError(
                f"{user.where}: refers to a local file ({used[0]}); a kubeconfig from a Secret "
                "must embed it instead (client-key-data, client-certificate-data, token…)"
            )
    if user.body.get("exec") and (user.body.get("token") or user.body.get("tokenFile")):
        raise KubeConfigError(f"{user.where}: set exec or a token, not both")
    has_basic = bool(user.body.get("username") or user.body.get("password"))
    if has_basic and (user.body.get("token") or user.body.get("tokenFile")):
        # client-go: "username/password or bearer token may be set, but not both".
        raise KubeConfigError(f"{user.where}: set username/password or a token, not both")
    user.one_of("client-certificate", "client-certificate-data")
    user.one_of("client-key", "client-key-data")
    if not user.text("as") and (
        user.text("as-uid") or user.body.get("as-groups") or user.body.get("as-user-extra")
    ):
        raise KubeConfigError(
            f"{user.where}: as-uid, as-groups and as-user-extra need as (the user to impersonate)"
        )


def check_cluster(cluster: Fields, policy: Policy) -> str:
    """Refuse what the policy does not allow; returns the server URL."""
    _refuse_unknown(cluster.body, _CLUSTER_FIELDS, f"{cluster.where}:")
    server = cluster.text("server")
    if server is None:
        raise KubeConfigError(f"{cluster.where}: has no server")
    if not server.startswith(("https://", "http://")):
        raise KubeConfigError(f"{cluster.where}: server must be an http(s) URL")
    if not policy.local_files and cluster.body.get("certificate-authority"):
        raise KubeConfigError(
            f"{cluster.where}: refers to a local file (certificate-authority); a kubeconfig "
            "from a Secret must embed it instead (certificate-authority-data)"
        )
    cluster.one_of("certificate-authority", "certificate-authority-data")
    has_ca = bool(
        cluster.body.get("certificate-authority") or cluster.body.get("certificate-authority-data")
    )
    if cluster.flag("insecure-skip-tls-verify") and has_ca:
        # kubectl: "specifying a root certificates file with the insecure flag is not allowed".
        raise KubeConfigError(
            f"{cluster.where}: insecure-skip-tls-verify together with a certificate authority is "
            "refused (as kubectl does): remove one of them"
        )
    cluster.flag("disable-compression")
    cluster.text("tls-server-name")
    proxy = cluster.text("proxy-url")
    if proxy is not None:
        parts = urlsplit(proxy)
        if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
            raise KubeConfigError(
                f"{cluster.where}: proxy-url must be an http://, https:// or socks5:// URL"
            )
    if policy.egress_rules:
        problem = static_url_problem(server)
        if problem is not None:
            raise KubeConfigError(f"{cluster.where}: server refused: {problem}")
    return server


def exec_config(
    user: Fields, *, cluster: Fields, cluster_info_ca: str | None, resolve: Any
) -> ExecConfig | None:
    """The user's exec stanza, validated (its own unknown fields refused too)."""
    raw = user.body.get("exec")
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise KubeConfigError(f"{user.where}: exec must be a mapping")
    stanza = Fields(raw, f"{user.where} exec")
    _refuse_unknown(raw, _EXEC_FIELDS, f"{stanza.where}:")
    command = stanza.text("command")
    if command is None:
        raise KubeConfigError(f"{stanza.where}: command is required")
    version = stanza.text("apiVersion")
    if version not in SUPPORTED_VERSIONS:
        raise KubeConfigError(
            f"{stanza.where}: apiVersion {version!r} is not supported; use "
            f"{' or '.join(SUPPORTED_VERSIONS)} (v1alpha1 was removed in Kubernetes 1.24)"
        )
    mode = stanza.text("interactiveMode")
    if mode is None and version == V1:
        raise KubeConfigError(f"{stanza.where}: interactiveMode is required for {V1}")
    if mode is not None and mode not in INTERACTIVE_MODES:
        raise KubeConfigError(
            f"{stanza.where}: interactiveMode must be one of {', '.join(INTERACTIVE_MODES)}"
        )
    env: list[tuple[str, str]] = []
    for item in raw.get("env") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise KubeConfigError(f"{stanza.where}: every env entry needs a name and a value")
        env.append((item["name"], str(item.get("value") or "")))
    # client-go: a command with a path separator is relative to the kubeconfig; a bare name
    # is looked up on PATH.
    if os.sep in command and not os.path.isabs(command):
        command = resolve(command)
    return ExecConfig(
        command=command,
        api_version=version,
        args=stanza.texts("args"),
        env=tuple(env),
        install_hint=stanza.text("installHint"),
        provide_cluster_info=stanza.flag("provideClusterInfo"),
        interactive_mode=mode or "IfAvailable",
        cluster_info=_cluster_info(cluster, cluster_info_ca),
    )


def _cluster_info(cluster: Fields, ca_pem: str | None) -> dict[str, Any]:
    """`spec.cluster` of the ExecCredential handed to a plugin with provideClusterInfo."""
    body = cluster.body
    info: dict[str, Any] = {"server": body.get("server")}
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url", "disable-compression"):
        if body.get(key):
            info[key] = body[key]
    if ca_pem:
        info["certificate-authority-data"] = base64.b64encode(ca_pem.encode()).decode()
    for extension in body.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == CLUSTER_CONFIG_EXTENSION:
            info["config"] = extension.get("extension")
    return info
