"""The CRD schemas (crds/) and the pydantic spec models (models.py) describe the same fields.

A static check, no API server: every field, required list, type, enum, default and bound of
the CRDs' spec schema must have its twin in the models' JSON schema. What only CEL or a
validator can express is checked against the real API server in
tests/controlplane/test_crd_validation.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from inventory_sync.durations import DURATION_PATTERN
from inventory_sync.models import (
    GROUP,
    MAX_DURATION_LENGTH,
    VERSION,
    FabricSpec,
    SyncScheduleSpec,
)

CRDS = Path(__file__).resolve().parents[2] / "crds"
Schema = dict[str, Any]

# Keywords compared one to one; anything else in either schema is documentation or CEL.
BOUNDS = ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern")

# Durations are strings on the wire and timedeltas in Python: the model's JSON schema says
# `format: duration`, and the pattern and length live in the field validator.
DURATION_FIELDS = {"spec.interval", "spec.timeout", "spec.sources[].greenlake.fullSyncInterval"}

# Defaults the operator fills in itself rather than the API server (documented in the CRD
# description): listing the Hedgehog kinds in the CRD would freeze them into every object.
MODEL_ONLY_DEFAULTS = {"spec.kinds"}


def crd_spec_schema(filename: str) -> tuple[Schema, Schema]:
    """(the CRD's metadata-level spec, the openAPIV3Schema of spec) of the single version."""
    crd = yaml.safe_load((CRDS / filename).read_text(encoding="utf-8"))
    (version,) = crd["spec"]["versions"]
    return crd["spec"], version["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _resolve(node: Schema, defs: Schema) -> Schema:
    """Inline `$ref` and unwrap pydantic's `anyOf: [X, null]` for optional fields."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _resolve({**options[0], **rest}, defs)
    return node


def _default(node: Schema, path: str) -> Any:
    if path in MODEL_ONLY_DEFAULTS:
        return None
    return node.get("default")


def compare(crd: Schema, model: Schema, defs: Schema, path: str = "spec") -> list[str]:
    """Every difference between the two schemas under `path`, as readable lines."""
    model = _resolve(model, defs)
    problems: list[str] = []
    crd_type = crd.get("type")
    model_type = model.get("type")
    if crd_type != model_type:
        problems.append(f"{path}: type {crd_type!r} in the CRD, {model_type!r} in the model")
        return problems
    if crd.get("enum") != model.get("enum"):
        problems.append(f"{path}: enum {crd.get('enum')} ≠ {model.get('enum')}")
    if crd.get("default") != _default(model, path):
        problems.append(f"{path}: default {crd.get('default')!r} ≠ {_default(model, path)!r}")
    if path in DURATION_FIELDS:
        if model.get("format") != "duration":
            problems.append(f"{path}: the model does not parse it as a duration")
        if crd.get("pattern") != DURATION_PATTERN:
            problems.append(f"{path}: pattern {crd.get('pattern')!r} ≠ {DURATION_PATTERN!r}")
        if crd.get("maxLength") != MAX_DURATION_LENGTH:
            problems.append(f"{path}: maxLength {crd.get('maxLength')} ≠ {MAX_DURATION_LENGTH}")
    else:
        for keyword in BOUNDS:
            if crd.get(keyword) != model.get(keyword):
                problems.append(
                    f"{path}: {keyword} {crd.get(keyword)!r} in the CRD, "
                    f"{model.get(keyword)!r} in the model"
                )
    if crd_type == "object":
        crd_props, model_props = crd.get("properties", {}), model.get("properties", {})
        for name in sorted(set(crd_props) ^ set(model_props)):
            where = "the CRD" if name in crd_props else "the model"
            problems.append(f"{path}.{name}: only in {where}")
        if sorted(crd.get("required", [])) != sorted(model.get("required", [])):
            problems.append(
                f"{path}: required {sorted(crd.get('required', []))} ≠ "
                f"{sorted(model.get('required', []))}"
            )
        if model.get("additionalProperties") is not False:
            problems.append(
                f"{path}: the model accepts unknown fields (the API server prunes them)"
            )
        for name in sorted(set(crd_props) & set(model_props)):
            problems += compare(crd_props[name], model_props[name], defs, f"{path}.{name}")
    if crd_type == "array":
        problems += compare(crd["items"], model["items"], defs, f"{path}[]")
    return problems


def model_schema(model: type[BaseModel]) -> tuple[Schema, Schema]:
    schema = model.model_json_schema(by_alias=True)
    return schema, schema.get("$defs", {})


@pytest.mark.parametrize(
    ("filename", "model"),
    [
        pytest.param("inventorysync.dev_syncschedules.yaml", SyncScheduleSpec, id="SyncSchedule"),
        pytest.param("inventorysync.dev_fabrics.yaml", FabricSpec, id="Fabric"),
    ],
)
def test_the_crd_spec_schema_and_the_model_have_the_same_fields_types_defaults_and_bounds(
    filename: str, model: type[BaseModel]
) -> None:
    _, crd = crd_spec_schema(filename)
    schema, defs = model_schema(model)

    assert compare(crd, schema, defs) == []


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        pytest.param("inventorysync.dev_syncschedules.yaml", "SyncSchedule", id="SyncSchedule"),
        pytest.param("inventorysync.dev_fabrics.yaml", "Fabric", id="Fabric"),
    ],
)
def test_the_crd_serves_the_group_and_version_the_operator_watches(
    filename: str, kind: str
) -> None:
    crd, _ = crd_spec_schema(filename)

    assert crd["group"] == GROUP
    assert crd["names"]["kind"] == kind
    assert [v["name"] for v in crd["versions"]] == [VERSION]


def test_the_comparison_reports_a_field_the_model_lacks() -> None:
    """The check itself must bite: a CRD field without a model twin is reported by path."""
    _, crd = crd_spec_schema("inventorysync.dev_fabrics.yaml")
    widened = {**crd, "properties": {**crd["properties"], "retryInterval": {"type": "string"}}}
    schema, defs = model_schema(FabricSpec)

    assert compare(widened, schema, defs) == ["spec.retryInterval: only in the CRD"]
