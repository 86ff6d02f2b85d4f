"""The `inventory-sync simulate` subcommand: arguments and entry point, mounted by the main CLI."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from inventory_sync.simulator import cli_options
from inventory_sync.simulator.config import SimulatorConfig
from inventory_sync.simulator.server import DEFAULT_HOST, DEFAULT_PORT, run_forever
from inventory_sync.simulator.tls import TlsUnavailable


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `simulate` options to `parser`."""
    defaults = SimulatorConfig()
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}; the admin API has no"
        " authentication: use 0.0.0.0 only inside a private network, e.g. a pod)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT}, the port examples/demo.yaml uses; 0 picks one)",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help=f"dataset seed (default {defaults.seed})"
    )
    parser.add_argument(
        "--scale",
        type=_non_negative_float,
        default=1.0,
        help="dataset size factor: 1.0 is 11,727 GreenLake, 8,978 Central and 5,000 classic devices",
    )
    parser.add_argument(
        "--latency-scale",
        type=_non_negative_float,
        default=1.0,
        help="latency factor: 0 answers at once, 1.0 is the default model (~3 s per full walk)",
    )
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=defaults.token_lifetime_seconds,
        help="access-token lifetime in seconds",
    )
    parser.add_argument(
        "--page-mutations",
        type=int,
        default=0,
        help="device inserts/deletes after each GreenLake devices page (offset-paging hazard)",
    )
    cli_options.add_fidelity_arguments(parser)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The SimulatorConfig the arguments describe; ValidationError when a value is out of range."""
    config = cli_options.base_config(args)
    config = config.scaled(dataset=args.scale, latency=args.latency_scale)
    return cli_options.calibrated(config, args)


def main_from_args(args: argparse.Namespace) -> int:
    """Run the simulator until interrupted; returns the process exit code."""
    try:
        config = config_from_args(args)
    except ValidationError as error:
        print(f"inventory-sync simulate: invalid option: {error}", file=sys.stderr)
        return 2
    try:
        run_forever(config, args.host, args.port, tls=cli_options.tls_from_args(args))
    except TlsUnavailable as error:
        print(f"inventory-sync simulate: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. the port is taken
        print(
            f"inventory-sync simulate: cannot serve on {args.host} port {args.port}: {error}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m inventory_sync.simulator`)."""
    parser = argparse.ArgumentParser(prog="inventory-sync simulate", description=__doc__)
    add_cli_arguments(parser)
    return main_from_args(parser.parse_args(argv))
