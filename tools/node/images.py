"""Container images for the real-node tests, without a registry: base images from Debian
packages (mmdebstrap), the project's unmodified Dockerfile built on one of them with podman,
each saved as a docker-archive tarball cached under a key of its inputs.

Images (names as the kubelet will look them up after `ctr images import`):

* ``localhost/inventory-sync-python:3-<suite>``: minbase + python3, python3-venv, pip,
  CA certificates; the Dockerfile's ``ARG PYTHON_IMAGE`` (only used to build, not saved).
* ``docker.io/library/inventory-sync-operator:<version>``: ``podman build --pull=never`` of
  the Dockerfile, exactly the image the chart and manifests/ name by default.
* ``localhost/inventory-sync-postgres:<suite>``: minbase + postgresql, with a small
  entrypoint (``postgres/entrypoint.sh``) that makes a fresh cluster in its data dir.
* ``localhost/inventory-sync-simulator:<version>``: the operator image plus the ``tls`` extra,
  for ``inventory-sync simulate --tls`` in a pod (``simulator/Containerfile``).
* ``registry.k8s.io/pause:<tag>``: the static pause binary of ``build.sh --node``.

Podman runs with its own containers.conf/storage.conf (CONTAINERS_CONF and friends; /etc is
left alone) and a throwaway storage that is removed afterwards: the cache is the tarballs.

CLI: ``python images.py [--pause-bin DIR] [--previous] [--json]`` builds what is missing and
prints where (``--previous``: also the image of the release the upgrade test starts from).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

from imagetools import (
    UNUSED_DAYS,
    Image,
    ImageError,
    Podman,
    apt_sources,
    build_lock,
    cached,
    digest,
    host_suite,
    libpod_cgroups,
    mark_used,
    prune,
    remove_new_cgroups,
    run,
    tool_version,
    tree_digest,
)

__all__ = ["Image", "ImageError", "build_all", "build_operator_at", "cache_dir", "main"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: Recipes change the key, so an edited recipe never reuses a stale tarball.
RECIPE_VERSION = "1"
#: Docs, manuals and translations are not needed in a container; they are a third of minbase.
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
PYTHON_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
POSTGRES_PACKAGES = ("postgresql-15",)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: The previous release the upgrade test starts from (tests/node/test_chart_upgrade.py): chart
#: 0.1.0 as first packaged. No release is tagged yet; move this when one is.
UPGRADE_FROM = os.environ.get("INVENTORY_SYNC_UPGRADE_FROM", "0fefe59")


def cache_dir() -> Path:
    root = os.environ.get("INVENTORY_SYNC_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "inventory-sync"
    )
    return Path(root) / "images"


def tls_requirement() -> str:
    """The `tls` extra of pyproject.toml (what `simulate --tls` needs), e.g. cryptography>=42."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    (requirement,) = extras["tls"]
    return str(requirement)


def package_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    if match is None:
        raise ImageError("no version in pyproject.toml")
    return match.group(1)


# --------------------------------------------------------------------------- recipes


@dataclasses.dataclass(frozen=True)
class Rootfs:
    """An mmdebstrap recipe: a minbase Debian with some packages, as a tarball."""

    packages: tuple[str, ...]
    suite: str
    sources: tuple[str, ...]
    hooks: tuple[str, ...] = ()
    hook_files: tuple[Path, ...] = ()

    def key(self) -> str:
        files = [p.read_bytes().hex() for p in self.hook_files]
        return digest(
            RECIPE_VERSION,
            self.packages,
            self.suite,
            self.sources,
            DPKG_EXCLUDES,
            self.hooks,
            files,
            tool_version(["mmdebstrap", "--version"]),
        )

    def build(self, out: Path) -> None:
        argv = ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar"]
        argv += [f"--include={','.join(self.packages)}"]
        argv += [f"--dpkgopt={opt}" for opt in DPKG_EXCLUDES]
        argv += ['--aptopt=Acquire::Languages "none"']
        argv += [f"--customize-hook={hook}" for hook in self.hooks]
        argv += [self.suite, str(out), *self.sources]
        run(argv, what=f"mmdebstrap {' '.join(self.packages)}")


def python_rootfs(suite: str, sources: Sequence[str]) -> Rootfs:
    return Rootfs(PYTHON_PACKAGES, suite, tuple(sources))


def postgres_rootfs(suite: str, sources: Sequence[str]) -> Rootfs:
    entrypoint = HERE / "postgres" / "entrypoint.sh"
    return Rootfs(
        POSTGRES_PACKAGES,
        suite,
        tuple(sources),
        hooks=(
            f"copy-in {entrypoint} /usr/local/bin",
            'chmod 0755 "$1/usr/local/bin/entrypoint.sh"',
            # The package's postinst made a "main" cluster; the entrypoint makes its own.
            'rm -rf "$1/var/lib/postgresql/15/main" "$1/etc/postgresql/15/main"',
        ),
        hook_files=(entrypoint,),
    )


PYTHON_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
POSTGRES_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PGDATA=/var/lib/postgresql/data",
    "USER postgres",
    "EXPOSE 5432",
    'ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]',
)


class Builder:
    """Builds what is missing from the cache; podman only starts when something is."""

    def __init__(self, directory: Path, *, log: bool = True) -> None:
        self.directory = directory
        self.log = log
        self.timings: dict[str, float] = {}
        #: Root filesystems this build read or made (images are in what build_all returns).
        self.used: list[Path] = []
        self._podman: Podman | None = None
        self.suite = host_suite()
        self.sources = apt_sources(self.suite)

    def say(self, text: str) -> None:
        if self.log:
            print(f"images: {text}", file=sys.stderr, flush=True)

    @property
    def podman(self) -> Podman:
        if self._podman is None:
            scratch = Path(tempfile.mkdtemp(prefix=".podman-", dir=self.directory))
            self._podman = Podman(scratch)
        return self._podman

    def close(self) -> None:
        if self._podman is not None:
            self._podman.close()
            self._podman = None

    def _rootfs(self, recipe: Rootfs, label: str) -> Path:
        tar = self.directory / f"{label}-rootfs-{recipe.key()}.tar"
        self.used.append(tar)
        if tar.is_file():
            mark_used(tar)
        else:
            self.say(f"mmdebstrap {label} ({', '.join(recipe.packages)})")
            started = time.monotonic()
            partial = tar.with_suffix(".partial")
            recipe.build(partial)
            partial.rename(tar)
            self.timings[f"{label} rootfs"] = time.monotonic() - started
        return tar

    def _import(self, tar: Path, name: str, changes: Sequence[str]) -> None:
        args = ["import"]
        for change in changes:
            args += ["--change", change]
        self.podman(*args, str(tar), name, what=f"podman import {name}")

    def python_base(self) -> tuple[str, Path]:
        """(image name, rootfs tarball) of the Python base; imported into podman on use."""
        recipe = python_rootfs(self.suite, self.sources)
        return f"localhost/inventory-sync-python:3-{self.suite}", self._rootfs(recipe, "python")

    def operator(self, ref: str | None = None) -> Image:
        """The Dockerfile built from the working tree, or from git commit `ref` (tagged
        `<version>-<commit>`: an earlier release, for the upgrade test)."""
        base_name, base_tar = self.python_base()
        version = package_version()
        if ref is None:
            tag = version
            files = [
                REPO / p for p in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")
            ]
            inputs = tree_digest([*files, REPO / "operator"])
        else:
            inputs = run(["git", "-C", str(REPO), "rev-parse", f"{ref}^{{commit}}"], what="git")
            inputs = inputs.strip()
            tag = f"{version}-{inputs[:12]}"
        name = f"docker.io/library/inventory-sync-operator:{tag}"
        key = digest(RECIPE_VERSION, base_tar.name, inputs)
        archive = self.directory / f"operator-{tag}-{key}.tar"
        hit = cached(archive)
        if hit is not None:
            return hit
        context = REPO
        if ref is not None:  # the commit's tree, as a fresh clone of it would have it
            context = self.podman.scratch / f"context-{inputs[:12]}"
            context.mkdir()
            tree = subprocess.run(
                ["git", "-C", str(REPO), "archive", "--format=tar", inputs],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(context)], input=tree, check=True)
        started = time.monotonic()
        self._import(base_tar, base_name, PYTHON_CHANGES)
        argv = ["build", "--pull=never", "--network=host", "--build-arg"]
        argv += [f"PYTHON_IMAGE={base_name}", "--build-arg", f"VERSION={version}", "-t", name]
        if HOST_CA_BUNDLE.is_file():
            # The package index may sit behind a proxy whose CA only the host trusts.
            argv += ["-v", f"{HOST_CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"]
        self.say(f"podman build {name} (Dockerfile unmodified, PYTHON_IMAGE={base_name})")
        self.podman(*argv, str(context), what="podman build of the Dockerfile", cwd=context)
        image = self.podman.save(name, archive)
        self.timings[f"operator image {tag}"] = time.monotonic() - started
        return image

    def simulator(self, operator: Image) -> Image:
        """`operator` plus the `tls` extra, so `inventory-sync simulate --tls` runs in a pod."""
        containerfile = HERE / "simulator" / "Containerfile"
        requirement = tls_requirement()
        name = f"localhost/inventory-sync-simulator:{package_version()}"
        key = digest(RECIPE_VERSION, operator.archive.name, containerfile.read_text(), requirement)
        archive = self.directory / f"simulator-{key}.tar"
        hit = cached(archive)
        if hit is not None:
            return hit
        started = time.monotonic()
        self.podman("load", "-i", str(operator.archive), what=f"podman load {operator.name}")
        argv = ["build", "--pull=never", "--network=host", "-f", str(containerfile)]
        argv += ["--build-arg", f"OPERATOR_IMAGE={operator.name}"]
        argv += ["--build-arg", f"TLS_REQUIREMENT={requirement}", "-t", name]
        if HOST_CA_BUNDLE.is_file():
            argv += ["-v", f"{HOST_CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"]
        self.say(f"podman build {name} (the operator image + {requirement})")
        self.podman(*argv, str(containerfile.parent), what="podman build of the simulator")
        image = self.podman.save(name, archive)
        self.timings["simulator image"] = time.monotonic() - started
        return image

    def postgres(self) -> Image:
        recipe = postgres_rootfs(self.suite, self.sources)
        name = f"localhost/inventory-sync-postgres:{self.suite}"
        archive = self.directory / f"postgres-{recipe.key()}.tar"
        hit = cached(archive)
        if hit is not None:
            return hit
        tar = self._rootfs(recipe, "postgres")
        started = time.monotonic()
        self._import(tar, name, POSTGRES_CHANGES)
        image = self.podman.save(name, archive)
        tar.unlink()  # the saved image holds the same bytes
        self.timings["postgres image"] = time.monotonic() - started
        return image

    def pause(self, node_bin_dir: Path) -> Image:
        binary = node_bin_dir / "pause"
        tag = (node_bin_dir / "pause.tag").read_text().strip()
        name = f"registry.k8s.io/pause:{tag}"
        archive = (
            self.directory / f"pause-{tag}-{digest(RECIPE_VERSION, binary.read_bytes().hex())}.tar"
        )
        hit = cached(archive)
        if hit is not None:
            return hit
        root = self.podman.scratch / "pause-root"
        root.mkdir()
        shutil.copy2(binary, root / "pause")
        tar = self.podman.scratch / "pause-rootfs.tar"
        run(["tar", "-C", str(root), "-cf", str(tar), "pause"], what="tar pause")
        self._import(tar, name, ('ENTRYPOINT ["/pause"]', "USER 65535:65535"))
        return self.podman.save(name, archive)


def build_operator_at(ref: str, *, log: bool = True) -> Image:
    """The operator image of an earlier commit (cached by commit)."""
    directory = cache_dir()
    with build_lock(directory):
        cgroups_before = libpod_cgroups()
        builder = Builder(directory, log=log)
        try:
            return builder.operator(ref)
        finally:
            builder.close()
            remove_new_cgroups(cgroups_before)


def build_all(node_bin_dir: Path | None, *, log: bool = True) -> dict[str, Image]:
    """Every image the node tests use, built if missing; keyed operator/postgres/pause."""
    directory = cache_dir()
    with build_lock(directory):
        cgroups_before = libpod_cgroups()
        builder = Builder(directory, log=log)
        try:
            operator = builder.operator()
            images = {
                "operator": operator,
                "simulator": builder.simulator(operator),
                "postgres": builder.postgres(),
            }
            if node_bin_dir is not None:
                images["pause"] = builder.pause(node_bin_dir)
        finally:
            builder.close()
            remove_new_cgroups(cgroups_before)
        keep = [*builder.used, *(p for i in images.values() for p in (i.archive, i.metadata))]
        freed = prune(directory, keep=keep)
        if freed:
            builder.say(f"removed {freed / 1e9:.1f} GB of images unused for {UNUSED_DAYS:g} days")
        for label, seconds in builder.timings.items():
            builder.say(f"{label}: {seconds:.0f}s")
        return images


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pause-bin", type=Path, help="node bin dir (build.sh --node)")
    parser.add_argument(
        "--previous", action="store_true", help=f"also the upgrade test's image ({UPGRADE_FROM})"
    )
    parser.add_argument("--json", action="store_true", help="print the images as JSON")
    args = parser.parse_args(argv)
    try:
        images = build_all(args.pause_bin)
        if args.previous:
            images["previous"] = build_operator_at(UPGRADE_FROM)
    except ImageError as error:
        print(f"images: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: v.as_json() for k, v in images.items()}, indent=2))
    else:
        for label, image in images.items():
            print(f"{label}: {image.name} {image.size_bytes / 1e6:.0f} MB {image.archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
