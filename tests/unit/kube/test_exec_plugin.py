"""Exec credential plugins run for real (small scripts): interactive modes, caching, renewal after
a 401 shared by concurrent callers, what a broken plugin makes us say, and kopf's re-login."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from inventory_sync.errors import KubeConfigError, KubernetesError, KubeUnauthorized
from inventory_sync.kube import Credential, ExecConfig, KubeClient, KubeConnection
from inventory_sync.kube.credentials import ExecCredentials
from inventory_sync.kube.exec_plugin import V1, V1BETA1, interactive, run_plugin
from inventory_sync.kube.sessions import KopfLogin

SECRET = "exec-token-never-shown"


def script(tmp_path: Path, body: str, name: str = "plugin") -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport json, os, sys, pathlib\n{body}\n")
    path.chmod(0o755)
    return str(path)


def counting_plugin(tmp_path: Path, version: str = V1) -> str:
    """Prints token-<n> on its n-th run and records its runs and stdin."""
    return script(
        tmp_path,
        f"""
state = pathlib.Path({str(tmp_path)!r})
n = len(list(state.glob("run-*"))) + 1
(state / f"run-{{n}}").write_text(repr(sys.stdin.read()) + os.environ["KUBERNETES_EXEC_INFO"])
print(json.dumps({{"apiVersion": "{version}", "kind": "ExecCredential",
                  "status": {{"token": f"token-{{n}}"}}}}))
""",
    )


def config(command: str, *, mode: str = "Never", version: str = V1) -> ExecConfig:
    return ExecConfig(command=command, api_version=version, interactive_mode=mode)


@pytest.mark.parametrize(
    ("mode", "terminal", "prompts"),
    [
        ("Never", True, False),
        ("IfAvailable", True, True),
        ("IfAvailable", False, False),
        ("Always", True, True),
    ],
)
def test_interactive_mode_decides_whether_the_plugin_may_prompt(
    mode: str, terminal: bool, prompts: bool
) -> None:
    assert interactive(config("x", mode=mode), terminal=terminal, origin="o") is prompts


def test_always_interactive_without_a_terminal_is_refused() -> None:
    with pytest.raises(KubeConfigError, match="needs a terminal"):
        interactive(config("x", mode="Always"), terminal=False, origin="o")


async def test_a_non_interactive_plugin_gets_no_stdin_and_says_so(tmp_path: Path) -> None:
    command = counting_plugin(tmp_path, V1BETA1)
    credential = await run_plugin(
        config(command, mode="IfAvailable", version=V1BETA1), origin="o", terminal=False
    )
    assert credential.token == "token-1"
    recorded = (tmp_path / "run-1").read_text()
    assert recorded.startswith("''")  # stdin was /dev/null: nothing to read, no hang
    info = json.loads(recorded[2:])
    assert info == {"apiVersion": V1BETA1, "kind": "ExecCredential", "spec": {"interactive": False}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("print('not json')", "did not print an ExecCredential"),
        (
            f"print(json.dumps({{'apiVersion': '{V1BETA1}', 'kind': 'ExecCredential', "
            f"'status': {{'token': '{SECRET}'}}}}))",
            "answered with apiVersion",
        ),
        (
            f"print(json.dumps({{'apiVersion': '{V1}', 'kind': 'ExecCredential', 'status': {{}}}}))",
            "neither a token nor a client certificate",
        ),
        (
            f"print(json.dumps({{'apiVersion': '{V1}', 'kind': 'ExecCredential', "
            f"'status': {{'token': '{SECRET}', 'expirationTimestamp': 'soon'}}}}))",
            "expirationTimestamp is not RFC 3339",
        ),
    ],
)
async def test_a_wrong_answer_is_a_kubeconfig_error_without_the_secret(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(KubeConfigError, match=message) as caught:
        await run_plugin(config(script(tmp_path, body)), origin="o")
    assert SECRET not in str(caught.value)


async def test_a_failing_plugin_is_retryable_and_a_missing_one_gives_the_install_hint(
    tmp_path: Path,
) -> None:
    with pytest.raises(KubernetesError, match="failed with exit code 3") as failed:
        await run_plugin(config(script(tmp_path, "sys.exit(3)")), origin="o")
    assert not failed.value.permanent
    missing = ExecConfig(
        command=str(tmp_path / "absent"), api_version=V1, interactive_mode="Never",
        install_hint="Install gke-gcloud-auth-plugin for use with kubectl",
    )  # fmt: skip
    with pytest.raises(KubeConfigError, match="not found; Install gke-gcloud-auth-plugin"):
        await run_plugin(missing, origin="o")


async def test_a_hung_plugin_is_given_up_on(tmp_path: Path) -> None:
    command = script(tmp_path, "import time; time.sleep(30)")
    with pytest.raises(KubernetesError, match="gave no answer within 0s"):
        await run_plugin(config(command), origin="o", give_up_after=0.2)


async def test_cached_until_expiry_and_one_renewal_for_concurrent_401s() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    issued: list[Credential] = []

    async def fetch() -> Credential:
        await asyncio.sleep(0.01)
        issued.append(Credential(token=f"t{len(issued)}", expires_at=now + timedelta(minutes=5)))
        return issued[-1]

    clock = [now]
    source = ExecCredentials(fetch, clock=lambda: clock[0])
    first = await source.current()
    assert await source.current() is first
    clock[0] = now + timedelta(minutes=4)
    assert await source.current() is first  # not expired yet
    renewed = await asyncio.gather(*(source.renew(first) for _ in range(5)))
    assert {r.token for r in renewed if r} == {"t1"}  # five 401s, one plugin run
    clock[0] = now + timedelta(minutes=6)
    assert (await source.current()).token == "t2"  # expired: runs again
    assert source.runs == 3


async def test_the_client_reruns_the_plugin_after_a_401(tmp_path: Path) -> None:
    command = counting_plugin(tmp_path)
    connection = KubeConnection(
        server="https://fab.example.test", exec_plugin=config(command), origin="test"
    )
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        ok = request.headers["authorization"] == "Bearer token-2"
        return httpx.Response(200 if ok else 401, json={"kind": "Status", "code": 401})

    async with KubeClient(connection, transport=httpx.MockTransport(answer)) as client:
        await client.get("/version")
        await client.get("/version")
    assert seen == ["Bearer token-1", "Bearer token-2", "Bearer token-2"]


async def test_kopf_relogin_renews_the_credential_it_handed_out(tmp_path: Path) -> None:
    command = counting_plugin(tmp_path)
    connection = KubeConnection(server="https://f.example.test", exec_plugin=config(command))
    login = KopfLogin(connection)
    assert (await login.credential()).token == "token-1"
    assert (await login.credential()).token == "token-2"  # kopf asks again: it was refused

    fixed = KopfLogin(KubeConnection(server="https://f.example.test", token=SECRET))
    assert (await fixed.credential()).token == SECRET
    with pytest.raises(KubeUnauthorized, match="cannot be renewed") as caught:
        await fixed.credential()
    assert SECRET not in str(caught.value)
