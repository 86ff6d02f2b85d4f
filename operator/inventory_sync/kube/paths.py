"""REST paths of the Kubernetes API: the one place that knows /api/v1 from /apis/{group}/{version}."""

from __future__ import annotations

from urllib.parse import quote


def _segment(value: str, what: str) -> str:
    # Object names cannot contain '/', but a name from a spec must never walk the URL tree.
    if not value or "/" in value or value in (".", ".."):
        raise ValueError(f"invalid {what} for an API path: {value!r}")
    return quote(value, safe="")


def group_version_path(group: str, version: str) -> str:
    """The discovery document of one group/version; the core group is "" (/api/v1)."""
    if not group:
        return f"/api/{_segment(version, 'version')}"
    return f"/apis/{_segment(group, 'group')}/{_segment(version, 'version')}"


def resource_path(
    group: str,
    version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """A collection, object or subresource path.

    `namespace=None` addresses a cluster-scoped resource, or a namespaced one across all
    namespaces (the list then spans every namespace the identity may list).
    """
    if subresource is not None and name is None:
        raise ValueError("a subresource needs an object name")
    path = group_version_path(group, version)
    if namespace is not None:
        path += f"/namespaces/{_segment(namespace, 'namespace')}"
    path += f"/{_segment(plural, 'resource')}"
    if name is not None:
        path += f"/{_segment(name, 'name')}"
    if subresource is not None:
        path += f"/{_segment(subresource, 'subresource')}"
    return path


def describe_path(path: str) -> tuple[str, str | None, bool]:
    """(resource[/subresource], namespace, is_object) read back from a path we built.

    Used to word error messages ("cannot patch syncschedules/status in namespace x"); a path
    of another shape yields its last segment and no namespace.
    """
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return (parts[-1] if parts else path), None, False
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces":
        if len(rest) == 2:  # /api/v1/namespaces/x is the Namespace object itself
            return "namespaces", None, True
        namespace, rest = rest[1], rest[2:]
    if not rest:  # a discovery document
        return path, None, False
    resource = rest[0]
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    return resource, namespace, len(rest) >= 2
