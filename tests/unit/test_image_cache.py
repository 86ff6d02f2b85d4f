"""The node tests' image cache (tools/node/imagetools.py) stays bounded: what no build has used
for a few days is removed, what this build uses and what a cache hit touched stay."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "node"))
import imagetools  # noqa: E402 - tools/node is not a package

DAY = 86_400.0


def _entry(directory: Path, name: str, *, age_days: float, size: int = 1000) -> Path:
    path = directory / name
    if name.startswith(".podman-"):
        path.mkdir()
        (path / "layer").write_bytes(b"x" * size)
    elif name.endswith(".json"):
        path.write_text(json.dumps({"name": "example:1", "archive": "", "size_bytes": size}))
    else:
        path.write_bytes(b"x" * size)
    then = time.time() - age_days * DAY
    os.utime(path, (then, then))
    return path


def test_pruning_removes_only_what_nobody_used_lately(tmp_path: Path) -> None:
    stale_image = _entry(tmp_path, "operator-0.1.0-old.tar", age_days=10, size=5000)
    stale_meta = _entry(tmp_path, "operator-0.1.0-old.json", age_days=10)
    died_build = _entry(tmp_path, "simulator-x.partial", age_days=5, size=700)
    died_storage = _entry(tmp_path, ".podman-abc", age_days=5, size=300)
    kept_old = _entry(tmp_path, "python-rootfs-k.tar", age_days=30)
    recent = _entry(tmp_path, "postgres-new.tar", age_days=1)
    lock = _entry(tmp_path, ".lock", age_days=30, size=0)
    expected = 5000 + stale_meta.stat().st_size + 700 + 300

    freed = imagetools.prune(tmp_path, keep=[kept_old])

    still_there = [
        p.name for p in (stale_image, stale_meta, died_build, died_storage) if p.exists()
    ]
    assert still_there == []
    missing = [p.name for p in (kept_old, recent, lock) if not p.exists()]
    assert missing == []
    assert freed == expected


def test_a_cache_hit_counts_as_a_use(tmp_path: Path) -> None:
    archive = _entry(tmp_path, "simulator-k.tar", age_days=10)
    meta = _entry(tmp_path, "simulator-k.json", age_days=10)

    hit = imagetools.cached(archive)
    imagetools.prune(tmp_path, keep=[])

    assert hit is not None
    assert hit.name == "example:1"
    assert [p.exists() for p in (archive, meta)] == [True, True]
