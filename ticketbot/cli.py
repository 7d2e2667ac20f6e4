"""ticketbot: the Disdukcapil NIK/KK sync tickets in Telegram, with the daily recap email.

Every problem is one line on stderr: exit 2 for configuration (restarting cannot fix it),
exit 1 for something that may pass (Telegram or the mail server unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from ticketbot import __version__
from ticketbot.config import Config, ConfigError, config_warnings, file_holds_secret, load_config
from ticketbot.logs import redact, setup_logging

EXIT_CONFIG = 2
EXIT_RETRY = 1
HARD_STOP_SECONDS = 9.0  # SIGTERM ends the process within this, in every state


def _exit_now() -> None:
    logging.getLogger("ticketbot").warning(
        "stopping took longer than %.0f s; exiting now (nothing pending is lost)",
        HARD_STOP_SECONDS,
    )
    logging.shutdown()
    os._exit(0)


def _load(path: Path, *, need_token: bool = True) -> Config:
    try:
        return load_config(path, need_token=need_token)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    for warning in config_warnings(
        config, file_holds_secret(args.config), datetime.now(config.office.timezone).date()
    ):
        print(f"warning: {warning}", file=sys.stderr)
    print("OK")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    from telegram.error import InvalidToken, NetworkError

    from ticketbot.app import build_application, serve

    log = logging.getLogger("ticketbot")
    for warning in config_warnings(
        config, file_holds_secret(args.config), datetime.now(config.office.timezone).date()
    ):
        log.warning("%s", warning)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            stop.set()
            # Whatever still waits (a database locked by another process, a mail server
            # that never answers) may not hold the stop: everything pending is durable.
            watchdog = threading.Timer(HARD_STOP_SECONDS, _exit_now)
            watchdog.daemon = True
            watchdog.start()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        await serve(build_application(config), stop)

    try:
        asyncio.run(main())
    except InvalidToken:
        # PTB's own message quotes the token: never print it.
        print("telegram.token: Telegram refused the bot token; copy it again from @BotFather",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    except NetworkError as error:
        url = config.telegram.base_url
        print(redact(f"cannot reach Telegram at {url}: {error.message}; will retry on restart"),
              file=sys.stderr)  # fmt: skip
        return EXIT_RETRY
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    config = _load(args.config, need_token=False)
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
    config = _load(args.config, need_token=False)
    if args.test:
        return _send_test_email(config)
    if not args.dry_run:
        print("choose --dry-run (print the pending recap) or --test (send a test email);"
              " the real recap is sent by the bot, or by /rekap kirim in the group",
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


def _send_test_email(config: Config) -> int:
    """A short email with no personal data, to the recap's addresses, through the real path."""
    from ticketbot.mailer import DeliveryError, send_email
    from ticketbot.recap import test_email

    message = test_email(config)
    try:
        asyncio.run(send_email(config.smtp, message))
    except DeliveryError as error:
        print(f"smtp: test email not sent ({error.kind}): {error.reason}", file=sys.stderr)
        return EXIT_CONFIG if error.permanent else EXIT_RETRY
    smtp = config.smtp
    print(f"test email accepted by {smtp.host}:{smtp.port} for {message['To']}"
          + (f", cc {message['Cc']}" if message["Cc"] else ""))  # fmt: skip
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ticketbot.demo import run_demo

    logging.basicConfig(level=logging.WARNING)
    run_demo(args.out, sys.stdout)
    return 0


CONFIG_HELP = "the configuration file (TOML), e.g. /etc/ticketbot/config.toml"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ticketbot",
        description="Tickets for Disdukcapil's NIK/KK sync to the Data Warehouse (SOP 09):"
        " a Telegram group bot and a daily recap email.",
    )
    p.add_argument("--version", action="version", version=f"ticketbot {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the bot until SIGINT/SIGTERM (systemd runs this)")
    run.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    run.add_argument(
        "--verbose", action="store_true", help="DEBUG logs (still no NIK, phone or token)"
    )
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="check a configuration file; exit 2 if wrong")
    check.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    check.set_defaults(func=cmd_check_config)

    recap = sub.add_parser("recap", help="print the pending recap, or send a test email")
    recap.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    what = recap.add_mutually_exclusive_group()
    what.add_argument(
        "--dry-run", action="store_true", help="print the next recap email; changes nothing"
    )
    what.add_argument(
        "--test", action="store_true", help="send a short test email (no personal data)"
    )
    recap.set_defaults(func=cmd_recap)

    demo = sub.add_parser("demo", help="the whole process on this machine, no token")
    demo.add_argument(
        "--out", type=Path, default=Path("demo-out"),
        help="where the recap email, HTML and XLSX go (default ./demo-out)",
    )  # fmt: skip
    demo.set_defaults(func=cmd_demo)

    backup = sub.add_parser("backup", help="a consistent copy of the live database")
    backup.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    backup.add_argument(
        "out", type=Path, help="the new file to write (owner-only, not overwritten)"
    )
    backup.set_defaults(func=cmd_backup)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result
