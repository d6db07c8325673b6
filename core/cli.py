"""The ``chorus`` command: run the bots, run workers, check configuration.

Errors a user can fix (missing settings, Redis unreachable) print one clear line and exit 2; nothing prints
a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from bots import registry
from core import logs, redis_server
from core.app import FEATURES, Run, choose_platforms, install_signal_handlers
from core.errors import ChorusError
from core.features import CliCommand, RunSubcommand
from core.settings import Settings

log = logging.getLogger("chorus")


def feature_commands() -> dict[str, CliCommand]:
    """The subcommands features contribute (``prompts``, ``feed``), by name."""
    return {command.name: command for feature in FEATURES for command in feature.cli}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chorus", description="Chorus: an AI content assistant for communities.")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run adapters, a worker and the scheduler in one process")
    run.add_argument(
        "--platform",
        action="append",
        choices=registry.ALL,
        help="start only this platform (repeatable); default: every configured one, else the console",
    )
    run.add_argument("--moderator", action="store_true", help="console: you moderate the local community")
    run.add_argument("--no-worker", action="store_true", help="adapters only; workers run elsewhere")

    worker = sub.add_parser("worker", help="run workers only, against the same Redis")
    worker.add_argument("--concurrency", type=int, default=None, help="Events handled at once")
    worker.add_argument("--no-scheduler", action="store_true", help="leave scheduled jobs to other processes")
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics, /healthz and /readyz on this port (default CHORUS_WORKER_METRICS_PORT, 9188; 0: off)",
    )

    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_cmd", required=True)
    config_sub.add_parser("check", help="print the effective configuration (secrets masked)")

    for command in feature_commands().values():
        command.add_parser(sub)
    return p


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    job = Run(
        settings,
        platforms=choose_platforms(args.platform),
        worker=not args.no_worker,
        options={"moderator": args.moderator},
    )
    install_signal_handlers(job.stop.set)
    await job()
    return 0


async def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if args.concurrency:
        settings = settings.model_copy(update={"worker_concurrency": args.concurrency})
    port = settings.worker_metrics_port if args.metrics_port is None else args.metrics_port
    job = Run(
        settings, platforms=[], worker=True, scheduler=not args.no_scheduler, background=False, ops_port=port
    )
    install_signal_handlers(job.stop.set)
    await job()
    return 0


async def _config_check(args: argparse.Namespace, settings: Settings) -> int:
    out = ["Chorus configuration", ""]
    for key, value in settings.describe().items():
        out.append(f"  {key} = {value}")
    out.append("")
    out.append(f"Redis: {redis_server.describe(settings)}")
    for feature in FEATURES:
        if feature.describe is not None:
            out.extend(f"{key}: {value}" for key, value in feature.describe(settings).items())
    out.append("")
    out.append("Platforms:")
    for name in registry.PLATFORMS:
        if not registry.available(name):
            out.append(f"  {name}: not built in this version")
            continue
        ps = registry.settings_for(name)
        state = "configured" if ps.configured else f"not configured (missing: {', '.join(ps.missing())})"
        out.append(f"  {name}: {state}")
        for key, value in ps.describe().items():
            out.append(f"      {key} = {value}")
    out.append("  console: always available (used when no platform is configured)")
    print("\n".join(out))
    return 0


COMMANDS: dict[str, RunSubcommand] = {"run": _run, "worker": _worker}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError: say which variable is wrong
        print(f"chorus: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logs.setup("DEBUG" if args.debug else settings.log_level, settings.log_format, _all_secrets(settings))
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    if args.cmd == "config":
        handler: RunSubcommand = _config_check
    elif args.cmd in COMMANDS:
        handler = COMMANDS[args.cmd]
    else:
        handler = feature_commands()[args.cmd].run
    try:
        return asyncio.run(handler(args, settings))
    except ChorusError as exc:
        if args.debug:
            raise
        print(f"chorus: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        log.error("unexpected error: %r", exc)
        print("chorus: unexpected error (run with --debug for a traceback)", file=sys.stderr)
        return 1


def _all_secrets(settings: Settings) -> list[str]:
    """Root and adapter secrets, so no platform token can reach a log line."""
    secrets = settings.secrets()
    for name in registry.PLATFORMS:
        if registry.available(name):
            try:
                secrets.extend(registry.settings_for(name).secrets())
            except Exception as exc:  # an invalid adapter setting is reported when that adapter starts
                log.debug("cannot read %s settings: %s", name, type(exc).__name__)
    return secrets


if __name__ == "__main__":
    sys.exit(main())
