"""The harness's own guards, on real namespaces: it refuses a namespace with a route out, its
teardown check catches a process left in the node's namespace, and the reaper removes the shim
sockets a killed node left while sparing live ones."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import localnode
import nodehost
import pytest

pytestmark = pytest.mark.node


@pytest.fixture
def bare(node_binaries: tuple[Path, Path], tmp_path: Path) -> Iterator[localnode.LocalNode]:
    """A node of which only the namespaces exist (no component is started)."""
    bin_dir, node_bin_dir = node_binaries
    bare = localnode.LocalNode(bin_dir=bin_dir, node_bin_dir=node_bin_dir, state_dir=tmp_path)
    bare.create_namespace()
    yield bare
    bare.stop()


def test_a_default_route_inside_makes_the_harness_refuse(bare: localnode.LocalNode) -> None:
    bare.check_isolated()  # as created: lo and a veth pair, no way out
    # A default route that leads to the veth's other end, also inside: nothing leaves, but the
    # routing table now claims a way out, and that is enough to refuse.
    bare.ip(["route", "add", "default", "via", bare.net.peer_ip])
    with pytest.raises(localnode.NodeRefused, match=r"ip route get 1\.1\.1\.1"):
        bare.check_isolated()


def test_teardown_reports_a_process_left_in_the_node_namespace(
    node_binaries: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_dir, node_bin_dir = node_binaries
    bare = localnode.LocalNode(bin_dir=bin_dir, node_bin_dir=node_bin_dir, state_dir=tmp_path)
    bare.create_namespace()
    holder = bare.namespace_holder_pid
    # Outside the node's cgroup, so teardown's kill-by-cgroup does not know about it.
    stray = subprocess.Popen(
        ["nsenter", f"--target={holder}", "--net", "--", "sleep", "600"], start_new_session=True
    )
    try:
        time.sleep(0.5)
        with pytest.raises(localnode.NodeLeftovers, match=rf"process {stray.pid} \(sleep\)"):
            bare.stop()
    finally:
        os.kill(stray.pid, signal.SIGKILL)
        stray.wait()
    assert bare.leftovers() == []


def test_the_reaper_removes_dead_shim_sockets_and_spares_live_ones(tmp_path: Path) -> None:
    sockets = tmp_path / "containerd" / "s"
    sockets.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(sockets / "dead"))
    dead.close()  # its file stays: what a SIGKILLed shim leaves
    live = socket.socket(socket.AF_UNIX)
    live.bind(str(sockets / "live"))
    live.listen()
    (sockets / "not-a-socket").write_text("")
    try:
        assert nodehost.reap_shim_sockets(sockets, keep_dirs=False) == [str(sockets / "dead")]
        assert sorted(p.name for p in sockets.iterdir()) == ["live", "not-a-socket"]
    finally:
        live.close()
    (sockets / "not-a-socket").unlink()
    assert nodehost.reap_shim_sockets(sockets, keep_dirs=True) == [str(sockets / "live")]
    assert sockets.is_dir()  # kept while a containerd might own it
    nodehost.reap_shim_sockets(sockets, keep_dirs=False)
    assert not (tmp_path / "containerd").exists()
