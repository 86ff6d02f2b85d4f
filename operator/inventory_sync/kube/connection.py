"""Where a Kubernetes API server is and how to authenticate to it (kube layer): in-cluster or kubeconfig.

A `KubeConnection` is plain data; `KubeClient` turns it into an HTTP client. Supported
credentials are what a controller needs: a bearer token (inline or a file re-read on every
request, so rotated projected ServiceAccount tokens keep working) and client certificates.
Exec plugins and auth providers run local programs and are refused with a clear error.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inventory_sync.errors import KubeConfigError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = Path("~/.kube/config")

# Kubeconfig fields that name files on the machine reading the kubeconfig.
_FILE_FIELDS = ("certificate-authority", "client-certificate", "client-key", "tokenFile")


@dataclass(frozen=True)
class KubeConnection:
    """An API server and the identity to use there. Secrets are kept out of `repr`."""

    server: str
    namespace: str = "default"
    ca_file: str | None = None
    #: PEM text of the trusted CA bundle (decoded `certificate-authority-data`).
    ca_data: str | None = None
    token: str | None = field(default=None, repr=False)
    #: Read on every request; wins over `token` only when `token` is unset.
    token_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    client_cert_data: str | None = None
    client_key_data: str | None = field(default=None, repr=False)
    insecure: bool = False
    #: Where this came from ("in-cluster", "kubeconfig ~/.kube/config context kind"): for messages.
    origin: str = "explicit"

    def __post_init__(self) -> None:
        if not self.server.startswith(("https://", "http://")):
            raise KubeConfigError(f"{self.origin}: server must be an http(s) URL")

    def bearer_token(self) -> str | None:
        """The token for the next request; a token file is read afresh each time."""
        if self.token:
            return self.token
        if self.token_file is None:
            return None
        try:
            # A few bytes from a local (usually tmpfs) file: cheap enough to do per request.
            return Path(self.token_file).read_text(encoding="utf-8").strip() or None
        except OSError as error:
            raise KubeConfigError(
                f"{self.origin}: cannot read token file {self.token_file}: {error.strerror}"
            ) from None

    def ssl_context(self) -> ssl.SSLContext:
        """TLS settings: the CA bundle (else the system's), client certificate, insecure flag."""
        try:
            context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        except (ssl.SSLError, OSError, ValueError) as error:
            raise KubeConfigError(
                f"{self.origin}: certificate authority is not usable ({_reason(error)})"
            ) from None
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            if self.client_cert_file or self.client_key_file:
                context.load_cert_chain(self.client_cert_file or "", self.client_key_file)
            elif self.client_cert_data or self.client_key_data:
                _load_cert_chain_data(context, self.client_cert_data, self.client_key_data)
        except (ssl.SSLError, OSError, ValueError) as error:
            raise KubeConfigError(
                f"{self.origin}: client certificate or key is not usable ({_reason(error)})"
            ) from None
        return context

    @classmethod
    def in_cluster(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        directory: Path = SERVICE_ACCOUNT_DIR,
    ) -> KubeConnection:
        """The cluster the process runs in, as its ServiceAccount (the projected token)."""
        env = os.environ if environ is None else environ
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise KubeConfigError(
                "in-cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set "
                "(not running in a pod?)"
            )
        token_file = directory / "token"
        if not token_file.is_file():
            raise KubeConfigError(f"in-cluster: no ServiceAccount token at {token_file}")
        namespace_file = directory / "namespace"
        namespace = (
            namespace_file.read_text(encoding="utf-8").strip() if namespace_file.is_file() else ""
        )
        ca_file = directory / "ca.crt"
        return cls(
            server=f"https://{f'[{host}]' if ':' in host else host}:{port}",
            namespace=namespace or "default",
            ca_file=str(ca_file) if ca_file.is_file() else None,
            token_file=str(token_file),
            origin="in-cluster",
        )

    @classmethod
    def from_kubeconfig_file(cls, path: str | Path, context: str | None = None) -> KubeConnection:
        """A context (default: current-context) of a kubeconfig file; relative paths in it
        are relative to the file, as kubectl reads them."""
        return _Kubeconfig.load_files([Path(path)]).connection(context, allow_files=True)

    @classmethod
    def from_kubeconfig_text(
        cls, text: str, context: str | None = None, *, allow_local_files: bool = False
    ) -> KubeConnection:
        """A kubeconfig held as text, typically a Secret's key.

        Local file references (tokenFile, certificate-authority, client-key…) are refused
        unless `allow_local_files`: whoever writes the Secret must not be able to make the
        operator send its own token or read its files.
        """
        config = _Kubeconfig.parse(text, origin="kubeconfig", base_dir=None)
        return config.connection(context, allow_files=allow_local_files)

    @classmethod
    def default(cls, *, environ: Mapping[str, str] | None = None) -> KubeConnection:
        """$KUBECONFIG (files joined with os.pathsep, merged), else ~/.kube/config, else
        in-cluster: the order kubectl and client-go use."""
        env = os.environ if environ is None else environ
        listed = [Path(p).expanduser() for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
        if listed:
            existing = [p for p in listed if p.is_file()]
            if not existing:
                raise KubeConfigError("KUBECONFIG names no existing file")
            return _Kubeconfig.load_files(existing).connection(None, allow_files=True)
        home = DEFAULT_KUBECONFIG.expanduser()
        if home.is_file():
            return cls.from_kubeconfig_file(home)
        return cls.in_cluster(environ=env)


def _reason(error: BaseException) -> str:
    # ssl errors name the failing step ("[SSL] PEM lib"), never the material itself.
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__


def _load_cert_chain_data(context: ssl.SSLContext, cert: str | None, key: str | None) -> None:
    """load_cert_chain only reads files: write the PEM to private temp files, load, delete."""
    if not cert or not key:
        raise ValueError("both certificate and key are needed")
    with tempfile.TemporaryDirectory(prefix="inventory-sync-kube-") as directory:  # mode 0700
        paths = []
        for name, pem in (("client.crt", cert), ("client.key", key)):
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(pem)
            paths.append(path)
        context.load_cert_chain(paths[0], paths[1])


@dataclass
class _Kubeconfig:
    """The named clusters/users/contexts of one or more merged kubeconfig files."""

    origin: str
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    current_context: str = ""

    @classmethod
    def load_files(cls, paths: list[Path]) -> _Kubeconfig:
        merged = cls(origin=f"kubeconfig {os.pathsep.join(str(p) for p in paths)}")
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as error:
                raise KubeConfigError(f"kubeconfig {path}: {error.strerror}") from None
            merged.merge(cls.parse(text, origin=f"kubeconfig {path}", base_dir=path.parent))
        return merged

    @classmethod
    def parse(cls, text: str, *, origin: str, base_dir: Path | None) -> _Kubeconfig:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            # The YAML error's snippet would quote the document, tokens included: give the line.
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise KubeConfigError(f"{origin}: not valid YAML{where}") from None
        if not isinstance(document, dict):
            raise KubeConfigError(f"{origin}: not a kubeconfig (expected a mapping)")
        config = cls(origin=origin, current_context=str(document.get("current-context") or ""))
        for section, key, target in (
            ("clusters", "cluster", config.clusters),
            ("users", "user", config.users),
            ("contexts", "context", config.contexts),
        ):
            for entry in document.get(section) or []:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise KubeConfigError(f"{origin}: every entry of {section} needs a name")
                body = entry.get(key) or {}
                if not isinstance(body, dict):
                    raise KubeConfigError(f"{origin}: {section} {entry['name']!r} is not a mapping")
                target[entry["name"]] = _absolute_paths(body, base_dir)
        return config

    def merge(self, other: _Kubeconfig) -> None:
        """The first file to define a name or current-context wins (kubectl's rule)."""
        for mine, theirs in (
            (self.clusters, other.clusters),
            (self.users, other.users),
            (self.contexts, other.contexts),
        ):
            for name, body in theirs.items():
                mine.setdefault(name, body)
        self.current_context = self.current_context or other.current_context

    def connection(self, context: str | None, *, allow_files: bool) -> KubeConnection:
        name = context or self.current_context
        if not name:
            raise KubeConfigError(f"{self.origin}: no context given and no current-context set")
        ctx = self.contexts.get(name)
        if ctx is None:
            raise KubeConfigError(f"{self.origin}: no context named {name!r}")
        cluster = self.clusters.get(str(ctx.get("cluster", "")))
        if cluster is None:
            raise KubeConfigError(f"{self.origin}: context {name!r} names an unknown cluster")
        user_name = str(ctx.get("user") or "")
        user = self.users.get(user_name, {}) if user_name else {}
        if user_name and user_name not in self.users:
            raise KubeConfigError(f"{self.origin}: context {name!r} names an unknown user")
        for unsupported, what in (
            ("exec", "an exec credential plugin"),
            ("auth-provider", "an auth-provider"),
            ("username", "basic authentication"),
        ):
            if user.get(unsupported):
                raise KubeConfigError(
                    f"{self.origin}: user {user_name!r} uses {what}, which is not supported; "
                    "use a token or a client certificate"
                )
        if not allow_files:
            for body, kind in ((cluster, "cluster"), (user, "user")):
                used = [f for f in _FILE_FIELDS if body.get(f)]
                if used:
                    raise KubeConfigError(
                        f"{self.origin}: {kind} refers to a local file ({used[0]}); embed it "
                        "instead (certificate-authority-data, client-key-data, token…)"
                    )
        server = cluster.get("server")
        if not isinstance(server, str) or not server:
            raise KubeConfigError(f"{self.origin}: the cluster of context {name!r} has no server")
        origin = f"{self.origin} context {name}"
        return KubeConnection(
            server=server.rstrip("/"),
            namespace=str(ctx.get("namespace") or "default"),
            ca_file=_opt(cluster, "certificate-authority"),
            ca_data=_decoded(cluster, "certificate-authority-data", origin),
            # kubeconfig rule (client-go): an inline token wins over tokenFile.
            token=_opt(user, "token"),
            token_file=None if user.get("token") else _opt(user, "tokenFile"),
            client_cert_file=_opt(user, "client-certificate"),
            client_key_file=_opt(user, "client-key"),
            client_cert_data=_decoded(user, "client-certificate-data", origin),
            client_key_data=_decoded(user, "client-key-data", origin),
            insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
            origin=origin,
        )


def _absolute_paths(body: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    if base_dir is None:
        return dict(body)
    out = dict(body)
    for key in _FILE_FIELDS:
        value = out.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            out[key] = str(base_dir / value)
    return out


def _opt(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return str(value) if value else None


def _decoded(body: dict[str, Any], key: str, origin: str) -> str | None:
    """A base64 `*-data` field as PEM text; the error names the field, never its content."""
    value = body.get(key)
    if not value:
        return None
    try:
        # Hand-written kubeconfigs sometimes wrap the base64 over lines.
        compact = "".join(str(value).split())
        return base64.b64decode(compact, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise KubeConfigError(f"{origin}: {key} is not valid base64 PEM") from None
