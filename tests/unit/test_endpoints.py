"""Where credentials may go: the static URL rules, the in-cluster allow-list, the preflight that
names the field, and the request check on the upstream HTTP client."""

from __future__ import annotations

import httpx
import pytest

from inventory_sync.endpoints import EndpointPolicy, static_url_problem
from inventory_sync.errors import EndpointRefused
from inventory_sync.models import parse_sync_schedule_spec
from inventory_sync.syncing.preflight import check_endpoints
from inventory_sync.upstream import build_http_client


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://global.api.greenlake.hpe.com", None),
        ("http://127.0.0.1:8089/as/token.oauth2", None),
        ("http://localhost:8089", None),
        ("http://[::1]:8089", None),
        ("https://10.1.2.3/api", None),
        ("http://central.example.test", "plain http is allowed only to a loopback host"),
        ("http://vm:8089", "plain http is allowed only to a loopback host"),
        ("https://169.254.169.254/latest", "169.254.169.254 is a link-local address"),
        ("https://2852039166/", "169.254.169.254 is a link-local address"),
        ("https://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254 is a link-local address"),
        ("https://[::ffff:169.254.169.254]/", "169.254.169.254 is a link-local address"),
        ("https://[fe80::1]/", "fe80::1 is a link-local address"),
        ("https://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
        ("https://100.100.100.200/", "100.100.100.200 is a cloud metadata address"),
        ("https://0.0.0.0/", "0.0.0.0 is not a host address"),
        ("https://Metadata.Google.Internal./x", "metadata.google.internal is a cloud metadata"),
        ("https://a.example.test/\nHost: x", "whitespace or a control character"),
        ("https://user:pw@a.example.test/", "must not carry user information"),
        ("ftp://a.example.test/", "must start with https://"),
        ("https://a.example.test:99999/", "not a valid URL"),
    ],
)
def test_static_url_rules(url: str, problem: str | None) -> None:
    found = static_url_problem(url)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_in_cluster_names_need_the_allow_list() -> None:
    url = "https://central-proxy.net.svc.cluster.local/api"
    assert "in-cluster service name" in (EndpointPolicy().url_problem(url) or "")
    assert EndpointPolicy.allowing(["central-proxy.net.svc.cluster.local"]).url_problem(url) is None
    assert EndpointPolicy().url_problem("https://kubernetes.default/x")


def test_preflight_names_the_field_of_a_refused_endpoint() -> None:
    spec = parse_sync_schedule_spec(
        {
            "interval": "15m",
            "sources": [
                {
                    "name": "central",
                    "arubaCentral": {
                        "endpoint": "https://de1.api.central.arubanetworks.com",
                        "tokenUrl": "https://sso.auth.svc/token",
                        "workspaceId": "w",
                        "credentialsSecretRef": {"name": "c"},
                    },
                }
            ],
        }
    )
    with pytest.raises(EndpointRefused, match=r"spec.sources\[0\].arubaCentral.tokenUrl: sso"):
        check_endpoints(spec, EndpointPolicy())
    check_endpoints(spec, EndpointPolicy.allowing(["sso.auth.svc"]))


async def test_the_upstream_client_refuses_before_sending() -> None:
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200))
    async with build_http_client(timeout=5, transport=transport) as http:
        with pytest.raises(EndpointRefused, match="plain http is allowed only"):
            await http.post("http://sso.example.test/token", data={"client_secret": "s"})
        with pytest.raises(EndpointRefused, match="in-cluster service name"):
            await http.get("https://api.team.svc/x")
        assert (await http.get("https://api.example.test/x")).status_code == 200
    assert [str(r.url) for r in sent] == ["https://api.example.test/x"]
