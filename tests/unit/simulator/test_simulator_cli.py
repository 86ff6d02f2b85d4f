"""The `inventory-sync simulate` options and the config they produce."""

from __future__ import annotations

import argparse
import re
import socket
from pathlib import Path

import pytest

from inventory_sync.simulator import cli_options
from inventory_sync.simulator.cli import add_cli_arguments, config_from_args, main_from_args


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_serve_the_seed_dataset_on_loopback_port_8089() -> None:
    args = parse()
    config = config_from_args(args)
    assert (args.host, args.port) == ("127.0.0.1", 8089)
    assert config.workspaces[0].dataset.glp_devices == 11727
    assert config.latency.glp_devices.base_seconds == pytest.approx(0.25)


def test_scale_seed_and_latency_scale_shape_the_config() -> None:
    config = config_from_args(
        parse("--seed", "5", "--scale", "0.1", "--latency-scale", "0", "--page-mutations", "3")
    )
    assert config.seed == 5
    assert config.page_mutations == 3
    assert config.workspaces[0].dataset.glp_devices == 1173
    assert config.latency.central.seconds(100) == 0


def test_out_of_range_values_exit_with_2_and_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_from_args(parse("--page-mutations", "-1")) == 2
    assert "page_mutations" in capsys.readouterr().err


def test_negative_scale_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        parse("--scale", "-1")


def test_a_latency_profile_is_calibrated_from_the_command_line() -> None:
    config = config_from_args(
        parse(
            "--latency-scale", "0",
            "--latency", "central=0.05,0.0004",
            "--latency", "glp_devices=0.3",
            "--page-size", "central=100,500",
            "--page-size", "glp_subscriptions=50",
            "--rate-limit", "central=120",
            "--rate-limit", "classic_per_day=none",
            "--central-page-mutations", "2",
        )
    )  # fmt: skip
    assert config.latency.central.seconds(100) == pytest.approx(0.05 + 100 * 0.0004)
    assert config.latency.glp_devices.seconds(2000) == pytest.approx(0.3)
    assert config.latency.glp_subscriptions.seconds(50) == 0  # still scaled to 0
    assert (config.page_sizes.central.default, config.page_sizes.central.maximum) == (100, 500)
    assert config.page_sizes.glp_subscriptions.maximum == 50
    assert config.rate_limits.central == 120
    assert config.rate_limits.classic_per_day is None
    assert config.central_page_mutations == 2


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("--latency", "teleport=1"), id="unknown latency family"),
        pytest.param(("--latency", "central=-1"), id="negative latency"),
        pytest.param(("--page-size", "central=0"), id="page size 0"),
        pytest.param(("--page-size", "central=1.5"), id="fractional page size"),
        pytest.param(("--rate-limit", "central=0"), id="rate limit 0"),
        pytest.param(("--rate-limit", "classic_central=5"), id="classic has two budgets"),
        pytest.param(("--profile", "paranoid"), id="unknown profile"),
    ],
)
def test_malformed_calibration_options_are_refused_by_the_parser(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)


def test_a_default_page_size_above_its_maximum_exits_with_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main_from_args(parse("--page-size", "central=2000,1000")) == 2
    assert "page size" in capsys.readouterr().err


def test_the_seed_profile_and_tls_options() -> None:
    args = parse("--profile", "seed", "--tls", "--tls-name", "localhost", "--tls-name", "::1")
    dataset = config_from_args(args).workspaces[0].dataset
    assert (dataset.unknown_subscription_links, dataset.undocumented_values) == (0, False)
    assert dataset.linked_devices == 9099  # the seed's volumes, every link resolvable
    tls = cli_options.tls_from_args(args)
    assert tls is not None
    assert tls.hostnames == ("localhost", "::1")
    assert cli_options.tls_from_args(parse()) is None
    default = config_from_args(parse()).workspaces[0].dataset
    assert (default.unknown_subscription_links, default.undocumented_values) == (12, True)


def test_default_port_is_the_one_the_demo_example_uses_and_not_an_operator_port() -> None:
    """The README runs `inventory-sync simulate` next to `inventory-sync run`: the simulator's
    default must be free of the operator's ports and match examples/demo.yaml."""
    from inventory_sync.settings import Settings

    port = parse().port
    operator = Settings(database_url="postgresql://x@y/z")
    assert port not in (operator.health_port, operator.metrics_port)
    demo = (Path(__file__).resolve().parents[3] / "examples" / "demo.yaml").read_text()
    endpoints = set(re.findall(r"(?:endpoint|tokenUrl): (http://[^\s/]+)", demo))
    assert endpoints == {f"http://127.0.0.1:{port}"}


def test_host_and_port_are_options() -> None:
    args = parse("--host", "0.0.0.0", "--port", "18089")
    assert (args.host, args.port) == ("0.0.0.0", 18089)


def test_serving_on_a_taken_port_names_host_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main_from_args(parse("--host", "127.0.0.1", "--port", str(port))) == 1
    assert f"cannot serve on 127.0.0.1 port {port}" in capsys.readouterr().err
