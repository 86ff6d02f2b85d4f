"""The condition and Event reasons the operator publishes: stable strings, defined only here.

Users match on these (alerts, `kubectl get -o jsonpath`, Argo CD and Flux health checks), so
they are part of the API: never Python class names, never renamed. docs/operator.md has the
table; tests/unit/reconciling/test_reasons.py keeps the two in step.
"""

from __future__ import annotations

from inventory_sync.errors import (
    CredentialsError,
    InventorySyncError,
    KubeConfigError,
    KubeForbidden,
    KubeInvalid,
    KubernetesError,
    KubeUnauthorized,
    RunTimeout,
    SpecError,
    StoreError,
    UpstreamAuthError,
    UpstreamError,
)

# -- a run's verdict (Ready) ------------------------------------------------------------------
SUCCEEDED = "Succeeded"  # Ready=True: the last run succeeded
SYNC_FAILED = "SyncFailed"  # Ready=False: a source failed; retried with backoff
TIMED_OUT = "TimedOut"  # Ready=False: the run exceeded its timeout and was cancelled
PROGRESSING = "Progressing"  # Reconciling=True, and Ready=False before the first run ends
WAITING = "Waiting"  # Ready=False: a stall was fixed; Ready=Unknown: never ran; a run is due later

# -- the run could not start or finish (Ready=False, retried) ---------------------------------
STORE_UNAVAILABLE = "StoreUnavailable"  # PostgreSQL refused or lost a statement
KUBERNETES_UNAVAILABLE = "KubernetesUnavailable"  # the API server did not answer
UPSTREAM_UNAVAILABLE = "UpstreamUnavailable"  # an upstream failed before any source ran
RUN_FAILED = "RunFailed"  # any other error of ours that a retry may fix
INTERNAL_ERROR = "InternalError"  # a bug: the log has the traceback

# -- a problem a retry cannot fix (Stalled=True and Ready=False) ------------------------------
INVALID_SPEC = "InvalidSpec"  # a spec the CRD schema could not reject; names the field
MISSING_CREDENTIALS = "MissingCredentials"  # a Secret or key is missing; names both
INVALID_KUBECONFIG = "InvalidKubeconfig"  # a Fabric's kubeconfig Secret is unusable
FORBIDDEN = "Forbidden"  # RBAC denies a verb the operator needs; names it
UNAUTHORIZED = "Unauthorized"  # an API server refused the credentials
REJECTED = "Rejected"  # an API server rejected a request as invalid (400/422)
UPSTREAM_AUTH_FAILED = "UpstreamAuthFailed"  # an upstream refused the credentials

# -- Events only --------------------------------------------------------------------------------
SYNCED = "Synced"  # Normal: a run succeeded (message: the counts)
CANCELLED = "Cancelled"  # Normal: a run was cancelled (Replace, deletion, shutdown)
RUN_ABANDONED = "RunAbandoned"  # Warning: a replica took over a run whose holder stopped
LEASE_LOST = "LeaseLost"  # Warning: this replica stopped its run: it could not renew the lease
INVALID_STATUS = "InvalidStatus"  # Warning: a status field was unusable and was ignored
STATUS_RESTATED = "StatusRestated"  # Normal: a finished run's lost status was written again

#: Every reason a condition can carry (Events may carry the rest).
CONDITION_REASONS = frozenset(
    {
        SUCCEEDED, SYNC_FAILED, TIMED_OUT, PROGRESSING, WAITING, STORE_UNAVAILABLE,
        KUBERNETES_UNAVAILABLE, UPSTREAM_UNAVAILABLE, RUN_FAILED, INTERNAL_ERROR, INVALID_SPEC,
        MISSING_CREDENTIALS, INVALID_KUBECONFIG, FORBIDDEN, UNAUTHORIZED, REJECTED,
        UPSTREAM_AUTH_FAILED,
    }
)  # fmt: skip
EVENT_ONLY_REASONS = frozenset(
    {SYNCED, CANCELLED, RUN_ABANDONED, LEASE_LOST, INVALID_STATUS, STATUS_RESTATED}
)
#: Reasons whose Stalled=True clears once the problem is gone (see status.cleared_stall).
STALL_REASONS = frozenset(
    {INVALID_SPEC, MISSING_CREDENTIALS, INVALID_KUBECONFIG, FORBIDDEN, UNAUTHORIZED, REJECTED,
     UPSTREAM_AUTH_FAILED}
)  # fmt: skip

# Most specific first: the first matching class names the reason.
_BY_ERROR: tuple[tuple[type[BaseException], str], ...] = (
    (CredentialsError, MISSING_CREDENTIALS),
    (SpecError, INVALID_SPEC),
    (KubeConfigError, INVALID_KUBECONFIG),
    (KubeForbidden, FORBIDDEN),
    (KubeUnauthorized, UNAUTHORIZED),
    (KubeInvalid, REJECTED),
    (KubernetesError, KUBERNETES_UNAVAILABLE),
    (StoreError, STORE_UNAVAILABLE),
    (UpstreamAuthError, UPSTREAM_AUTH_FAILED),
    (UpstreamError, UPSTREAM_UNAVAILABLE),
    (RunTimeout, TIMED_OUT),
    (InventorySyncError, RUN_FAILED),
)


def reason_for(error: BaseException) -> str:
    """The stable reason for an error that kept a run from starting or finishing."""
    for kind, reason in _BY_ERROR:
        if isinstance(error, kind):
            return reason
    return INTERNAL_ERROR


def is_permanent(error: BaseException) -> bool:
    """A retry of the same run cannot fix it: Stalled, not Ready=False."""
    return isinstance(error, InventorySyncError) and error.permanent
