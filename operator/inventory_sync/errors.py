"""The one error hierarchy; every layer raises these and the run boundary maps them to behaviour.

InventorySyncError
├── SpecError               bad resource or manifest (permanent → Stalled / exit 2)
├── CredentialsError        missing Secret or key (permanent → Stalled)
├── UpstreamError           anything an upstream API did wrong
│   ├── UpstreamAuthError   token refused after a refresh (permanent)
│   ├── RefreshTokenNotSaved  a rotated refresh token could not be persisted (retryable)
│   ├── UpstreamRequestError  4xx other than 401/429: the request itself is wrong (permanent)
│   └── UpstreamUnavailable retries exhausted on 429/5xx/timeouts/resets (retryable)
│       └── UpstreamProtocolError  malformed or inconsistent body (retryable)
├── KubernetesError         a Kubernetes API call or connection failed
│   ├── KubeConfigError     unusable kubeconfig or in-cluster setup (permanent)
│   ├── KubeUnauthorized    401: credentials refused (permanent)
│   ├── KubeForbidden       403: RBAC denies the verb; names verb, resource, namespace (permanent)
│   ├── KubeInvalid         400/422: the request itself is wrong (permanent)
│   ├── KubeNotFound        404 where the object or resource must exist
│   ├── KubeConflict        409: conflicting write or stale resourceVersion
│   ├── KubeGone            410: a list's continue token expired; the listing is incomplete
│   └── KubeUnavailable     5xx, 429, timeouts, dropped connections (retryable)
├── StoreError              PostgreSQL failed (retryable)
└── RunTimeout              the per-run timeout cancelled the run (retryable)
"""

from __future__ import annotations


class InventorySyncError(Exception):
    """Base of every error this package raises on purpose."""

    #: A retry of the same run cannot fix a permanent error (bad spec, missing Secret, 403).
    permanent: bool = False


class SpecError(InventorySyncError):
    """A resource or manifest is invalid; the message names the field path."""

    permanent = True


class CredentialsError(InventorySyncError):
    """A referenced Secret or one of its keys is missing; the message names both, never a value."""

    permanent = True


class UpstreamError(InventorySyncError):
    """An upstream API call failed."""


class UpstreamAuthError(UpstreamError):
    """The upstream refused our credentials even after a token refresh."""

    permanent = True


class RefreshTokenNotSaved(UpstreamError):
    """The upstream rotated our refresh token and saving the new one failed: it lives in memory
    only, so a restart would lose access. Retryable: the next attempt saves it first."""


class UpstreamRequestError(UpstreamError):
    """The upstream rejected a request as malformed (4xx); retrying the same request is pointless."""

    permanent = True


class UpstreamUnavailable(UpstreamError):
    """Retries were exhausted on transient failures (429, 5xx, timeouts, dropped connections)."""


class UpstreamProtocolError(UpstreamUnavailable):
    """The upstream answered with a body we cannot trust (malformed JSON, wrong envelope)."""


class KubernetesError(InventorySyncError):
    """A Kubernetes API call failed; messages name the verb and resource, never credentials."""


class KubeConfigError(KubernetesError):
    """A kubeconfig or in-cluster environment cannot be used (missing context, exec plugin…)."""

    permanent = True


class KubeUnauthorized(KubernetesError):
    """401: the API server refused the token or client certificate."""

    permanent = True


class KubeForbidden(KubernetesError):
    """403: the identity lacks an RBAC grant; a retry cannot help until RBAC changes."""

    permanent = True


class KubeInvalid(KubernetesError):
    """400/422: the API server rejected the request body or parameters."""

    permanent = True


class KubeNotFound(KubernetesError):
    """404 where the object, namespace or resource type was required to exist."""


class KubeConflict(KubernetesError):
    """409: the object changed under us (resourceVersion mismatch) or already exists."""


class KubeGone(KubernetesError):
    """410: the continue token of a paged list expired; the pages so far are not a complete list."""


class KubeUnavailable(KubernetesError):
    """The API server could not answer (5xx, 429, timeout, dropped connection) after quick retries."""


class StoreError(InventorySyncError):
    """PostgreSQL refused or lost a statement."""


class RunTimeout(InventorySyncError):
    """The run exceeded its timeout and was cancelled."""


def public_message(error: BaseException, *, limit: int = 256) -> str:
    """A message safe to publish in status, Events and logs.

    Query strings are stripped from URLs (they can carry tokens, as Flux does) and the text is
    capped at 256 characters to limit what an unexpected message could leak (kopf's choice).
    """
    import re

    text = str(error) or type(error).__name__
    text = re.sub(r"(https?://[^\s?#]+)\?[^\s]*", r"\1", text)
    text = re.sub(r"(?i)\b(bearer)\s+\S+", r"\1 ***", text)
    text = re.sub(r"(?i)(token|secret|password)(\s*[=:]\s*)\S+", r"\1\2***", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
