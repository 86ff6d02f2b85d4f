"""The `inventory-sync simulate` options and the config they produce."""

from __future__ import annotations

import argparse

import pytest

from inventory_sync.simulator.cli import add_cli_arguments, config_from_args, main_from_args


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_serve_the_seed_dataset_on_port_8080() -> None:
    args = parse()
    config = config_from_args(args)
    assert args.port == 8080
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
