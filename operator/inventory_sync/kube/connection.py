"""Where a Kubernetes API server is and how to authenticate to it (kube layer): in-cluster or kubeconfig.

A `KubeConnection` is plain data plus its credential source (kube/credentials.py): the token,
token file or exec plugin that changes over time. `KubeClient` (httpx) and the operator's kopf
login (aiohttp) both turn it into requests, so what a kubeconfig says is honoured by both:
client certificates, tokens, token files, exec plugins, basic auth, impersonation, proxy-url,
tls-server-name and disable-compression. kubeconfig parsing and its refusals live in
kube/kubeconfig.py.
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from inventory_sync.errors import KubeConfigError
from inventory_sync.kube import kubeconfig as kc
from inventory_sync.kube.credentials import (
    Credential,
    CredentialSource,
    ExecCredentials,
    FixedCredentials,
    TokenFileCredentials,
)
from inventory_sync.kube.exec_plugin import ExecConfig, run_plugin
from inventory_sync.kube.tls import TLSSettings

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = Path("~/.kube/config")
# Characters allowed in an HTTP header name besides letters and digits (RFC 9110 tchar): an
# extra key is percent-encoded beyond them, as client-go does.
_HEADER_SAFE = "!#$&'*+-.^_`|~"


@dataclass(frozen=True)
class Impersonation:
    """kubeconfig's `as`, `as-uid`, `as-groups` and `as-user-extra`: act as another identity
    (the API server checks the `impersonate` RBAC verb of the real one)."""

    user: str
    uid: str | None = None
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def headers(self) -> list[tuple[str, str]]:
        out = [("Impersonate-User", self.user)]
        if self.uid:
            out.append(("Impersonate-Uid", self.uid))
        out += [("Impersonate-Group", group) for group in self.groups]
        for key, values in self.extra:
            out += [(f"Impersonate-Extra-{quote(key, safe=_HEADER_SAFE)}", v) for v in values]
        return out


@dataclass(frozen=True)
class KubeConnection:
    """An API server and the identity to use there. Secrets are kept out of `repr`."""

    server: str
    namespace: str = "default"
    ca_file: str | None = None
    #: PEM text of the trusted CA bundle (decoded `certificate-authority-data`).
    ca_data: str | None = None
    token: str | None = field(default=None, repr=False)
    #: Read on every request; used only when `token` is unset.
    token_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    client_cert_data: str | None = None
    client_key_data: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    insecure: bool = False
    #: The name to verify the server certificate against and send as SNI (tls-server-name).
    tls_server_name: str | None = None
    #: http(s):// (CONNECT) or socks5:// proxy; may hold proxy credentials, hence no repr.
    proxy_url: str | None = field(default=None, repr=False)
    disable_compression: bool = False
    impersonate: Impersonation | None = None
    exec_plugin: ExecConfig | None = None
    #: Refuse link-local and metadata addresses at connect time (kubeconfigs from Secrets).
    guarded: bool = False
    #: Where this came from ("in-cluster", "kubeconfig ~/.kube/config context kind"): for messages.
    origin: str = "explicit"
    #: The token, token file or exec plugin behind requests (see kube/credentials.py).
    credentials: CredentialSource = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.server.startswith(("https://", "http://")):
            raise KubeConfigError(f"{self.origin}: server must be an http(s) URL")
        if self.insecure and (self.ca_file or self.ca_data):
            raise KubeConfigError(
                f"{self.origin}: insecure-skip-tls-verify together with a certificate authority "
                "is refused (as kubectl does)"
            )
        source: CredentialSource
        if self.exec_plugin is not None:
            plugin, origin = self.exec_plugin, self.origin
            source = ExecCredentials(lambda: run_plugin(plugin, origin=origin))
        elif self.token or not self.token_file:
            source = FixedCredentials(self.token)
        else:
            source = TokenFileCredentials(self.token_file, origin=self.origin)
        object.__setattr__(self, "credentials", source)

    @property
    def host(self) -> str:
        """host:port of the server, for messages."""
        parts = urlsplit(self.server)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname}:{port}"

    @property
    def proxy_display(self) -> str | None:
        """The proxy URL without credentials, fit for messages."""
        if not self.proxy_url:
            return None
        parts = urlsplit(self.proxy_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}"

    def bearer_token(self) -> str | None:
        """The token at hand without running anything (a token file is read afresh)."""
        credential = self.credentials.cached()
        return credential.token if credential is not None else None

    def tls(self, credential: Credential | None = None) -> TLSSettings:
        """TLS settings; an exec plugin's client certificate, when it gave one, is used."""
        use_exec_cert = credential is not None and credential.client_cert_data is not None
        return TLSSettings(
            ca_file=self.ca_file,
            ca_data=self.ca_data,
            insecure=self.insecure,
            server_name=self.tls_server_name,
            client_cert_file=None if use_exec_cert else self.client_cert_file,
            client_key_file=None if use_exec_cert else self.client_key_file,
            client_cert_data=credential.client_cert_data
            if use_exec_cert and credential
            else self.client_cert_data,
            client_key_data=credential.client_key_data
            if use_exec_cert and credential
            else self.client_key_data,
        )

    def ssl_context(self, credential: Credential | None = None) -> ssl.SSLContext:
        """TLS settings: the CA bundle (else the system's), client certificate, insecure flag,
        server-name override."""
        return self.tls(credential).context(origin=self.origin)

    def headers(self, credential: Credential) -> list[tuple[str, str]]:
        """Authorization, impersonation and encoding headers for one request."""
        out: list[tuple[str, str]] = []
        if credential.token:
            out.append(("Authorization", f"Bearer {credential.token}"))
        elif self.username or self.password:
            pair = f"{self.username or ''}:{self.password or ''}".encode()
            out.append(("Authorization", f"Basic {base64.b64encode(pair).decode()}"))
        if self.impersonate is not None:
            out += self.impersonate.headers()
        if self.disable_compression:
            out.append(("Accept-Encoding", "identity"))
        return out

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
        config = kc.Kubeconfig.load_files([Path(path).expanduser()])
        return from_kubeconfig(config, context, kc.FROM_FILE)

    @classmethod
    def from_kubeconfig_text(
        cls, text: str, context: str | None = None, *, allow_local_files: bool = False
    ) -> KubeConnection:
        """A kubeconfig held as text, typically a Secret's key: embedded credentials only.

        Exec plugins and local file references (tokenFile, certificate-authority, client-key…)
        are refused unless `allow_local_files` (files only): whoever writes the Secret must not
        be able to run commands in the operator or make it send its own token.
        """
        config = kc.Kubeconfig.parse(text, origin="kubeconfig", base_dir=None)
        policy = kc.Policy(local_files=True, exec_plugins=False, egress_rules=True)
        return from_kubeconfig(config, context, policy if allow_local_files else kc.FROM_SECRET)

    @classmethod
    def default(
        cls,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> KubeConnection:
        """`--kubeconfig FILE`, else $KUBECONFIG (files joined with os.pathsep, merged), else
        ~/.kube/config, else in-cluster: the order kubectl and client-go use. `context`
        (`--context`) picks a context other than current-context."""
        env = os.environ if environ is None else environ
        if kubeconfig:
            return cls.from_kubeconfig_file(kubeconfig, context)
        listed = [Path(p).expanduser() for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
        if listed:
            existing = [p for p in listed if p.is_file()]
            if not existing:
                raise KubeConfigError("KUBECONFIG names no existing file")
            return from_kubeconfig(kc.Kubeconfig.load_files(existing), context, kc.FROM_FILE)
        home = DEFAULT_KUBECONFIG.expanduser()
        if home.is_file():
            return cls.from_kubeconfig_file(home, context)
        if context:
            raise KubeConfigError(f"--context {context}: there is no kubeconfig to pick it from")
        return cls.in_cluster(environ=env)


def from_kubeconfig(
    config: kc.Kubeconfig, context: str | None, policy: kc.Policy
) -> KubeConnection:
    """Build the connection one context describes, refusing anything `policy` does not allow."""
    name, ctx, cluster_name, cluster_body, user_name, user_body = config.context_parts(context)
    cluster = kc.Fields(cluster_body, f"{config.origin}: cluster {cluster_name!r}")
    user = kc.Fields(user_body, f"{config.origin}: user {user_name!r}")
    server = kc.check_cluster(cluster, policy)
    kc.check_user(user, policy)

    def cluster_file(key: str) -> str | None:
        value = cluster.text(key)
        return config.resolve("cluster", cluster_name, value) if value else None

    def user_file(key: str) -> str | None:
        value = user.text(key)
        return config.resolve("user", user_name, value) if value else None

    ca_file = cluster_file("certificate-authority")
    ca_data = cluster.pem("certificate-authority-data")
    plugin = kc.exec_config(
        user,
        cluster=cluster,
        cluster_info_ca=ca_data or _read_optional(ca_file),
        resolve=lambda path: config.resolve("user", user_name, path),
    )
    namespace = kc.Fields(ctx, f"{config.origin}: context {name!r}").text("namespace")
    return KubeConnection(
        server=server.rstrip("/"),
        namespace=namespace or "default",
        ca_file=ca_file,
        ca_data=ca_data,
        token=user.text("token"),
        token_file=None if user.text("token") else user_file("tokenFile"),
        client_cert_file=user_file("client-certificate"),
        client_key_file=user_file("client-key"),
        client_cert_data=user.pem("client-certificate-data"),
        client_key_data=user.pem("client-key-data"),
        username=user.text("username"),
        password=user.text("password"),
        insecure=cluster.flag("insecure-skip-tls-verify"),
        tls_server_name=cluster.text("tls-server-name"),
        proxy_url=cluster.text("proxy-url"),
        disable_compression=cluster.flag("disable-compression"),
        impersonate=_impersonation(user),
        exec_plugin=plugin,
        guarded=policy.egress_rules,
        origin=f"{config.origin} context {name}",
    )


def _impersonation(user: kc.Fields) -> Impersonation | None:
    name = user.text("as")
    if name is None:
        return None
    raw_extra: Any = user.body.get("as-user-extra") or {}
    if not isinstance(raw_extra, dict) or not all(
        isinstance(v, list) and all(isinstance(i, str) for i in v) for v in raw_extra.values()
    ):
        raise KubeConfigError(f"{user.where}: as-user-extra must map names to lists of strings")
    return Impersonation(
        user=name,
        uid=user.text("as-uid"),
        groups=user.texts("as-groups"),
        extra=tuple((str(k), tuple(v)) for k, v in sorted(raw_extra.items())),
    )


def _read_optional(path: str | None) -> str | None:
    """A CA file's PEM for an exec plugin's cluster info; unreadable is reported later, by TLS."""
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return None
