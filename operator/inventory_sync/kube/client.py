"""An async Kubernetes REST client on httpx (kube layer): the few verbs the operator needs, errors mapped.

Every call maps HTTP failures onto `errors.KubernetesError` subclasses at one place
(`_raise_for`), so callers decide behaviour by type: permanent (401, 403, 400/422) or
retryable (5xx, timeouts). GETs are retried a couple of times, quickly; writes are not.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import ssl
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, NoReturn

import httpx

from inventory_sync import connect_errors, egress
from inventory_sync.errors import (
    KubeConflict,
    KubeForbidden,
    KubeGone,
    KubeInvalid,
    KubeNotFound,
    KubernetesError,
    KubeUnauthorized,
    KubeUnavailable,
)
from inventory_sync.handshakes import close_cancelled_handshakes
from inventory_sync.kube.connection import KubeConnection
from inventory_sync.kube.credentials import Credential
from inventory_sync.kube.paths import describe_path, group_version_path, resource_path

USER_AGENT = "inventory-sync-operator"
MERGE_PATCH = "application/merge-patch+json"
# The API server rejects an Event whose note exceeds 1024 characters, a reason or action
# beyond 128 (core/v1 validation: NoteLengthLimit, ReasonLengthLimit, ActionLengthLimit).
MAX_EVENT_MESSAGE = 1024
MAX_EVENT_FIELD = 128
# A Status message can be long (admission webhooks echo whole objects): keep enough to act on.
_MESSAGE_LIMIT = 300
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A server-requested pause longer than this is not "quick": fail and let the run retry later.
_MAX_RETRY_AFTER = 5.0
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_FORBIDDEN = re.compile(
    r'cannot (?P<verb>\w+) resource "(?P<resource>[^"]+)" in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<namespace>[^"]+)")?'
)


@dataclass(frozen=True)
class ListPage:
    """One chunk of a paged list; `continue_token` is None on the last page."""

    items: list[dict[str, Any]]
    resource_version: str | None
    #: The server's estimate of items still to come (absent with selectors or on the last page).
    remaining_item_count: int | None
    continue_token: str | None


@dataclass
class RequestStats:
    """What the calls that shared this object cost: requests sent (retries included) and the
    answers by HTTP status ("timeout"/"connection" for transport failures)."""

    requests: int = 0
    retries: int = 0
    status_codes: dict[str, int] = field(default_factory=dict)

    def count(self, code: str) -> None:
        self.status_codes[code] = self.status_codes.get(code, 0) + 1


@dataclass(frozen=True)
class APIGroup:
    """A served API group as discovery describes it: its versions, preferred first."""

    name: str
    versions: tuple[str, ...]
    preferred: str | None


@dataclass(frozen=True)
class APIResource:
    """A resource type served in one group/version, as discovery describes it."""

    plural: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ()
    singular: str = ""
    short_names: tuple[str, ...] = ()


class KubeClient:
    """Async calls against one API server; one instance per connection, closed with `aclose`."""

    def __init__(
        self,
        connection: KubeConnection,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        get_retries: int = 2,
        retry_delay: float = 0.25,
    ) -> None:
        self.connection = connection
        self._timeout = timeout
        self._transport = transport
        self._get_retries = get_retries
        self._retry_delay = retry_delay
        self._http: httpx.AsyncClient | None = None
        #: The exec-plugin client certificate `_http` was built with (None: the kubeconfig's).
        self._http_cert: str | None = None
        self._retired: list[httpx.AsyncClient] = []
        if connection.exec_plugin is None:
            # TLS material is fixed: build now, so an unusable CA or key fails at once.
            self._http = self._build(None)

    def _build(self, credential: Credential | None) -> httpx.AsyncClient:
        """An httpx client for the connection's TLS settings and proxy. A custom transport
        (tests, proxies) brings its own TLS and routing: building ours is moot."""
        own = self._transport is None
        client = httpx.AsyncClient(
            base_url=self.connection.server,
            verify=self.connection.ssl_context(credential) if own else True,
            proxy=self.connection.proxy_url if own else None,
            transport=self._transport,
            timeout=httpx.Timeout(self._timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        close_cancelled_handshakes(client)
        if own and self.connection.guarded:
            egress.guard_client(client, policy=None)
        return client

    def _client_for(self, credential: Credential) -> httpx.AsyncClient:
        """The httpx client for `credential`: rebuilt when an exec plugin hands out a new
        client certificate (TLS settings are fixed per client)."""
        cert = credential.client_cert_data if self.connection.exec_plugin is not None else None
        if self._http is None or cert != self._http_cert:
            if self._http is not None:
                # Requests in flight may still use it: close it with the client, not now.
                self._retired.append(self._http)
            self._http = self._build(credential)
            self._http_cert = cert
        return self._http

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in [*self._retired, *([self._http] if self._http is not None else [])]:
            await client.aclose()
        self._retired.clear()

    # ----------------------------------------------------------------------- verbs

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object at `path`, or None when it does not exist (404)."""
        try:
            response = await self._request("GET", path)
        except KubeNotFound:
            return None
        return _json_object(response, "GET", path)

    async def list_pages(
        self,
        path: str,
        *,
        limit: int,
        label_selector: str | None = None,
        stats: RequestStats | None = None,
    ) -> AsyncGenerator[ListPage, None]:
        """A collection page by page, following `continue` from one consistent snapshot.

        Raises KubeGone when a continue token expired mid-walk (the pages already yielded are
        then not a complete list) and KubeNotFound when the resource type is not served.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        token: str | None = None
        while True:
            params = {"limit": str(limit)}
            if label_selector:
                params["labelSelector"] = label_selector
            if token:
                params["continue"] = token
            response = await self._request("GET", path, params=params, stats=stats)
            body = _json_object(response, "GET", path)
            items = body.get("items")
            if items is None:
                items = []  # an empty list serialises items as null
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise KubeUnavailable(f"GET {path}: the list body has no valid items")
            meta = body.get("metadata") or {}
            remaining = meta.get("remainingItemCount")
            page = ListPage(
                items=items,
                resource_version=meta.get("resourceVersion"),
                remaining_item_count=remaining if isinstance(remaining, int) else None,
                continue_token=meta.get("continue") or None,
            )
            yield page
            token = page.continue_token
            if not token:
                return

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new object to a collection path; returns the object as stored."""
        response = await self._request("POST", path, body=body, content_type="application/json")
        return _json_object(response, "POST", path)

    async def delete(self, path: str) -> None:
        """DELETE an object; an object already gone is not an error."""
        try:
            await self._request("DELETE", path)
        except KubeNotFound:
            return

    async def patch_merge(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386); returns the object as stored."""
        response = await self._request("PATCH", path, body=patch, content_type=MERGE_PATCH)
        return _json_object(response, "PATCH", path)

    async def patch_status(
        self,
        *,
        group: str,
        version: str,
        plural: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Merge-patch the status subresource (the only part of a resource we ever write)."""
        path = resource_path(group, version, plural, namespace, name, "status")
        return await self.patch_merge(path, patch)

    async def create_event(
        self,
        *,
        involved: Mapping[str, Any],
        type: Literal["Normal", "Warning"],  # shadows the builtin to match the Event field
        reason: str,
        message: str,
        action: str,
        reporting_component: str = USER_AGENT,
        reporting_instance: str,
    ) -> None:
        """Record a core/v1 Event about `involved` (apiVersion, kind, name, namespace, uid)."""
        namespace = str(involved.get("namespace") or "default")
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{involved['name']}.", "namespace": namespace},
            "involvedObject": {
                key: involved[key]
                for key in ("apiVersion", "kind", "name", "namespace", "uid")
                if involved.get(key)
            },
            "type": type,
            "reason": reason[:MAX_EVENT_FIELD],
            "action": action[:MAX_EVENT_FIELD],
            "message": message[:MAX_EVENT_MESSAGE],
            "reportingComponent": reporting_component,
            "reportingInstance": reporting_instance[:MAX_EVENT_FIELD],
            # `kubectl describe` shows source.component as "From".
            "source": {"component": reporting_component},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "count": 1,
        }
        path = resource_path("", "v1", "events", namespace)
        await self._request("POST", path, body=body, content_type="application/json")

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's keys, values base64-decoded (UTF-8); None when it does not exist."""
        body = await self.get(resource_path("", "v1", "secrets", namespace, name))
        if body is None:
            return None
        values: dict[str, str] = {}
        for key, encoded in (body.get("data") or {}).items():
            try:
                raw = base64.b64decode(str(encoded), validate=True)
            except (binascii.Error, ValueError):
                # The message names the key only: a value is never echoed.
                raise KubeUnavailable(
                    f"secret {namespace}/{name}: key {key!r} is not base64"
                ) from None
            values[key] = raw.decode("utf-8", errors="replace")
        # stringData is write-only on a real server; honour it where a fake returns it.
        values.update({k: str(v) for k, v in (body.get("stringData") or {}).items()})
        return values

    async def may(
        self, verb: str, resource: str, *, namespace: str, name: str | None = None, group: str = ""
    ) -> tuple[bool, str]:
        """Whether this identity may `verb` `resource` (a SelfSubjectAccessReview, which every
        authenticated identity may create through the default system:basic-user role), and
        the authorizer's reason."""
        attributes = {"verb": verb, "resource": resource, "group": group, "namespace": namespace}
        if name:
            attributes["name"] = name
        review = await self.create(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes},
            },
        )
        status = review.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or "")

    async def api_groups(self, *, stats: RequestStats | None = None) -> dict[str, APIGroup]:
        """Every group the API server serves (the core group as ""), from /api and /apis."""
        groups: dict[str, APIGroup] = {}
        core = _json_object(await self._request("GET", "/api", stats=stats), "GET", "/api")
        core_versions = tuple(str(v) for v in core.get("versions") or [])
        if core_versions:
            groups[""] = APIGroup("", core_versions, core_versions[0])
        body = _json_object(await self._request("GET", "/apis", stats=stats), "GET", "/apis")
        for entry in body.get("groups") or []:
            name = entry.get("name")
            versions = tuple(
                str(v["version"])
                for v in entry.get("versions") or []
                if isinstance(v, dict) and v.get("version")
            )
            if not isinstance(name, str) or not versions:
                continue
            preferred = (entry.get("preferredVersion") or {}).get("version")
            groups[name] = APIGroup(name, versions, preferred if preferred in versions else None)
        return groups

    async def discover(
        self, group: str, version: str, *, stats: RequestStats | None = None
    ) -> dict[str, APIResource]:
        """Kind → resource for one group/version; {} when the API server does not serve it."""
        path = group_version_path(group, version)
        try:
            body = _json_object(await self._request("GET", path, stats=stats), "GET", path)
        except KubeNotFound:
            return {}
        found: dict[str, APIResource] = {}
        for entry in body.get("resources") or []:
            name, kind = entry.get("name"), entry.get("kind")
            if not isinstance(name, str) or not isinstance(kind, str) or "/" in name:
                continue  # subresources (switches/status) share their parent's kind
            found.setdefault(
                kind,
                APIResource(
                    plural=name,
                    kind=kind,
                    namespaced=bool(entry.get("namespaced")),
                    verbs=tuple(entry.get("verbs") or ()),
                    singular=str(entry.get("singularName") or ""),
                    short_names=tuple(str(n) for n in entry.get("shortNames") or ()),
                ),
            )
        return found

    # ----------------------------------------------------------------------- transport

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = None,
        stats: RequestStats | None = None,
    ) -> httpx.Response:
        """Send, retrying GETs on transient failures; return a 2xx response or raise.

        A 401 renews the credential once (a rotated token file, an exec plugin's revoked
        token) and resends, for any verb: a 401 means the server did nothing.
        `stats`, when given, counts every attempt and its answer."""
        attempts = 1 + (self._get_retries if method == "GET" else 0)
        content = None if body is None else json.dumps(body).encode()
        credential = await self.connection.credentials.current()
        renewed = False
        failure = ""
        attempt = 0
        while attempt < attempts:
            attempt += 1
            http = self._client_for(credential)
            headers = [("Content-Type", content_type)] if content_type else []
            headers += self.connection.headers(credential)
            delay = self._retry_delay * 2 ** (attempt - 1)
            if stats is not None:
                stats.requests += 1
                if attempt > 1:
                    stats.retries += 1
            try:
                response = await http.request(
                    method, path, params=params, content=content, headers=headers
                )
            except httpx.TransportError as error:
                failure = self._describe(error)
                if stats is not None:
                    stats.count(
                        "timeout" if isinstance(error, httpx.TimeoutException) else "connection"
                    )
                if _certificate_refused(error):
                    attempts = attempt  # a wrong CA or name does not heal in a second
            else:
                if stats is not None:
                    stats.count(str(response.status_code))
                if response.is_success:
                    return response
                if response.status_code == 401 and not renewed:
                    renewed = True
                    fresh = await self.connection.credentials.renew(credential)
                    if fresh is not None:
                        credential = fresh
                        attempt -= 1  # a renewal is not one of the retries
                        continue
                if response.status_code not in _RETRY_STATUSES or attempt == attempts:
                    _raise_for(response, method, path, origin=self.connection.origin)
                failure = f"HTTP {response.status_code}"
                hinted = _retry_after(response)
                if hinted is not None:
                    if hinted > _MAX_RETRY_AFTER:
                        _raise_for(response, method, path, origin=self.connection.origin)
                    delay = hinted
            if attempt < attempts:
                await asyncio.sleep(delay)
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        raise KubeUnavailable(f"{method} {_bare(path)}: {failure}{tries}")

    def _describe(self, error: httpx.TransportError) -> str:
        connection = self.connection
        return connect_errors.describe(
            error,
            target=connection.host,
            tls_name=connection.tls_server_name,
            proxy=connection.proxy_display,
        )


def _certificate_refused(error: BaseException) -> bool:
    return any(isinstance(c, ssl.SSLCertVerificationError) for c in connect_errors.causes(error))


def _bare(path: str) -> str:
    # A continue token or selector adds nothing to a message and can be long.
    return path.split("?", 1)[0]


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _json_object(response: httpx.Response, method: str, path: str) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        raise KubeUnavailable(
            f"{method} {_bare(path)}: body is not JSON ({len(response.content)} bytes)"
        ) from None
    if not isinstance(body, dict):
        raise KubeUnavailable(f"{method} {_bare(path)}: body is not a JSON object")
    return body


def _status(response: httpx.Response) -> dict[str, Any]:
    """The metav1.Status body of an error response, or {} when there is none."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) and body.get("kind") == "Status" else {}


def _raise_for(response: httpx.Response, method: str, path: str, *, origin: str) -> NoReturn:
    """Map a non-2xx answer onto the error hierarchy; messages carry no credentials."""
    code = response.status_code
    status = _status(response)
    text = str(status.get("message") or response.reason_phrase or "")[:_MESSAGE_LIMIT]
    where = f"{method} {_bare(path)}"
    if code == 401:
        raise KubeUnauthorized(f"unauthorized: the API server refused the credentials of {origin}")
    if code == 403:
        raise KubeForbidden(_forbidden_message(method, path, text))
    if code == 404:
        raise KubeNotFound(f"{where}: not found")
    if code == 409:
        raise KubeConflict(f"{where}: conflict: {text}")
    if code == 410:
        raise KubeGone(f"{where}: the list expired between pages (410 Gone); it is incomplete")
    if 400 <= code < 500 and code != 429:  # 400, 422 and the rarer 4xx: our request is wrong
        raise KubeInvalid(f"{where}: rejected ({code}): {text}")
    if code == 429 or code >= 500:
        raise KubeUnavailable(f"{where}: HTTP {code}: {text}")
    raise KubernetesError(f"{where}: unexpected HTTP {code}")


def _forbidden_message(method: str, path: str, server_text: str) -> str:
    """Name the missing RBAC rule, e.g. "forbidden: cannot patch syncschedules/status in
    namespace x (API group g)": from the API server's Status when it says, else our request."""
    match = _FORBIDDEN.search(server_text)
    resource, namespace, is_object = describe_path(path)
    if match is not None:
        verb, resource = match["verb"], match["resource"]
        group, namespace = match["group"], match["namespace"]
    else:
        verb = _VERBS.get(method, "get" if is_object else "list")
        parts = [p for p in path.split("/") if p]
        group = parts[1] if parts[:1] == ["apis"] and len(parts) > 1 else ""
    scope = f"in namespace {namespace}" if namespace else "at cluster scope"
    suffix = f" (API group {group})" if group else ""
    return f"forbidden: cannot {verb} {resource} {scope}{suffix}"
