"""The one error hierarchy; every layer raises these and the run boundary maps them to behaviour.

InventorySyncError
├── SpecError               bad resource or manifest (permanent → Stalled / exit 2)
│   └── EndpointRefused     credentials would go where they must not (plain http, metadata)
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

import re


class InventorySyncError(Exception):
    """Base of every error this package raises on purpose."""

    #: A retry of the same run cannot fix a permanent error (bad spec, missing Secret, 403).
    permanent: bool = False


class SpecError(InventorySyncError):
    """A resource or manifest is invalid; the message names the field path."""

    permanent = True


class EndpointRefused(SpecError):
    """A URL that would receive credentials breaks the egress rules (see `endpoints`): plain
    http to a non-loopback host, a link-local or metadata address, an unlisted in-cluster name."""


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


# Key names whose value is a secret: access_token, refresh_token, client_secret, password…
_SECRET_KEY = r"(?:[A-Za-z0-9]+[_-])*(?:token|secret|password|passwd|api[_-]?key)s?"
# A quoted key and quoted value ({"access_token": "abc"}, {'password': 'x'}): the value goes.
_QUOTED_SECRET = re.compile(
    rf"""(?i)(?<![\w.-])(["'])({_SECRET_KEY})\1(\s*[:=]\s*)(["'])(?:\\.|(?!\4).)*\4"""
)
# A bare key=value or key: value. Not after "/", "-", "'" or a word character, so a Secret
# *name* such as "ns/glp-token: …" or "key 'refresh_token': …" is left alone.
_BARE_SECRET = re.compile(
    rf"""(?i)(?<![\w./'"-])({_SECRET_KEY})(\s*[=:]\s*)"""
    rf"""(?:(["'])(?:\\.|(?!\3).)*\3|(?!["'\s])[^\s,;&}}]+)"""
)
# "Bearer <token>", unless the next word is prose ("bearer token refused"); "Basic <base64>".
_BEARER = re.compile(
    r"(?i)\b(bearer)\s+(?!(?:token|tokens|credentials?|auth\w*|scheme|header)\b)[^\s,;]+"
    r"|\b(basic)\s+(?!auth\w*\b)[A-Za-z0-9+/]{8,}={0,2}"
)
_URL_QUERY = re.compile(r"(https?://[^\s?#]+)\?[^\s]*")
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s:/@]+):[^\s@/]+@")


def public_message(error: BaseException, *, limit: int = 256) -> str:
    """A message safe to publish in status, Events and logs.

    Query strings are stripped from URLs (they can carry tokens, as Flux does), passwords in
    URLs, bearer tokens and the values of secret-named keys (bare or JSON-quoted) become ***,
    and the text is capped at 256 characters to limit what an unexpected message could leak
    (kopf's choice).
    """
    text = str(error) or type(error).__name__
    text = _URL_QUERY.sub(r"\1", text)
    text = _URL_PASSWORD.sub(r"\1:***@", text)
    text = _BEARER.sub(lambda m: f"{m[1] or m[2]} ***", text)
    text = _QUOTED_SECRET.sub(r"\1\2\1\3\4***\4", text)
    text = _BARE_SECRET.sub(lambda m: f"{m[1]}{m[2]}{m[3] or ''}***{m[3] or ''}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
