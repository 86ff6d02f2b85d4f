"""The two health readers of tests/health_states.py, run for real: kstatus (the Go helper in
tools/kstatus, built and cached by its build.sh) and our Argo CD Lua (in Lua 5.1, the dialect of
Argo CD's gopher-lua)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # lupa ships several interpreters; Argo CD's gopher-lua is Lua 5.1
    from lupa.lua51 import LuaRuntime  # type: ignore[import-untyped,unused-ignore]
except ImportError:  # pragma: no cover - a lupa build without the 5.1 module
    from lupa import LuaRuntime  # type: ignore[import-untyped,unused-ignore]

REPO = Path(__file__).resolve().parents[1]
HEALTH = REPO / "health" / "argocd"
KSTATUS_BUILD = REPO / "tools" / "kstatus" / "build.sh"


def lua_script(kind: str) -> str:
    return (HEALTH / f"inventorysync.dev_{kind}.lua").read_text()


def argocd_health(obj: dict[str, Any]) -> dict[str, str]:
    """Run the check as Argo CD does: the live object as global `obj`, the script's return."""
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    returned = lua.execute(lua_script(str(obj["kind"])))
    return {str(k): str(v) for k, v in returned.items()}


@dataclass(frozen=True)
class KstatusBuild:
    """The helper's path, or why there is none."""

    binary: Path | None
    problem: str = ""


def find_go() -> str | None:
    go = shutil.which("go")
    if go is None and Path("/usr/local/go/bin/go").is_file():
        go = "/usr/local/go/bin/go"
    return go


def build_kstatus() -> KstatusBuild:
    """The cached helper, built first (about a minute cold) when Go is there."""
    if subprocess.run([str(KSTATUS_BUILD), "--check"], capture_output=True).returncode == 0:
        printed = subprocess.run(
            [str(KSTATUS_BUILD), "--print"], capture_output=True, text=True, check=True
        )
        return KstatusBuild(Path(printed.stdout.strip()))
    if find_go() is None:
        return KstatusBuild(None, "Go toolchain not found and no cached tools/kstatus build")
    env = dict(os.environ, PATH=f"{os.environ.get('PATH', '')}:/usr/local/go/bin")
    proc = subprocess.run([str(KSTATUS_BUILD)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return KstatusBuild(None, f"tools/kstatus/build.sh failed: {last}")
    return KstatusBuild(Path(proc.stdout.strip().splitlines()[-1]))


def kstatus(binary: Path, objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    """kstatus's verdict ({status, message}) for each object, in one run of the helper."""
    stream = "".join(json.dumps(o) + "\n" for o in objects)
    proc = subprocess.run(
        [str(binary)], input=stream, capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, f"tools/kstatus failed: {proc.stderr.strip()}"
    verdicts = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(verdicts) == len(objects), proc.stdout
    return verdicts
