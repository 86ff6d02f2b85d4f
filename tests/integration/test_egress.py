"""No credential is ever sent to a link-local address, over plain http to a non-loopback host, or
to an unlisted in-cluster name: checked with listeners that record every byte they receive.

The listeners live on 169.254.169.254 and 10.0.0.5 inside a network namespace the test creates
(`unshare -rnm`: its own loopback, no route out), with a private /etc/hosts naming them, so the
operator's real upstream client (TokenProvider on build_http_client) runs against real sockets
and real name resolution, and nothing can leave the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

HOSTS = """\
127.0.0.1 localhost
169.254.169.254 central.example.test
10.0.0.5 sso.internal.test kubernetes.default.svc central-proxy.net.svc
"""

SETUP = """\
set -e
mount --bind {hosts} /etc/hosts
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
ip addr add 10.0.0.5/32 dev lo
exec {python} {child}
"""

CHILD = """\
import asyncio, json, sys
sys.path.insert(0, {tests!r})
from pydantic import SecretStr
from proxies import RecordingListener, serving
from inventory_sync.endpoints import EndpointPolicy
from inventory_sync.upstream import ClientCredentials, RetryPolicy, TokenProvider, build_http_client

SECRET = "client-secret-never-leaves"
CASES = {cases!r}


async def attempt(url, allowed):
    policy = EndpointPolicy.allowing(allowed)
    http = build_http_client(timeout=3, policy=policy)
    tokens = TokenProvider(
        http, token_url=url, policy=RetryPolicy(max_attempts=1),
        credentials=ClientCredentials(client_id="id", client_secret=SecretStr(SECRET)),
    )
    try:
        await tokens.token()
        return "ok"
    except Exception as error:
        return type(error).__name__ + ": " + str(error)
    finally:
        await http.aclose()


async def main():
    out = {{}}
    with serving(RecordingListener(), "169.254.169.254") as meta80, \\
         serving(RecordingListener(), "10.0.0.5") as plain, \\
         serving(RecordingListener(), "127.0.0.1") as loop:
        ports = {{"meta": meta80.port, "plain": plain.port, "loop": loop.port}}
        for name, case in CASES.items():
            url = case["url"].format(**ports)
            error = await attempt(url, case.get("allow", []))
            out[name] = {{"error": error}}
        out["received"] = {{
            "meta": [r.decode("latin-1") for r in meta80.received],
            "plain": [r.decode("latin-1") for r in plain.received],
            "loop": [r.decode("latin-1") for r in loop.received],
        }}
    print(json.dumps(out))


asyncio.run(main())
"""

CASES: dict[str, dict[str, Any]] = {
    "metadata address, plain http": {"url": "http://169.254.169.254:{meta}/token"},
    "metadata address, https": {"url": "https://169.254.169.254:{meta}/token"},
    "metadata address as one number": {"url": "https://2852039166:{meta}/token"},
    "a name resolving to the metadata address": {"url": "https://central.example.test:{meta}/t"},
    "plain http to a non-loopback address": {"url": "http://10.0.0.5:{plain}/token"},
    "plain http to a non-loopback name": {"url": "http://sso.internal.test:{plain}/token"},
    "an unlisted in-cluster name": {"url": "https://kubernetes.default.svc:{plain}/token"},
    "an allow-listed in-cluster name": {
        "url": "https://central-proxy.net.svc:{plain}/token",
        "allow": ["central-proxy.net.svc"],
    },
    "loopback, plain http (the simulator)": {"url": "http://127.0.0.1:{loop}/token"},
}


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rnm", "sh", "-c", "ip link set lo up"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not _can_unshare():
        pytest.skip("needs `unshare -rnm` (user, network and mount namespaces) and `ip`")
    work = tmp_path_factory.mktemp("egress")
    (work / "hosts").write_text(HOSTS)
    child = work / "child.py"
    child.write_text(CHILD.format(tests=str(REPO / "tests"), cases=CASES))
    setup = work / "setup.sh"
    setup.write_text(SETUP.format(hosts=work / "hosts", python=sys.executable, child=child))
    done = subprocess.run(
        ["unshare", "-rnm", "sh", str(setup)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("case", "refusal"),
    [
        ("metadata address, plain http", "plain http is allowed only to a loopback host"),
        ("metadata address, https", "169.254.169.254 is a link-local address"),
        ("metadata address as one number", "169.254.169.254 is a link-local address"),
        ("a name resolving to the metadata address", "central.example.test: refused: 169.254"),
        ("plain http to a non-loopback address", "plain http is allowed only to a loopback"),
        ("plain http to a non-loopback name", "plain http is allowed only to a loopback"),
        ("an unlisted in-cluster name", "kubernetes.default.svc is an in-cluster service name"),
    ],
)
def test_credentials_are_refused_before_a_byte_is_sent(
    outcome: dict[str, Any], case: str, refusal: str
) -> None:
    assert outcome[case]["error"].startswith("EndpointRefused: "), outcome[case]
    assert refusal in outcome[case]["error"]


def test_the_listeners_behind_refused_urls_received_nothing(outcome: dict[str, Any]) -> None:
    received = outcome["received"]
    assert received["meta"] == []
    # The allow-listed in-cluster name did connect (a TLS ClientHello, no credential in it).
    assert all("client-secret" not in r for r in received["plain"])
    assert len(received["plain"]) == 1


def test_loopback_and_allow_listed_hosts_do_get_through(outcome: dict[str, Any]) -> None:
    assert outcome["loopback, plain http (the simulator)"]["error"] == "ok"
    (request,) = outcome["received"]["loop"]
    assert "client_secret=client-secret-never-leaves" in request  # the listener does record
    allowed = outcome["an allow-listed in-cluster name"]["error"]
    assert not allowed.startswith("EndpointRefused"), allowed  # it failed later, in TLS
