"""`ticketbot` command line (SPEC §5). Errors are one English line on stderr; exit 2."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from ticketbot.config import Config, ConfigError, load_config
from ticketbot.logs import setup_logging

EXIT_CONFIG = 2


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    _load(args.config)
    print("OK")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    from ticketbot.app import build_application, serve

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(build_application(config), stop)

    asyncio.run(main())
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    config = _load(args.config)
    from ticketbot.repository import Repository

    if not config.database_path.exists():
        print(f"database.path: {config.database_path} does not exist", file=sys.stderr)
        return EXIT_CONFIG
    if args.out.exists():
        print(f"{args.out} already exists; choose a new file name", file=sys.stderr)
        return EXIT_CONFIG

    async def main() -> None:
        repo = await Repository.open(config.database_path, migrate=False)
        try:
            await repo.backup_to(args.out)
        finally:
            await repo.close()

    asyncio.run(main())
    print(f"backup written to {args.out}")
    return 0


def cmd_recap(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if not args.dry_run:
        print("only --dry-run is supported here; send with /rekap kirim in the group",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    from ticketbot.clock import now_utc
    from ticketbot.recap import RecapDesk
    from ticketbot.repository import Repository, migration_files
    from ticketbot.texts import Texts

    if not config.database_path.exists():
        print(f"database.path: {config.database_path} does not exist", file=sys.stderr)
        return EXIT_CONFIG

    async def main() -> int:
        # Read only: no migration, no batch frozen, nothing sent.
        repo = await Repository.open(config.database_path, migrate=False)
        try:
            if await repo.schema_version() != len(migration_files()):
                print("database.path: the database needs migrating; start the bot once",
                      file=sys.stderr)  # fmt: skip
                return EXIT_CONFIG
            desk = RecapDesk(config, repo, Texts(config.office.timezone), now_utc)
            content = await desk.preview_email()
        finally:
            await repo.close()
        print(f"Subject: {content.subject}\nAttachment: {content.filename}\n")
        print(content.text, end="")
        return 0

    return asyncio.run(main())


def cmd_demo(args: argparse.Namespace) -> int:
    from ticketbot.demo import run_demo

    logging.basicConfig(level=logging.WARNING)
    run_demo(args.out, sys.stdout)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ticketbot", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bot (long polling) until SIGINT/SIGTERM")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("--config", type=Path, required=True)
    check.set_defaults(func=cmd_check_config)

    recap = sub.add_parser("recap", help="render the pending recap to stdout")
    recap.add_argument("--config", type=Path, required=True)
    recap.add_argument("--dry-run", action="store_true", help="print it; change nothing")
    recap.set_defaults(func=cmd_recap)

    demo = sub.add_parser("demo", help="the whole process on this machine, no token")
    demo.add_argument(
        "--out", type=Path, default=Path("demo-out"),
        help="where the recap email, HTML and XLSX go (default ./demo-out)",
    )  # fmt: skip
    demo.set_defaults(func=cmd_demo)

    backup = sub.add_parser("backup", help="consistent copy of the live database")
    backup.add_argument("--config", type=Path, required=True)
    backup.add_argument("out", type=Path)
    backup.set_defaults(func=cmd_backup)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result
