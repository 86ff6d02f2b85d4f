"""resource_path and friends: the REST paths the client builds and reads back."""

from __future__ import annotations

import pytest

from inventory_sync.kube import describe_path, group_version_path, resource_path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ("", "v1", "secrets", "ns", "s"), "/api/v1/namespaces/ns/secrets/s", id="core object"
        ),
        pytest.param(
            ("", "v1", "configmaps"), "/api/v1/configmaps", id="core list across namespaces"
        ),
        pytest.param(
            ("wiring.githedgehog.com", "v1beta1", "switches", "fab"),
            "/apis/wiring.githedgehog.com/v1beta1/namespaces/fab/switches",
            id="namespaced custom resource list",
        ),
        pytest.param(
            ("inventorysync.dev", "v1alpha1", "syncschedules", "x", "nightly", "status"),
            "/apis/inventorysync.dev/v1alpha1/namespaces/x/syncschedules/nightly/status",
            id="status subresource",
        ),
    ],
)
def test_resource_path_builds_api_and_apis_paths(args: tuple[str, ...], expected: str) -> None:
    assert resource_path(*args) == expected


def test_group_version_path_uses_api_for_the_core_group() -> None:
    assert group_version_path("", "v1") == "/api/v1"
    assert (
        group_version_path("vpc.githedgehog.com", "v1beta1") == "/apis/vpc.githedgehog.com/v1beta1"
    )


@pytest.mark.parametrize("bad", ["a/b", "", ".."], ids=["slash", "empty", "dot-dot"])
def test_a_name_cannot_walk_the_url_tree(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid name"):
        resource_path("", "v1", "secrets", "ns", bad)


def test_a_subresource_needs_a_name() -> None:
    with pytest.raises(ValueError, match="subresource"):
        resource_path("g", "v1", "things", "ns", subresource="status")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/namespaces/x/configmaps", ("configmaps", "x", False)),
        ("/api/v1/namespaces/x/configmaps/c?limit=5", ("configmaps", "x", True)),
        ("/apis/g/v1/namespaces/x/things/t/status", ("things/status", "x", True)),
        ("/apis/g/v1/things", ("things", None, False)),
        ("/api/v1/namespaces/x", ("namespaces", None, True)),
        ("/apis/g/v1", ("/apis/g/v1", None, False)),
    ],
)
def test_describe_path_reads_resource_and_namespace_back(
    path: str, expected: tuple[str, str | None, bool]
) -> None:
    assert describe_path(path) == expected
