"""``chorus feed export --jsonl``: every item of the feed as JSON lines (opt-outs honoured), with progress.
``chorus feed migrate``: move a feed from before partitions into them (core/feed/migrate.py)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from bots import registry
from core.features import CliCommand
from core.feed.exports import export_jsonl
from core.feed.migrate import migrate
from core.feed.settings import FeedSettings
from core.redis_server import open_redis
from core.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    feed = sub.add_parser("feed", help="the aggregated feed")
    feed_sub = feed.add_subparsers(dest="feed_cmd", required=True)
    export = feed_sub.add_parser("export", help="export every item of the feed")
    export.add_argument("--jsonl", action="store_true", required=True, help="one JSON object per line")
    export.add_argument("-o", "--output", type=Path, help="write to this file (default: standard output)")
    export.add_argument("--platform", default="", help="only items from this platform")
    export.add_argument("--no-progress", action="store_true", help="no progress bar on standard error")
    move = feed_sub.add_parser(
        "migrate", help="move a feed stored before partitions (under {feed}) into them"
    )
    move.add_argument("--delete", action="store_true", help="delete the old keys once moved")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.feed_cmd == "migrate":
        async with open_redis(settings) as redis:
            await migrate(redis, FeedSettings(), delete=args.delete)
        return 0
    with contextlib.ExitStack() as stack:
        out: Any = stack.enter_context(args.output.open("w", encoding="utf-8")) if args.output else sys.stdout
        async with open_redis(settings) as redis:
            count = await export_jsonl(
                redis, out, registry.catalog(), progress=not args.no_progress, platform=args.platform
            )
    print(f"exported {count} items", file=sys.stderr)
    return 0


CLI = CliCommand("feed", add_parser, run)
