"""A small async Kubernetes client on httpx (kube layer; knows nothing of the store or upstreams)."""

from inventory_sync.kube.client import (
    MAX_EVENT_MESSAGE,
    MERGE_PATCH,
    USER_AGENT,
    APIGroup,
    APIResource,
    KubeClient,
    ListPage,
    RequestStats,
)
from inventory_sync.kube.connection import SERVICE_ACCOUNT_DIR, Impersonation, KubeConnection
from inventory_sync.kube.credentials import Credential
from inventory_sync.kube.exec_plugin import ExecConfig
from inventory_sync.kube.paths import describe_path, group_version_path, resource_path

__all__ = [
    "MAX_EVENT_MESSAGE",
    "MERGE_PATCH",
    "SERVICE_ACCOUNT_DIR",
    "USER_AGENT",
    "APIGroup",
    "APIResource",
    "Credential",
    "ExecConfig",
    "Impersonation",
    "KubeClient",
    "KubeConnection",
    "ListPage",
    "RequestStats",
    "describe_path",
    "group_version_path",
    "resource_path",
]
