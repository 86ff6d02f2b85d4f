"""Doctor's resource check: SyncSchedules and Fabrics that are stuck or stalled, and since when.

Read from status alone, generically (metav1.Condition type/status/reason/message/
lastTransitionTime, observedGeneration, nextSyncTime), so it judges what any operator version
wrote. Each rule points at a different cause:

* no status, or observedGeneration -1, long after creation: no operator watches this namespace;
* Stalled=True: a problem a retry cannot fix (spec, Secret, RBAC), named in the message;
* Reconciling=True for longer than the run's timeout: the run's operator died mid-run;
* Ready=False: failing runs, a warning until it has lasted a whole interval of retries;
* nextSyncTime well in the past: the scheduler is not running (or far behind);
* metadata.generation ahead of observedGeneration for long: a spec edit nobody acted on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from inventory_sync.doctoring.findings import Finding, age, ago, failed, passed, stamp, warned
from inventory_sync.doctoring.scope import FABRIC, SYNC_SCHEDULE, Resource, Scope
from inventory_sync.reconciling.due import parse_time

CHECK = "resources"
# The operator looks at a new or edited resource within seconds (its scheduler ticks every
# second); two minutes leaves room for a restart or a slow API server before calling it stuck.
NOTICE_WITHIN = timedelta(minutes=2)
# A finished run's status write can lag its timeout by a few API round trips (and retries).
RUN_GRACE = timedelta(minutes=1)
# Runs start within seconds of nextSyncTime unless all run slots are busy; past this, say so.
OVERDUE_AFTER = timedelta(minutes=2)
# Fallback when the spec's interval does not parse (such a spec is Stalled anyway).
_DEFAULT_INTERVAL = timedelta(minutes=15)


def check(scope: Scope, *, now: datetime) -> list[Finding]:
    findings: list[Finding] = []
    healthy = 0
    for resource in scope.resources:
        found = judge(resource, now=now)
        findings += found
        healthy += not found
    counts = {kind: len(scope.of_kind(kind)) for kind in (SYNC_SCHEDULE, FABRIC)}
    listed = ", ".join(f"{n} {kind}(s)" for kind, n in counts.items())
    if scope.unlisted:
        return findings  # no all-clear for what could not be listed (a line says why)
    if not findings:
        findings.append(passed(CHECK, "status", f"{listed} {scope.where}: none stuck or stalled"))
    elif healthy:
        findings.append(passed(CHECK, "status", f"{healthy} other resource(s) {scope.where}: "
                               "none stuck or stalled"))  # fmt: skip
    return findings


def judge(resource: Resource, *, now: datetime) -> list[Finding]:
    """The problems of one resource, worst first; [] when it looks healthy."""
    label = resource.label
    unseen = _unseen(resource, now=now)
    if unseen is not None:
        return [unseen]
    findings: list[Finding] = []
    interval = resource.interval or _DEFAULT_INTERVAL
    stalled = resource.condition("Stalled")
    if _is(stalled, "True"):
        since = _since(stalled)
        findings.append(failed(CHECK, label, f"Stalled{_for(since, now)}: {_why(stalled)}",
                               since=since))  # fmt: skip
    reconciling = resource.condition("Reconciling")
    if _is(reconciling, "True"):
        since = _since(reconciling)
        limit = resource.timeout or interval
        if since is not None and now - since > limit + RUN_GRACE:
            findings.append(failed(
                CHECK, label, f"a run has been in flight{_for(since, now)}, longer than its "
                f"timeout ({age(limit)}): the operator running it may have stopped (check its pods "
                "and log)", since=since,
            ))  # fmt: skip
    ready = resource.condition("Ready")
    if _is(ready, "False") and not _is(stalled, "True") and not _is(reconciling, "True"):
        since = _since(ready)
        text = f"Ready=False{_for(since, now)}: {_why(ready)}"
        if since is not None and now - since > interval:
            findings.append(failed(CHECK, label, f"{text} (failing for more than its interval, "
                                   f"{age(interval)})", since=since))  # fmt: skip
        else:
            findings.append(warned(CHECK, label, f"{text} (retried with backoff)", since=since))
    findings += _overdue(resource, now=now, interval=interval)
    behind = _generation_behind(resource, now=now)
    if behind is not None:
        findings.append(behind)
    return findings


def _unseen(resource: Resource, *, now: datetime) -> Finding | None:
    """No status yet, or observedGeneration -1 (the CRD's default before the first look)."""
    observed = resource.status.get("observedGeneration")
    if (isinstance(observed, int) and observed >= 0) or resource.status.get("conditions"):
        return None
    created = resource.created
    if created is None or now - created <= NOTICE_WITHIN:
        return None
    return failed(
        CHECK, resource.label, f"no operator has looked at it since it was created "
        f"{ago(created, now)} ({stamp(created)}): is the operator running, and does it watch "
        f"namespace {resource.namespace}?", since=created,
    )  # fmt: skip


def _overdue(resource: Resource, *, now: datetime, interval: timedelta) -> list[Finding]:
    if resource.spec.get("suspend") is True:
        return []
    due = parse_time(resource.status.get("nextSyncTime"))
    if due is None or now - due <= OVERDUE_AFTER:
        return []
    if _is(resource.condition("Reconciling"), "True"):
        return []  # the run is happening; the rule above judges its length
    text = (
        f"its next run was due {ago(due, now)} ({stamp(due)}) and has not started: is the "
        "operator running (or are all its run slots busy)?"
    )
    if now - due > interval:
        return [failed(CHECK, resource.label, text, since=due)]
    return [warned(CHECK, resource.label, text, since=due)]


def _generation_behind(resource: Resource, *, now: datetime) -> Finding | None:
    generation = resource.meta.get("generation")
    observed = resource.status.get("observedGeneration")
    if not isinstance(generation, int) or not isinstance(observed, int) or observed < 0:
        return None
    if observed >= generation:
        return None
    since = _spec_changed(resource)
    text = f"generation {generation} not acted on yet (observedGeneration {observed})" + (
        f", changed {ago(since, now)}" if since is not None else ""
    )
    if since is not None and now - since > NOTICE_WITHIN:
        return failed(CHECK, resource.label, f"{text}: is the operator running?", since=since)
    return warned(CHECK, resource.label, text, since=since)


def _spec_changed(resource: Resource) -> datetime | None:
    """When the object (not its status) was last written, from managedFields: an upper bound
    of when the generation changed (a label edit also counts; it only makes this later)."""
    times = [
        parse_time(entry.get("time"))
        for entry in resource.meta.get("managedFields") or []
        if isinstance(entry, dict) and not entry.get("subresource")
    ]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _is(condition: dict[str, Any] | None, status: str) -> bool:
    return condition is not None and condition.get("status") == status


def _since(condition: dict[str, Any] | None) -> datetime | None:
    return parse_time((condition or {}).get("lastTransitionTime"))


def _for(since: datetime | None, now: datetime) -> str:
    return f" since {stamp(since)} ({age(now - since)})" if since is not None else ""


def _why(condition: dict[str, Any] | None) -> str:
    condition = condition or {}
    reason = str(condition.get("reason") or "no reason")
    message = str(condition.get("message") or "").strip()
    return f"{reason}: {message}" if message else reason
