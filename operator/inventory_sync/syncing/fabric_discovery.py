"""Which version and resource of each configured kind a fabric serves, read from its discovery (syncing layer).

A kind resolves to a version the fabric serves: the pinned one, else the group's preferred
version, else any served version that has the kind (Hedgehog served `v1alpha2` before v0.52,
`v1beta1` since; the gateway groups serve `v1alpha1`). When it does not resolve, the reason
matters, because each leads somewhere else:

* `NotInstalled`: the fabric serves the kind at no version (its CRD is absent or was
  removed). Definitive, so the kind's stored rows are retired.
* `VersionNotServed`: the kind is served, but not at the pinned version. Rows stay.
* `UnknownKind`: the spec most likely misspells the kind or its group (the group serves a
  kind of nearly that name, or a sibling group serves this kind). A spec problem: Stalled.

Discovery documents are fetched once per run and shared by all kinds.
"""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass
from enum import StrEnum

from inventory_sync.kube import APIGroup, APIResource, KubeClient, RequestStats
from inventory_sync.models import KindRef

# Kind names are short, so one wrong letter already costs ~0.1 of the ratio; 0.8 accepts one
# or two slips (Swich, VPCAttachement) and refuses different kinds that share a stem
# (Switch/SwitchGroup is 0.71, External/ExternalPeering 0.70, Gateway/GatewayGroup 0.74).
_CLOSE_MATCH = 0.8


class Unresolvable(StrEnum):
    NOT_INSTALLED = "NotInstalled"
    VERSION_NOT_SERVED = "VersionNotServed"
    UNKNOWN_KIND = "UnknownKind"


@dataclass(frozen=True)
class Resolved:
    """The kind is served: list `resource` at `version`."""

    version: str
    resource: APIResource

    def api_version(self, group: str) -> str:
        return f"{group}/{self.version}" if group else self.version


@dataclass(frozen=True)
class Unresolved:
    """The kind cannot be listed; `message` says why in words a user can act on."""

    reason: Unresolvable
    message: str
    #: For UnknownKind: the spec field at fault, relative to the kind entry ("kind" or "group").
    field: str | None = None


class FabricDiscovery:
    """Discovery of one fabric for one run; `stats` counts the requests it sends."""

    def __init__(self, client: KubeClient, *, stats: RequestStats | None = None) -> None:
        self._client = client
        self._stats = stats
        self._groups: dict[str, APIGroup] | None = None
        self._resources: dict[tuple[str, str], dict[str, APIResource]] = {}
        self._lock = asyncio.Lock()

    async def resolve(self, ref: KindRef) -> Resolved | Unresolved:
        """Where `ref` is served, or why it is not. Raises KubernetesError when discovery
        itself fails (then nothing can be concluded, and nothing may be retired)."""
        groups = await self._served_groups()
        group = groups.get(ref.group)
        if group is None:
            return await self._absent(ref, groups, f"the fabric serves no API group {ref.group}")
        ordered = _version_order(group, ref.version)
        for version in ordered:
            found = _find(await self._served(ref.group, version), ref)
            if found is None:
                continue
            if ref.version is not None and version != ref.version:
                return Unresolved(
                    Unresolvable.VERSION_NOT_SERVED,
                    f"installed at {ref.group}/{version}, not at the pinned version {ref.version}",
                )
            return Resolved(version, found)
        kinds = {
            r.kind: r for v in group.versions for r in (await self._served(ref.group, v)).values()
        }
        suggestion = _spelling(ref.kind, kinds)
        if suggestion is not None:
            return Unresolved(
                Unresolvable.UNKNOWN_KIND,
                f"{ref.group} serves no kind {ref.kind}; did you mean {suggestion}?",
                field="kind",
            )
        return await self._absent(ref, groups, f"{ref.group} serves no kind {ref.kind}")

    async def _absent(self, ref: KindRef, groups: dict[str, APIGroup], why: str) -> Unresolved:
        """The kind is not in its group: in a sibling group (a misspelt group), or not installed."""
        for sibling in _siblings(ref.group, groups):
            for version in _version_order(sibling, None):
                if ref.kind in await self._served(sibling.name, version):
                    return Unresolved(
                        Unresolvable.UNKNOWN_KIND,
                        f"{ref.kind} is served by {sibling.name}, not by {ref.group or 'the core group'}",
                        field="group",
                    )
        return Unresolved(Unresolvable.NOT_INSTALLED, f"not installed: {why}")

    async def _served_groups(self) -> dict[str, APIGroup]:
        async with self._lock:
            if self._groups is None:
                self._groups = await self._client.api_groups(stats=self._stats)
            return self._groups

    async def _served(self, group: str, version: str) -> dict[str, APIResource]:
        key = (group, version)
        if key not in self._resources:
            served = await self._client.discover(group, version, stats=self._stats)
            self._resources.setdefault(key, served)
        return self._resources[key]


def _version_order(group: APIGroup, pinned: str | None) -> list[str]:
    """The pinned version first (then the others, to say where the kind is instead), else the
    preferred version, then the rest in the server's order."""
    first = pinned or group.preferred
    rest = [v for v in group.versions if v != first]
    return [first, *rest] if first is not None else rest


def _find(served: dict[str, APIResource], ref: KindRef) -> APIResource | None:
    """The resource for `ref` in one group/version; an explicit plural wins over discovery's,
    which still says whether the kind is namespaced."""
    by_kind = served.get(ref.kind)
    if ref.plural is None:
        return by_kind
    by_plural = next((r for r in served.values() if r.plural == ref.plural), None)
    base = by_plural or by_kind
    if base is None:
        return None
    return APIResource(
        plural=ref.plural, kind=ref.kind, namespaced=base.namespaced, verbs=base.verbs,
        singular=base.singular, short_names=base.short_names,
    )  # fmt: skip


def _spelling(kind: str, served: dict[str, APIResource]) -> str | None:
    """A served kind the user most likely meant: the same name in another case, the kind of
    a plural, singular or short name (`Switches`, `Sw`), or a name one or two letters off."""
    lowered = kind.lower()
    for resource in served.values():
        names = {resource.kind.lower(), resource.plural, resource.singular, *resource.short_names}
        if lowered in names:
            return resource.kind
    close = difflib.get_close_matches(kind, list(served), n=1, cutoff=_CLOSE_MATCH)
    return close[0] if close else None


def _siblings(group: str, groups: dict[str, APIGroup]) -> list[APIGroup]:
    """Served groups of the same domain (wiring.githedgehog.com → *.githedgehog.com): where a
    kind listed under the wrong group would be. Other domains are never searched."""
    if "." not in group:
        return []
    domain = group.split(".", 1)[1]
    return [
        g for name, g in sorted(groups.items()) if name != group and name.endswith("." + domain)
    ]
