"""Typed specs of the two custom resources (SyncSchedule, Fabric); the operator and CLI parse into these."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from inventory_sync.durations import format_duration, parse_duration
from inventory_sync.endpoints import static_url_problem
from inventory_sync.errors import SpecError

GROUP = "inventorysync.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Below a minute an interval would hammer rate-limited upstreams (GLP subscriptions: 60/min).
MIN_INTERVAL = timedelta(minutes=1)
DEFAULT_TIMEOUT = timedelta(minutes=10)
#: A GreenLake source walks everything (and so notices deletions) at least this often; between
#: full walks it fetches only what changed (docs/sync-engine.md, "Incremental sync").
DEFAULT_FULL_SYNC_INTERVAL = timedelta(hours=24)
#: Also the CRD's CEL message.
FULL_SYNC_INTERVAL_MESSAGE = "fullSyncInterval must be 0s (always walk everything) or at least 1m"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
# The CRDs' maxLength on interval/timeout: a bound for the CEL cost estimate, mirrored here.
MAX_DURATION_LENGTH = 32

DEFAULT_GREENLAKE_URL = "https://global.api.greenlake.hpe.com"
DEFAULT_TOKEN_URL = "https://sso.common.cloud.hpe.com/as/token.oauth2"
#: Classic Central exchanges refresh tokens at its API gateway, under this path.
CLASSIC_TOKEN_PATH = "/oauth2/token"
#: Also the CRD's CEL message: both must say the same.
SOURCE_TYPE_MESSAGE = "exactly one of greenlake, arubaCentral or arubaCentralClassic must be set"

#: Also the CRD's CEL message for a Fabric `context` without `kubeconfigSecretRef`.
CONTEXT_MESSAGE = "context picks a context of the kubeconfig Secret: set kubeconfigSecretRef too"
# kubeconfig context names are free text (EKS: arn:aws:eks:…:cluster/x, GKE: gke_p_z_n),
# but never hold control characters or whitespace at either end.
CONTEXT_NAME = r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"

# The CRDs' maxLength/maxItems, mirrored so a manifest the CLI accepts is one `kubectl apply`
# accepts too (tests/unit/test_crd_model_parity.py compares the two schemas).
Name = Annotated[str, Field(max_length=63)]
#: The CRDs' pattern for URLs credentials are sent to: no whitespace (a newline included), no
#: user info; the CEL rules and `endpoints.static_url_problem` say the rest.
URL_PATTERN = r"^https?://[^\s/?#@]+([/?#][^\s]*)?$"


def _credential_url(value: str) -> str:
    problem = static_url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Url = Annotated[str, Field(pattern=URL_PATTERN, max_length=2048), AfterValidator(_credential_url)]
Key = Annotated[str, Field(max_length=253)]


def _duration(value: Any) -> timedelta:
    """A Go-style duration exactly as the CRD accepts it (its pattern has no room for spaces)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str) and (value != value.strip() or len(value) > MAX_DURATION_LENGTH):
        raise ValueError(
            f"invalid duration {value!r}: at most {MAX_DURATION_LENGTH} characters, no spaces"
        )
    return parse_duration(value)


class _Model(BaseModel):
    """camelCase on the wire (as Kubernetes users write it), snake_case in Python; unknown
    fields are errors so a typo never silently disables a setting."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class SecretRef(_Model):
    """Credentials held in a Secret in the resource's namespace; the keys default to the
    OAuth2 client-credentials names."""

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)
    client_id_key: Key = "client_id"
    client_secret_key: Key = "client_secret"

    @property
    def required_keys(self) -> list[str]:
        """The Secret keys a source needs (what the preflight checks)."""
        return [self.client_id_key, self.client_secret_key]


class RefreshSecretRef(SecretRef):
    """Classic Central credentials: the API client plus a refresh token that the upstream
    rotates on every refresh, so the operator writes each new one back to this key."""

    refresh_token_key: Key = "refresh_token"

    @property
    def required_keys(self) -> list[str]:
        return [*super().required_keys, self.refresh_token_key]


class GreenLakeResource(StrEnum):
    SUBSCRIPTIONS = "subscriptions"
    DEVICES = "devices"


class GreenLakeSource(_Model):
    """HPE GreenLake Platform: one workspace, one resource list."""

    resource: GreenLakeResource
    workspace_id: str = Field(min_length=1, max_length=128)
    credentials_secret_ref: SecretRef
    endpoint: Url = DEFAULT_GREENLAKE_URL
    token_url: Url = DEFAULT_TOKEN_URL
    page_size: int | None = Field(default=None, ge=1, le=2000, strict=True)
    #: None → DEFAULT_FULL_SYNC_INTERVAL; 0s walks everything on every run.
    full_sync_interval: timedelta | None = None

    @field_validator("full_sync_interval", mode="before")
    @classmethod
    def _parse_full_sync_interval(cls, value: Any) -> timedelta | None:
        if value is None:
            return None
        parsed = _duration(value)
        if timedelta(0) < parsed < MIN_INTERVAL:
            raise ValueError(FULL_SYNC_INTERVAL_MESSAGE)
        return parsed

    @property
    def effective_full_sync_interval(self) -> timedelta:
        """How long after a full walk the next one is due (between them: changes only)."""
        if self.full_sync_interval is None:
            return DEFAULT_FULL_SYNC_INTERVAL
        return self.full_sync_interval


#: New Central API versions of the device inventory: v1 (current), v1alpha1 (the older path).
CentralApiVersion = Literal["v1", "v1alpha1"]


class ArubaCentralSource(_Model):
    """New HPE Aruba Networking Central (device inventory paged by page number)."""

    endpoint: Url
    workspace_id: str = Field(min_length=1, max_length=128)
    credentials_secret_ref: SecretRef
    token_url: Url = DEFAULT_TOKEN_URL
    api_version: CentralApiVersion = "v1"
    # 1000 is the largest page the API is known to accept: fewer requests of the budget.
    page_size: int = Field(default=1000, ge=1, le=1000, strict=True)


class ArubaCentralClassicSource(_Model):
    """Classic HPE Aruba Networking Central (offset-paged device inventory, rotating refresh
    tokens); `account_id` is the customer id: the store scope and the rate-limit key."""

    endpoint: Url
    account_id: str = Field(min_length=1, max_length=128)
    credentials_secret_ref: RefreshSecretRef
    #: None → `endpoint` + /oauth2/token (see `effective_token_url`).
    token_url: Url | None = None
    page_size: int = Field(default=50, ge=1, le=50, strict=True)

    @property
    def effective_token_url(self) -> str:
        """Where refresh tokens are exchanged: tokenUrl, else the API gateway's /oauth2/token."""
        return self.token_url or self.endpoint.rstrip("/") + CLASSIC_TOKEN_PATH


class Source(_Model):
    """One named upstream list; exactly one of the source types is set."""

    name: str = Field(pattern=DNS_LABEL, max_length=63)
    depends_on: list[Name] | None = Field(default=None, max_length=32)
    greenlake: GreenLakeSource | None = None
    aruba_central: ArubaCentralSource | None = None
    aruba_central_classic: ArubaCentralClassicSource | None = None

    @model_validator(mode="after")
    def _exactly_one_type(self) -> Source:
        types = (self.greenlake, self.aruba_central, self.aruba_central_classic)
        if sum(t is not None for t in types) != 1:
            raise ValueError(SOURCE_TYPE_MESSAGE)
        return self

    @property
    def kind(self) -> str:
        """A short label for reports: greenlake/subscriptions, greenlake/devices, arubaCentral,
        arubaCentralClassic."""
        if self.greenlake is not None:
            return f"greenlake/{self.greenlake.resource.value}"
        if self.aruba_central_classic is not None:
            return "arubaCentralClassic"
        return "arubaCentral"

    @property
    def is_subscriptions(self) -> bool:
        return (
            self.greenlake is not None
            and self.greenlake.resource is GreenLakeResource.SUBSCRIPTIONS
        )

    @property
    def secret_ref(self) -> SecretRef:
        """The credentials Secret; `required_keys` says which of its keys must be set."""
        typed = self.greenlake or self.aruba_central or self.aruba_central_classic
        assert typed is not None  # guaranteed by _exactly_one_type
        return typed.credentials_secret_ref


class ConcurrencyPolicy(StrEnum):
    FORBID = "Forbid"
    REPLACE = "Replace"


class _Scheduled(_Model):
    interval: timedelta
    # strict: the API server refuses "true" for a boolean; so must a manifest read by the CLI.
    suspend: bool = Field(default=False, strict=True)

    @field_validator("interval", mode="before")
    @classmethod
    def _parse_interval(cls, value: Any) -> timedelta:
        parsed = _duration(value)
        if parsed < MIN_INTERVAL:
            raise ValueError(f"must be at least {format_duration(MIN_INTERVAL)}")
        return parsed


class SyncScheduleSpec(_Scheduled):
    """What to sync and how often."""

    #: None → the smaller of 10 minutes and the interval (see `effective_timeout`).
    timeout: timedelta | None = None
    run_on_startup: bool = Field(default=True, strict=True)
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    history_limit: int = Field(default=10, ge=0, le=100, strict=True)
    sources: list[Source] = Field(min_length=1, max_length=32)

    @field_validator("timeout", mode="before")
    @classmethod
    def _parse_timeout(cls, value: Any) -> timedelta | None:
        if value is None:
            return None
        parsed = _duration(value)
        if parsed <= timedelta(0):
            raise ValueError("must be positive")
        return parsed

    @model_validator(mode="after")
    def _check_graph(self) -> SyncScheduleSpec:
        if self.timeout is not None and self.timeout > self.interval:
            raise ValueError("timeout must not exceed interval")
        names = [s.name for s in self.sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique: {', '.join(duplicates)}")
        for source in self.sources:
            for dep in source.depends_on or []:
                if dep not in names:
                    raise ValueError(f"source {source.name!r} dependsOn unknown source {dep!r}")
                if dep == source.name:
                    raise ValueError(f"source {source.name!r} depends on itself")
        cycle = find_cycle(dependency_graph(self.sources))
        if cycle:
            raise ValueError(f"dependsOn forms a cycle: {' -> '.join(cycle)}")
        return self

    @property
    def effective_timeout(self) -> timedelta:
        """A run may take at most this long: spec.timeout, else min(10m, interval)."""
        return self.timeout or min(DEFAULT_TIMEOUT, self.interval)


def dependency_graph(sources: list[Source]) -> dict[str, list[str]]:
    """Each source's prerequisites. Without an explicit dependsOn a source waits for every
    subscriptions source: a device's links resolve against the stored subscriptions (the
    seeds' order)."""
    subscriptions = [s.name for s in sources if s.is_subscriptions]
    graph: dict[str, list[str]] = {}
    for source in sources:
        if source.depends_on is not None:
            graph[source.name] = list(source.depends_on)
        elif source.is_subscriptions:
            graph[source.name] = []
        else:
            graph[source.name] = list(subscriptions)
    return graph


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """Return one cycle as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


#: A Kubernetes API version (v1, v1beta1, v1alpha2); also the CRD's pattern.
API_VERSION_PATTERN = r"^v[0-9]+((alpha|beta)[0-9]+)?$"
#: An API group: empty (the core group) or a DNS subdomain; also the CRD's pattern.
API_GROUP_PATTERN = r"^$|^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


class KindRef(_Model):
    """A Kubernetes kind listed in a fabric, e.g. wiring.githedgehog.com Switch.

    Without `version` the fabric's discovery decides: the group's preferred version when it
    serves the kind, else any version that does (Hedgehog served v1alpha2 before v0.52).
    """

    group: str = Field(pattern=API_GROUP_PATTERN, max_length=253)
    version: str | None = Field(default=None, pattern=API_VERSION_PATTERN, max_length=63)
    kind: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=63)
    plural: str | None = Field(default=None, pattern=DNS_LABEL, max_length=63)

    @property
    def label(self) -> str:
        """`group/Kind`: the kind's name in results and metrics, the same at every version."""
        return f"{self.group}/{self.kind}" if self.group else self.kind


def _hedgehog(group: str, *kinds: str) -> list[KindRef]:
    return [KindRef(group=group, kind=k) for k in kinds]


WIRING_GROUP = "wiring.githedgehog.com"
VPC_GROUP = "vpc.githedgehog.com"

# The 12 kinds the seeds' NetBox plugin syncs (UPSTREAM_APIS.md): the intended wiring and
# VPCs. Their status is empty in real Hedgehog; operational state is in OPERATIONAL_FABRIC_KINDS.
DEFAULT_FABRIC_KINDS: tuple[KindRef, ...] = (
    *_hedgehog(
        VPC_GROUP,
        "VPC", "VPCAttachment", "VPCPeering", "IPv4Namespace",
        "External", "ExternalAttachment", "ExternalPeering",
    ),
    *_hedgehog(WIRING_GROUP, "Connection", "Server", "Switch", "SwitchGroup", "VLANNamespace"),
)  # fmt: skip

# Opt-in kinds with the fabric's operational state (docs/fabrics.md): switch models and ports
# (SwitchProfile), agent heartbeat, software, interfaces, BGP/BFD (Agent status), VNI/VLAN
# allocations (Catalog), DHCP leases (DHCPSubnet), the gateway, and the installer's view.
# Each needs RBAC on its group (Helm: rbac.hedgehog.operational / rbac.hedgehog.fabricator).
OPERATIONAL_FABRIC_KINDS: tuple[KindRef, ...] = (
    *_hedgehog(WIRING_GROUP, "SwitchProfile", "ServerProfile"),
    *_hedgehog("agent.githedgehog.com", "Agent", "Catalog"),
    *_hedgehog("dhcp.githedgehog.com", "DHCPSubnet"),
    *_hedgehog("gateway.githedgehog.com", "Gateway", "GatewayGroup", "GatewayPeering", "VPCInfo"),
    *_hedgehog("gwint.githedgehog.com", "GatewayAgent"),
    *_hedgehog("fabricator.githedgehog.com", "Fabricator", "ControlNode", "FabNode"),
)  # fmt: skip


class KubeconfigSecretRef(_Model):
    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=253)
    key: Key = "kubeconfig"


class FabricSpec(_Scheduled):
    """A cluster whose Hedgehog custom resources are synced."""

    kubeconfig_secret_ref: KubeconfigSecretRef | None = None
    #: A context of the kubeconfig in that Secret; None → its current-context.
    context: str | None = Field(default=None, min_length=1, max_length=253, pattern=CONTEXT_NAME)
    #: Namespace names, so a value can never walk the URL tree (`..`, `a/b`) or be empty.
    namespaces: list[Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]] = Field(
        default_factory=list, max_length=256
    )
    kinds: list[KindRef] = Field(
        default_factory=lambda: list(DEFAULT_FABRIC_KINDS), min_length=1, max_length=64
    )
    page_size: int = Field(default=500, ge=1, le=5000, strict=True)

    @model_validator(mode="after")
    def _context_needs_kubeconfig(self) -> FabricSpec:
        if self.context is not None and self.kubeconfig_secret_ref is None:
            raise ValueError(CONTEXT_MESSAGE)
        return self

    @model_validator(mode="after")
    def _unique_kinds(self) -> FabricSpec:
        # Two entries for one kind would merge into the same scope at once.
        seen = [(k.group, k.kind) for k in self.kinds]
        twice = sorted({f"{g}/{k}" for g, k in seen if seen.count((g, k)) > 1})
        if twice:
            raise ValueError(f"kinds must be unique: {', '.join(twice)}")
        return self


class ObjectMeta(BaseModel):
    """The parts of metadata the engine needs (everything else is ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None


class SyncSchedule(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    api_version: Literal["inventorysync.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["SyncSchedule"]
    metadata: ObjectMeta
    spec: SyncScheduleSpec


def _field_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's loc tuple as a path a Kubernetes user recognises: spec.sources[1].greenlake."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"function-after", "function-before"} or re.match(r"^[a-z-]+\[", str(part)):
            continue  # pydantic's internal validator labels
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_validation_error(error: ValidationError, *, prefix: str = "") -> str:
    """One line per problem, each starting with the field path."""
    lines = []
    for item in error.errors():
        path = _field_path(tuple(item["loc"]))
        full = ".".join(p for p in (prefix, path) if p)
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{full or '<root>'}: {message}")
    return "; ".join(lines)


def parse_sync_schedule(document: dict[str, Any]) -> SyncSchedule:
    """Validate a whole SyncSchedule object; raise SpecError naming the field path."""
    try:
        return SyncSchedule.model_validate(document)
    except ValidationError as error:
        name = (document.get("metadata") or {}).get("name", "?")
        raise SpecError(f"SyncSchedule {name}: {describe_validation_error(error)}") from None


def parse_sync_schedule_spec(spec: dict[str, Any]) -> SyncScheduleSpec:
    """Validate just a spec (the operator's view); SpecError names the field path under spec."""
    try:
        return SyncScheduleSpec.model_validate(spec)
    except ValidationError as error:
        raise SpecError(describe_validation_error(error, prefix="spec")) from None


def parse_fabric_spec(spec: dict[str, Any]) -> FabricSpec:
    try:
        return FabricSpec.model_validate(spec)
    except ValidationError as error:
        raise SpecError(describe_validation_error(error, prefix="spec")) from None
