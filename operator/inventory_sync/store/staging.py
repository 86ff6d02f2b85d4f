"""Encoding one upstream page for its merge: JSON text, a content hash and links per item (store layer).

Pure and synchronous: it touches no connection, so a caller may run it in a worker thread.
Everything the merge needs to decide "unchanged" is computed here once per item, so the
database compares 16-byte hashes instead of parsing and comparing every stored document.
The page travels packed (`StagedPage.arguments`): a handful of large parameters instead of
arrays of thousands of elements, whose per-element encoding cost more than the JSON itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from inventory_sync.store.tables import TableSpec

#: Names the hash's input format. Changing how items are serialised or hashed (another JSON
#: encoder or options, another digest) must change this string: every stored hash then
#: differs once, and each row is rewritten once with its new hash, never compared wrongly.
HASH_SCHEME = "inventory-sync/content-hash/1:orjson:blake2b-128"
HASH_BYTES = 16

#: How many rejected items a page reports by example (their JSON, cut short).
REJECTED_EXAMPLES = 3

#: Separates the page's documents in one text parameter. Compact JSON never contains a raw
#: newline: both encoders escape control characters inside strings.
DOCUMENT_SEPARATOR = "\n"


@dataclass
class StagedPage:
    """One page, ready to merge: one entry per distinct id, in first-delivery order."""

    ids: list[str] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    #: Ids delivered again within the page (the last copy is merged): walk-shape evidence.
    repeated_ids: list[str] = field(default_factory=list)
    #: GreenLake `subscription` links, one [device id, subscription id, resource URI] per
    #: (device, subscription).
    links: list[tuple[str, str, str | None]] = field(default_factory=list)
    rejected: int = 0
    rejected_examples: list[str] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        """Items with a usable id, duplicates included."""
        return len(self.ids) + len(self.repeated_ids)

    def arguments(self, *, with_links: bool) -> list[Any]:
        """The page statement's parameters after scope and time (see store/statements.py)."""
        packed: list[Any] = [
            orjson.dumps(self.ids).decode(),
            b"".join(self.hashes),
            DOCUMENT_SEPARATOR.join(self.documents),
        ]
        if with_links:
            packed.append(orjson.dumps(self.links).decode())
        packed.append(orjson.dumps(self.repeated_ids).decode())
        return packed


def spec_fingerprint(spec: TableSpec) -> bytes:
    """What besides the item decides a stored row: the scheme and the table's column mapping.

    Part of every hash, so a release that types a new column or changes an expression
    rewrites each row once on its next sync (with the new column filled) instead of never.
    """
    columns = ";".join(f"{name}={expr}" for name, expr in sorted(spec.columns.items()))
    parts = (HASH_SCHEME, spec.table, spec.id_field, columns, ",".join(sorted(spec.volatile_keys)))
    return "\n".join(parts).encode()


def encode_item(item: Any) -> bytes:
    """Compact JSON of one decoded item; what orjson refuses (integers beyond 64 bits, lone
    surrogates) goes through the standard library instead, the same way every time."""
    try:
        return orjson.dumps(item)
    except orjson.JSONEncodeError:
        return json.dumps(item, separators=(",", ":")).encode()


def stage_page(spec: TableSpec, items: Sequence[Any]) -> StagedPage:
    """Serialise, hash and (for GreenLake devices) extract the links of one page's items."""
    staged = StagedPage()
    base = hashlib.blake2b(spec_fingerprint(spec), digest_size=HASH_BYTES)
    volatile = frozenset(spec.volatile_keys)
    position: dict[str, int] = {}
    merged: list[dict[str, Any]] = []  # the copy of each id that is merged, for its links
    id_field = spec.id_field
    for item in items:
        item_id = item.get(id_field) if isinstance(item, dict) else None
        if not isinstance(item_id, str) or not item_id:
            staged.rejected += 1
            if len(staged.rejected_examples) < REJECTED_EXAMPLES:
                staged.rejected_examples.append(encode_item(item)[:120].decode(errors="replace"))
            continue
        document = encode_item(item)
        if b"\n" in document:  # cannot happen with compact JSON; a misaligned page would be worse
            raise ValueError("a staged document contains a raw newline")
        hashed = base.copy()
        if volatile and not volatile.isdisjoint(item):
            # Keys that move without a content change (a resourceVersion) are stored, not hashed.
            hashed.update(encode_item({k: v for k, v in item.items() if k not in volatile}))
        else:
            hashed.update(document)
        seen_at = position.get(item_id)
        if seen_at is None:
            position[item_id] = len(staged.ids)
            staged.ids.append(item_id)
            staged.hashes.append(hashed.digest())
            staged.documents.append(document.decode())
            merged.append(item)
        else:
            # The same id twice in one page: the last copy wins, the repeat is evidence.
            staged.repeated_ids.append(item_id)
            staged.hashes[seen_at] = hashed.digest()
            staged.documents[seen_at] = document.decode()
            merged[seen_at] = item
    if spec.has_subscription_links:
        _stage_links(staged, merged)
    return staged


def _stage_links(staged: StagedPage, merged: list[dict[str, Any]]) -> None:
    """The `subscription: [{id, resourceUri}]` links of each id's merged copy."""
    for device_id, item in zip(staged.ids, merged, strict=True):
        links = item.get("subscription")
        if not isinstance(links, list):
            continue
        taken: set[str] = set()
        for link in links:
            if not isinstance(link, dict):
                continue
            subscription_id = _as_text(link.get("id"))
            if not subscription_id or subscription_id in taken:
                continue
            taken.add(subscription_id)
            staged.links.append((device_id, subscription_id, _as_text(link.get("resourceUri"))))


def _as_text(value: Any) -> str | None:
    """A JSON value as PostgreSQL's `->>` gives it: strings as they are, others as JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return encode_item(value).decode()
