"""Condition and Event reasons are stable strings, and docs/operator.md lists exactly them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inventory_sync.errors import (
    CredentialsError,
    KubeConfigError,
    KubeForbidden,
    KubeUnavailable,
    SpecError,
    StoreError,
)
from inventory_sync.reconciling import reasons

DOCS = Path(__file__).resolve().parents[3] / "docs" / "operator.md"
CAMEL = re.compile(r"^[A-Z][A-Za-z]*$")  # metav1.Condition's reason pattern, and no class names


def documented() -> set[str]:
    text = DOCS.read_text()
    table = text[text.index("## Reasons") : text.index("## Events and metrics")]
    return set(re.findall(r"^\| `([A-Za-z]+)` \|", table, flags=re.MULTILINE))


def test_the_docs_table_lists_every_reason_and_no_other() -> None:
    assert documented() == reasons.CONDITION_REASONS | reasons.EVENT_ONLY_REASONS


def test_reasons_are_camel_case_words() -> None:
    for reason in reasons.CONDITION_REASONS | reasons.EVENT_ONLY_REASONS:
        assert CAMEL.match(reason), reason


@pytest.mark.parametrize(
    ("error", "reason", "permanent"),
    [
        (StoreError("gone"), "StoreUnavailable", False),
        (KubeUnavailable("503"), "KubernetesUnavailable", False),
        (CredentialsError("no Secret"), "MissingCredentials", True),
        (SpecError("bad"), "InvalidSpec", True),
        (KubeConfigError("bad cert"), "InvalidKubeconfig", True),
        (KubeForbidden("no"), "Forbidden", True),
        (OverflowError("date value out of range"), "InternalError", False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_errors_map_to_stable_reasons_not_class_names(
    error: BaseException, reason: str, permanent: bool
) -> None:
    assert (reasons.reason_for(error), reasons.is_permanent(error)) == (reason, permanent)
