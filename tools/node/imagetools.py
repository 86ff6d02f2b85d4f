"""The plumbing of tools/node/images.py: podman with private configuration, tarballs cached
under a digest of their inputs (and pruned when unused for a while), the host's apt sources,
and a lock per cache."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The limits podman asks for by default (1048576) exceed this machine's hard limits, which
#: root cannot raise without CAP_SYS_RESOURCE; these are plenty for a build.
ULIMITS = ("nofile=16384:16384", "nproc=16384:16384")


class ImageError(RuntimeError):
    """An image could not be built; the message names the step and the tool's last lines."""


@dataclasses.dataclass(frozen=True)
class Image:
    """A built image: its name, the cached docker-archive, and its size as podman reports it."""

    name: str
    archive: Path
    size_bytes: int

    @property
    def metadata(self) -> Path:
        """The JSON beside the archive (name and size): a cache entry is both files."""
        return metadata_of(self.archive)

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "archive": str(self.archive), "size_bytes": self.size_bytes}


def host_suite() -> str:
    """The Debian codename of this machine: the base images use the same release."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise ImageError("/etc/os-release has no VERSION_CODENAME")


def apt_sources(suite: str) -> list[str]:
    """One-line `deb URI SUITE COMPONENTS` entries of the host's Debian sources for `suite`
    (main, -updates, -security); third-party repositories are left out."""
    entries: list[str] = []
    deb822 = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in deb822:
        for stanza in path.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line and not line.startswith(("#", " ")) and ":" in line:
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            for uri in fields.get("uris", "").split():
                for each in fields.get("suites", "").split():
                    if each.split("-")[0] == suite and "debian" in uri:
                        entries.append(f"deb {uri} {each} {fields.get('components', 'main')}")
    legacy = Path("/etc/apt/sources.list")
    if not entries and legacy.is_file():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[0] == "deb" and parts[2].split("-")[0] == suite:
                entries.append(" ".join(parts))
    if not entries:
        raise ImageError(f"no Debian apt source for {suite} in /etc/apt (mmdebstrap needs one)")
    return entries


def tool_version(argv: Sequence[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def tree_digest(paths: Sequence[Path]) -> str:
    """A digest of the files the Dockerfile's build context sends (see .dockerignore)."""
    h = hashlib.sha256()
    for root in paths:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            rel = path.relative_to(REPO).as_posix()
            if not path.is_file() or "__pycache__" in rel or ".egg-info" in rel:
                continue
            if path.suffix in (".pyc", ".pyo", ".pyd"):
                continue
            h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def run(
    argv: Sequence[str], *, what: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    """Run a tool; ImageError with its last output lines when it fails."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ImageError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


class Podman:
    """podman with private config and a throwaway storage under `scratch`."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        conf = scratch / "conf"
        conf.mkdir(parents=True)
        ulimits = ", ".join(f'"{u}"' for u in ULIMITS)
        # runc, cgroupfs: crun refuses this machine's cgroup v1 hybrid layout. netns none: no
        # bridge network and no iptables rules on the host.
        (conf / "containers.conf").write_text(
            "[containers]\n"
            f"default_ulimits = [{ulimits}]\n"
            'netns = "none"\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "none"\n'
            f'tmp_dir = "{scratch / "tmp"}"\n'
            "[network]\n"
            f'network_config_dir = "{scratch / "networks"}"\n'
        )
        (conf / "storage.conf").write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{scratch / "storage"}"\n'
            f'runroot = "{scratch / "run"}"\n'
        )
        (conf / "registries.conf").write_text("unqualified-search-registries = []\n")
        self.env = dict(
            os.environ,
            CONTAINERS_CONF=str(conf / "containers.conf"),
            CONTAINERS_STORAGE_CONF=str(conf / "storage.conf"),
            CONTAINERS_REGISTRIES_CONF=str(conf / "registries.conf"),
        )

    def __call__(self, *args: str, what: str, cwd: Path | None = None) -> str:
        return run(["podman", *args], what=what, env=self.env, cwd=cwd)

    def size(self, name: str) -> int:
        return int(self("image", "inspect", "--format", "{{.Size}}", name, what="inspect").strip())

    def save(self, name: str, archive: Path) -> Image:
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        self("save", "--format", "docker-archive", "-o", str(partial), name, what=f"save {name}")
        image = Image(name=name, archive=archive, size_bytes=self.size(name))
        partial.rename(archive)
        image.metadata.write_text(json.dumps(image.as_json(), indent=2) + "\n")
        return image

    def close(self) -> None:
        """Remove the storage; podman unmounts its layers when it is done, verify and go."""
        mounted = [
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(str(self.scratch))
        ]
        for point in sorted(mounted, reverse=True):
            subprocess.run(["umount", point], check=False)
        shutil.rmtree(self.scratch, ignore_errors=True)


def metadata_of(archive: Path) -> Path:
    return archive.with_suffix(".json")


def cached(archive: Path) -> Image | None:
    meta = metadata_of(archive)
    if archive.is_file() and meta.is_file():
        data = json.loads(meta.read_text())
        mark_used(archive, meta)
        return Image(name=data["name"], archive=archive, size_bytes=int(data["size_bytes"]))
    return None


#: A cached tarball nobody has used for this long is removed by the next build: every commit
#: that touches operator/ adds about 0.9 GB (operator and simulator images), and the key of
#: the Debian-based ones moves with the package index.
UNUSED_DAYS = 3.0
#: What a build leaves in the cache directory: images, their metadata, root filesystems, and
#: the `.partial` files and `.podman-*` storages of builds that died.
CACHE_PATTERNS = ("*.tar", "*.json", "*.partial", ".podman-*")


def mark_used(*paths: Path) -> None:
    """A cache hit: the modification time says when an entry was last used (atime is often
    not kept), so pruning spares it."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)


def prune(directory: Path, *, keep: Iterable[Path], unused_days: float = UNUSED_DAYS) -> int:
    """Remove cache entries of `directory` unused for `unused_days`, except `keep` (what this
    build used); returns the bytes freed. Call it holding the cache's lock: no other build
    is writing then, so an old `.partial` or `.podman-*` belongs to a build that died."""
    kept = {path.resolve() for path in keep}
    cutoff = time.time() - unused_days * 86_400
    freed = 0
    for pattern in CACHE_PATTERNS:
        for path in directory.glob(pattern):
            if path.resolve() in kept or path.lstat().st_mtime >= cutoff:
                continue
            if path.is_dir():
                freed += sum(f.lstat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path, ignore_errors=True)
            else:
                freed += path.lstat().st_size
                path.unlink(missing_ok=True)
    return freed


@contextlib.contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    """One builder at a time per cache (two pytest sessions, or pytest and .ci/run)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# podman (runc, cgroupfs) leaves an empty libpod_parent cgroup per hierarchy behind.
def libpod_cgroups() -> set[Path]:
    return set(Path("/sys/fs/cgroup").glob("*/libpod_parent"))


def remove_new_cgroups(before: set[Path]) -> None:
    for path in libpod_cgroups() - before:
        for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            path.rmdir()
