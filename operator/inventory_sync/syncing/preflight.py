"""What is checked before a run spends anything (syncing layer): endpoints, credentials, and
whether classic Central's rotated refresh token could be saved.

Each problem found here is permanent until someone changes the spec, a Secret or RBAC, so
the operator reports it as Stalled naming the field, Secret or rule, and no run starts.
"""

from __future__ import annotations

from inventory_sync.endpoints import EndpointPolicy
from inventory_sync.errors import EndpointRefused
from inventory_sync.models import Source, SyncScheduleSpec
from inventory_sync.syncing.credentials import (
    SecretReader,
    ensure_rotated_token_writable,
    resolve_credentials,
)


async def check_schedule(
    spec: SyncScheduleSpec, *, secrets: SecretReader, namespace: str, policy: EndpointPolicy
) -> None:
    """Every source's endpoints, credentials and (classic Central) write permission."""
    check_endpoints(spec, policy)
    for source in spec.sources:
        await resolve_credentials(secrets, namespace=namespace, ref=source.secret_ref)
        classic = source.aruba_central_classic
        if classic is not None:
            await ensure_rotated_token_writable(
                secrets, namespace=namespace, ref=classic.credentials_secret_ref
            )


def check_endpoints(spec: SyncScheduleSpec, policy: EndpointPolicy) -> None:
    """EndpointRefused naming the field (spec.sources[1].arubaCentral.tokenUrl) of the first
    URL that may not receive credentials; the schema already refused what it could."""
    for index, source in enumerate(spec.sources):
        for path, url in _urls(source):
            problem = policy.url_problem(url)
            if problem is not None:
                raise EndpointRefused(f"spec.sources[{index}].{path}: {problem}")


def _urls(source: Source) -> list[tuple[str, str]]:
    if source.greenlake is not None:
        glp = source.greenlake
        return [("greenlake.endpoint", glp.endpoint), ("greenlake.tokenUrl", glp.token_url)]
    if source.aruba_central is not None:
        central = source.aruba_central
        return [
            ("arubaCentral.endpoint", central.endpoint),
            ("arubaCentral.tokenUrl", central.token_url),
        ]
    classic = source.aruba_central_classic
    assert classic is not None
    urls = [("arubaCentralClassic.endpoint", classic.endpoint)]
    if classic.token_url is not None:
        urls.append(("arubaCentralClassic.tokenUrl", classic.token_url))
    return urls
