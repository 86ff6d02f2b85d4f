"""`inventory-sync simulate` options for fidelity and calibration: TLS, the data profile, and the
per-family latency, page sizes and rate limits (so a profile is calibrated without Python)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

from inventory_sync.simulator.config import (
    Family,
    LatencyConfig,
    LatencyModel,
    Profile,
    SimulatorConfig,
)
from inventory_sync.simulator.pagesizes import PagedList, PageLimit
from inventory_sync.simulator.tls import DEFAULT_HOSTNAMES, TlsConfig

_LATENCIES = tuple(LatencyConfig.model_fields)
_LISTS = get_args(PagedList)
_RATE_LIMITS = (
    *(f for f in get_args(Family) if f != "classic_central"),
    "classic_per_second",
    "classic_per_day",
)


def _assignment(text: str, names: tuple[str, ...]) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or name not in names:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {', '.join(names)}")
    return name, value


def _numbers(text: str, count: int) -> list[float]:
    parts = text.split(",")
    if not 1 <= len(parts) <= count:
        raise argparse.ArgumentTypeError(f"expected at most {count} comma-separated numbers")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number in {text!r}") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"numbers must be >= 0, got {text!r}")
    return values


def latency_option(text: str) -> tuple[str, LatencyModel]:
    """`FAMILY=BASE[,PER_ITEM]` in seconds, e.g. `central=0.05,0.0004`."""
    family, value = _assignment(text, _LATENCIES)
    numbers = _numbers(value, 2)
    per_item = numbers[1] if len(numbers) == 2 else 0.0
    return family, LatencyModel(base_seconds=numbers[0], per_item_seconds=per_item)


def page_size_option(text: str) -> tuple[str, tuple[int, int | None]]:
    """`LIST=DEFAULT[,MAX]`, e.g. `central=100,1000` (MAX unset: the default is the maximum)."""
    name, value = _assignment(text, _LISTS)
    numbers = _numbers(value, 2)
    if any(n < 1 or n != int(n) for n in numbers):
        raise argparse.ArgumentTypeError(f"page sizes are whole numbers >= 1, got {value!r}")
    maximum = int(numbers[1]) if len(numbers) == 2 else None
    return name, (int(numbers[0]), maximum)


def rate_limit_option(text: str) -> tuple[str, int | None]:
    """`NAME=N` requests per window (classic: per second or per day), or `NAME=none`."""
    name, value = _assignment(text, _RATE_LIMITS)
    if value.lower() == "none":
        return name, None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a rate limit is a whole number >= 1 or none: {text!r}")
    return name, int(value)


def add_fidelity_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the TLS, profile and calibration options to `parser`."""
    parser.add_argument(
        "--profile",
        choices=get_args(Profile),
        default="adversarial",
        help="adversarial (default): also undocumented values and links to unlisted "
        "subscriptions; seed: documented values only, every link resolved (the seed account)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a certificate from a CA generated at start (needs the tls extra)",
    )
    parser.add_argument(
        "--tls-ca-file",
        type=Path,
        default=None,
        help="with --tls: write the CA certificate here (default: a temporary file)",
    )
    parser.add_argument(
        "--tls-name",
        action="append",
        default=None,
        metavar="NAME",
        help=f"with --tls: a name the certificate covers (repeat; default {', '.join(DEFAULT_HOSTNAMES)})",
    )
    parser.add_argument(
        "--latency",
        type=latency_option,
        action="append",
        default=[],
        metavar="FAMILY=BASE[,PER_ITEM]",
        help=f"seconds per request and per item returned, after --latency-scale; FAMILY: {', '.join(_LATENCIES)}",
    )
    parser.add_argument(
        "--page-size",
        type=page_size_option,
        action="append",
        default=[],
        metavar="LIST=DEFAULT[,MAX]",
        help=f"default and largest accepted limit; LIST: {', '.join(_LISTS)}",
    )
    parser.add_argument(
        "--rate-limit",
        type=rate_limit_option,
        action="append",
        default=[],
        metavar="NAME=N|none",
        help=f"requests per minute (classic: per second / per day); NAME: {', '.join(_RATE_LIMITS)}",
    )
    parser.add_argument(
        "--central-page-mutations",
        type=int,
        default=0,
        help="New Central device inserts/deletes after each Central page (page numbers shift)",
    )


def base_config(args: argparse.Namespace) -> SimulatorConfig:
    """The profile's config with the plain fields the arguments set (before scaling)."""
    return SimulatorConfig.for_profile(
        args.profile,
        seed=args.seed,
        token_lifetime_seconds=args.token_lifetime,
        page_mutations=args.page_mutations,
        central_page_mutations=args.central_page_mutations,
    )


def calibrated(config: SimulatorConfig, args: argparse.Namespace) -> SimulatorConfig:
    """`config` with the --latency, --page-size and --rate-limit settings applied."""
    latency = config.latency.model_copy(update=dict(args.latency))
    sizes: dict[str, Any] = {}
    for name, (default, maximum) in args.page_size:
        sizes[name] = PageLimit(default=default, maximum=maximum or default)
    page_sizes = config.page_sizes.model_copy(update=sizes)
    # Validated again as a whole: a default above its maximum, or a limit below 1, is refused.
    return SimulatorConfig.model_validate(
        {
            **config.model_dump(),
            "latency": latency.model_dump(),
            "page_sizes": page_sizes.model_dump(),
            "rate_limits": {**config.rate_limits.model_dump(), **dict(args.rate_limit)},
        }
    )


def tls_from_args(args: argparse.Namespace) -> TlsConfig | None:
    """The TLS settings, or None without --tls."""
    if not args.tls:
        return None
    names = tuple(args.tls_name) if args.tls_name else DEFAULT_HOSTNAMES
    return TlsConfig(ca_file=args.tls_ca_file, hostnames=names)
