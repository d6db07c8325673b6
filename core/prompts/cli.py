"""``chorus prompts list|export|import``: operators keep communities' prompts in files (e.g. in git).

The operator is trusted (they run the deployment), so the CLI names
communities explicitly; the same validation as ``/prompt set`` applies to every imported text.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from bots import registry
from core.features import CliCommand
from core.prompts.service import Prompts
from core.prompts.store import Editor
from core.prompts.transfer import apply, check_community, dump, export_bundle, format_of, load
from core.redis_server import open_redis
from core.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("prompts", help="list, export and import communities' prompts (YAML or TOML)")
    cmds = p.add_subparsers(dest="prompts_cmd", required=True)
    cmds.add_parser("list", help="communities that changed their prompts")
    export = cmds.add_parser("export", help="write one community's prompts to a file (or stdout)")
    export.add_argument("community", help="<platform>:<id>, e.g. discord:123456789 or console:local")
    export.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    export.add_argument("--format", choices=("yaml", "toml"), help="default: from the file name, else yaml")
    imp = cmds.add_parser("import", help="make a community's prompts match a file (validated first)")
    imp.add_argument("file", help="a file written by export (or by hand); - for stdin")
    imp.add_argument("--community", help="import into this community instead of the one in the file")
    imp.add_argument("--format", choices=("yaml", "toml"), help="default: from the file name")
    imp.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    imp.add_argument("-m", "--reason", default="", help="one line recorded with every change")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    async with open_redis(settings) as redis:
        prompts = Prompts(redis, registry.catalog())
        if args.prompts_cmd == "list":
            for community in await prompts.store.communities():
                custom = await prompts.customized(community)
                names = ", ".join(spec.key for spec in custom) or "(all defaults now)"
                print(f"{community}\t{names}")
            return 0
        if args.prompts_cmd == "export":
            community = check_community(args.community, prompts.platforms.names)
            fmt = format_of(args.output, args.format) if args.output != "-" else (args.format or "yaml")
            text = dump(await export_bundle(prompts, community), fmt)
            if args.output == "-":
                sys.stdout.write(text)
            else:
                await asyncio.to_thread(_write, Path(args.output), text)
                print(f"wrote {args.output}", file=sys.stderr)
            return 0
        fmt = format_of(args.file, args.format)
        raw = await asyncio.to_thread(_read, args.file)
        bundle = load(raw, fmt, prompts.platforms.names)
        community = check_community(args.community or bundle.community, prompts.platforms.names)
        user = getpass.getuser()
        editor = Editor(id=f"cli:{user}", name=user, platform="cli")
        reason = args.reason or f"import from {Path(args.file).name if args.file != '-' else 'stdin'}"
        changes = await apply(prompts, community, bundle, editor, reason, dry_run=args.dry_run)
        verb = "would change" if args.dry_run else "changed"
        print(f"{community}: {verb} {len(changes)}" + "".join(f"\n  {c}" for c in changes))
        return 0


def _read(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


CLI = CliCommand("prompts", add_parser, run)
