"""Where credentials may be sent (bottom layer): the rules every credential-carrying URL obeys.

Client ids and secrets, refresh tokens and bearer tokens go

- over https only; plain http only to a host *named* as loopback (`localhost`, `127.0.0.1`,
  `[::1]`: the simulator), because a name that happens to resolve to loopback today may not
  tomorrow;
- never to a link-local or cloud-metadata address: 169.254.169.254 (and its aliases) hands out
  the node's cloud credentials, and an endpoint pointing there is an exfiltration attempt or
  a mistake, never an upstream;
- not to an in-cluster service name (`*.svc`, `*.cluster.local`, `kubernetes.default`) unless
  an allow-list names it: such services often trust whoever reaches them from inside.

The same rules run in three places: the CRD (pattern and CEL, so `kubectl apply` refuses),
the models (so `sync -f` agrees with the API server), and the egress guard at connect time,
after DNS resolution, which catches a name resolving to a metadata address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from inventory_sync.errors import EndpointRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "127.0.0.1", "::1"})
#: Names cloud providers serve their instance-metadata API under (GCP, AWS, Oracle, Alibaba).
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
#: Metadata addresses outside the link-local ranges: AWS's IPv6 IMDS and Alibaba Cloud's.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)
#: Suffixes of in-cluster service names (Kubernetes DNS), and the API server's short names.
IN_CLUSTER_SUFFIXES = (".svc", ".cluster.local", ".svc.cluster.local")
IN_CLUSTER_NAMES = frozenset({"kubernetes", "kubernetes.default", "kubernetes.default.svc"})
# Characters a URL must never carry: urlsplit() silently drops \t \r \n, so a URL holding them
# would be checked in one shape and sent (or logged) in another.
_FORBIDDEN_CHARACTERS = frozenset(chr(c) for c in (*range(0x00, 0x21), 0x7F))


def normalized_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets or zone: the form the rules compare."""
    bare = host.strip("[]").lower().rstrip(".")
    return bare.split("%", 1)[0]


def host_address(host: str) -> IPAddress | None:
    """The address a host literal denotes, including legacy IPv4 forms the resolver accepts
    (`2852039166`, `0xa9.0xfe.0xa9.0xfe`, `169.254.43518` all mean 169.254.169.254)."""
    bare = normalized_host(host)
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if bare and all(part.isalnum() for part in bare.split(".")) and bare[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def is_loopback_host(host: str) -> bool:
    """Named as loopback: localhost or a loopback address literal (not a name resolving there)."""
    bare = normalized_host(host)
    if bare in LOOPBACK_NAMES:
        return True
    address = host_address(bare)
    return address is not None and address.is_loopback


def address_problem(address: IPAddress) -> str | None:
    """Why credentials must not go to `address`, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_link_local:
        return f"{address} is a link-local address (cloud metadata lives there)"
    if address.is_unspecified or address.is_multicast:
        return f"{address} is not a host address"
    return None


def is_in_cluster_host(host: str) -> bool:
    bare = normalized_host(host)
    return bare in IN_CLUSTER_NAMES or bare.endswith(IN_CLUSTER_SUFFIXES)


@dataclass(frozen=True)
class EndpointPolicy:
    """The rules above, with the in-cluster allow-list (INVENTORY_SYNC_ALLOWED_IN_CLUSTER_HOSTS)."""

    allowed_in_cluster_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def allowing(cls, hosts: Iterable[str]) -> EndpointPolicy:
        return cls(frozenset(normalized_host(h) for h in hosts if h.strip()))

    def url_problem(self, url: str, *, in_cluster: bool = True) -> str | None:
        """Why credentials must not be sent to `url`, or None. Static: no DNS lookup.
        `in_cluster=False` skips the in-cluster rule (the schema cannot know the allow-list)."""
        return static_url_problem(url) or (self.in_cluster_problem(url) if in_cluster else None)

    def in_cluster_problem(self, url: str) -> str | None:
        host = urlsplit(url).hostname or ""
        if is_in_cluster_host(host) and normalized_host(host) not in self.allowed_in_cluster_hosts:
            return (
                f"{normalized_host(host)} is an in-cluster service name; credentials go there "
                "only if INVENTORY_SYNC_ALLOWED_IN_CLUSTER_HOSTS (Helm: "
                "operator.allowedInClusterHosts) lists it"
            )
        return None

    def check_url(self, url: str, *, what: str) -> None:
        """Raise EndpointRefused naming `what` (a field path or a request) when `url` is refused."""
        problem = self.url_problem(url)
        if problem is not None:
            raise EndpointRefused(f"{what}: {problem}")

    def check_request(self, *, scheme: str, host: str, what: str) -> None:
        """The per-request form of check_url, for the egress guard (httpx gives parts)."""
        self.check_url(f"{scheme}://{_bracketed(host)}/", what=what)


def static_url_problem(url: str) -> str | None:
    """The rules that need neither DNS nor the allow-list (what the CRD and models enforce)."""
    if any(c in _FORBIDDEN_CHARACTERS for c in url):
        return "the URL contains whitespace or a control character"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return "not a valid URL"
    del port
    if parts.scheme not in ("https", "http"):
        return "the URL must start with https://"
    host = parts.hostname or ""
    if not host:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the URL must not carry user information (user:password@)"
    if parts.scheme == "http" and not is_loopback_host(host):
        return "plain http is allowed only to a loopback host (the simulator); use https"
    if normalized_host(host) in METADATA_NAMES:
        return f"{normalized_host(host)} is a cloud metadata service"
    address = host_address(host)
    if address is not None:
        return address_problem(address)
    return None


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
