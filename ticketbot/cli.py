"""ticketbot: the Disdukcapil NIK/KK sync tickets in Telegram, with the daily recap email.

Every problem is one line on stderr: exit 2 for configuration (restarting cannot fix it),
exit 1 for something that may pass (Telegram or the mail server unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticketbot import __version__
from ticketbot.config import Config, ConfigError, config_warnings, file_holds_secret, load_config
from ticketbot.logs import redact, setup_logging
from ticketbot.paths import unusable_directory, unwritable

if TYPE_CHECKING:
    from ticketbot.store import Stores

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


def office_today(config: Config) -> date:
    """Today at the office: what the warnings look ahead from (tests pin it)."""
    return datetime.now(config.office.timezone).date()


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    for warning in config_warnings(config, file_holds_secret(args.config), office_today(config)):
        print(f"warning: {warning}", file=sys.stderr)
    print("OK")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    from telegram.error import InvalidToken, NetworkError

    from ticketbot.app import build_application, serve

    log = logging.getLogger("ticketbot")
    for warning in config_warnings(config, file_holds_secret(args.config), office_today(config)):
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
    from ticketbot.store import Stores

    if not config.database_path.exists():
        print(f"database.path: {config.database_path} does not exist", file=sys.stderr)
        return EXIT_CONFIG
    if problem := unwritable(args.out):
        print(problem, file=sys.stderr)
        return EXIT_CONFIG

    async def main() -> None:
        repo = await Stores.open(config.database_path, migrate=False)
        try:
            await repo.db.backup_to(args.out)
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
    from ticketbot.texts import Texts

    async def main() -> int:
        # Read only: no migration, no batch frozen, nothing sent.
        async with _database(config) as repo:
            desk = RecapDesk(config, repo, Texts(config.office.timezone), now_utc)
            content = await desk.preview_email()
        if content is None:
            print("nothing pending: no ticket waits for the next recap, so none would be sent")
            return 0
        print(f"Subject: {content.subject}\nAttachment: {content.filename}\n")
        print(content.text, end="")
        return 0

    return _run_on_database(config, main)


def cmd_mailbox(args: argparse.Namespace) -> int:
    """`mailbox --test`: log in to [mailbox] and look at its folder; one line either way."""
    config = _load(args.config, need_token=False)
    if not args.test:
        print("choose --test (log in and list the folder); the bot itself watches the mailbox",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    if not config.mailbox.enabled:
        print("mailbox.host: is empty, so the mailbox is off; set [mailbox] first",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    from ticketbot.mailbox import MailboxError, describe

    try:
        print(asyncio.run(asyncio.wait_for(describe(config.mailbox), 90)))
    except MailboxError as error:
        print(f"mailbox: {error.problem}: {redact(error.detail)}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"mailbox: unreachable: {config.mailbox.host} did not answer in 90 s",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


class _Refused(Exception):
    """A one-line problem with the database; exit 2."""


@contextlib.asynccontextmanager
async def _database(config: Config) -> AsyncIterator[Stores]:
    """The bot's database as it is: never created, never migrated here."""
    from ticketbot.schema import migration_files
    from ticketbot.store import Stores

    repo = await Stores.open(config.database_path, migrate=False)
    try:
        if await repo.db.schema_version() != len(migration_files()):
            raise _Refused("database.path: the database needs migrating; start the bot once")
        yield repo
    finally:
        await repo.close()


def _run_on_database(config: Config, main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    if not config.database_path.exists():
        print(f"database.path: {config.database_path} does not exist", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return asyncio.run(main())
    except _Refused as problem:
        print(problem, file=sys.stderr)
        return EXIT_CONFIG


def cmd_report(args: argparse.Namespace) -> int:
    """The monthly report's files (SPEC §4b), owner-only, in --out."""
    config = _load(args.config, need_token=False)
    from ticketbot.clock import now_utc
    from ticketbot.domain.report import Month
    from ticketbot.report import ReportDesk
    from ticketbot.texts import Texts

    try:
        month = Month.parse(args.month)
    except ValueError:
        print(f"--month: {args.month!r} is not a month like 2026-10", file=sys.stderr)
        return EXIT_CONFIG
    if month > Month.of(now_utc().astimezone(config.office.timezone).date()):
        print(f"--month: {month} has not begun yet", file=sys.stderr)
        return EXIT_CONFIG
    out: Path = args.out
    if problem := unusable_directory(out):
        print(f"--out: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    names = tuple(f"laporan-{month}.{kind}" for kind in ("png", "xlsx", "txt"))
    kode = config.office.kode_wilayah
    if kode:  # the province's figures, without personal data (SPEC §4b)
        names += (f"ringkasan-{kode}-{month}.json",)
    for name in names:
        if out.exists() and (problem := unwritable(out / name)):
            print(f"--out: {problem}", file=sys.stderr)
            return EXIT_CONFIG

    async def main() -> int:
        async with _database(config) as repo:
            desk = ReportDesk(config, repo, Texts(config.office.timezone), now_utc)
            files = await desk.build(month)
            datas = [files.png, files.xlsx, files.text.encode("utf-8")]
            if kode:
                datas.append(await desk.province_summary(files))
        await asyncio.to_thread(write_files, out, zip(names, datas, strict=True))
        return 0

    return _run_on_database(config, main)


def cmd_province_report(args: argparse.Namespace) -> int:
    """Merge offices' monthly summaries of one month (SPEC §4b); needs no configuration."""
    from ticketbot.province import province_files, read_summaries

    out: Path = args.out
    if problem := unusable_directory(out):
        print(f"--out: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    found = read_summaries(args.files)
    if isinstance(found, str):
        print(found, file=sys.stderr)
        return EXIT_CONFIG
    month, xlsx, png = province_files(found)
    names = (f"provinsi-{month}.xlsx", f"provinsi-{month}.png")
    for name in names:
        if out.exists() and (problem := unwritable(out / name)):
            print(f"--out: {problem}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        write_files(out, zip(names, (xlsx, png), strict=True))
    except _Refused as refused:
        print(refused, file=sys.stderr)
        return EXIT_CONFIG
    return 0


def write_files(out: Path, files: Iterable[tuple[str, bytes]]) -> None:
    """New owner-only files in `out` (made if missing, its parent being there)."""
    from ticketbot.paths import write_private

    out.mkdir(mode=0o700, exist_ok=True)
    for name, data in files:
        try:
            write_private(out / name, data)
        except OSError as error:
            raise _Refused(f"--out: cannot write {out / name}: {error.strerror}") from None
        print(out / name)


def cmd_export(args: argparse.Namespace) -> int:
    """Everything held on one NIK (the resident's right of access), owner-only."""
    config = _load(args.config, need_token=False)
    from ticketbot.clock import now_utc
    from ticketbot.domain.privacy import ascii_digits, mask_number, strip_separators
    from ticketbot.retention import Retention, operator

    # `--nik -`: read from standard input, so the number need not stand in shell history.
    given = sys.stdin.readline() if args.nik == "-" else args.nik
    nik = ascii_digits(strip_separators(given.strip()))
    if len(nik) != 16 or not nik.isascii() or not nik.isdigit():
        print("--nik: a NIK is 16 digits", file=sys.stderr)
        return EXIT_CONFIG
    if problem := unwritable(args.out):
        print(f"--out: {problem}", file=sys.stderr)
        return EXIT_CONFIG

    async def main() -> int:
        async with _database(config) as repo:
            retention = Retention(config, repo, now_utc)
            try:
                found = await retention.export(nik, args.out, operator(retention.texts))
            except OSError as error:
                raise _Refused(f"--out: cannot write {args.out}: {error.strerror}") from None
        print(f"{found} ticket(s) for NIK {mask_number(nik)} written to {args.out}")
        return 0

    return _run_on_database(config, main)


def cmd_purge(args: argparse.Namespace) -> int:
    """Apply the retention rule now (the bot also does it daily)."""
    config = _load(args.config, need_token=False)
    from ticketbot.clock import now_utc
    from ticketbot.retention import Retention, operator

    async def main() -> int:
        async with _database(config) as repo:
            retention = Retention(config, repo, now_utc)
            if args.dry_run:
                due = await retention.due()
                shown = ", ".join(f"#{i}" for i in due[:50]) + (" …" if len(due) > 50 else "")
                print(
                    f"{len(due)} closed ticket(s) past {config.retention_days} days would be"
                    f" purged{': ' + shown if due else ''}; nothing changed (--dry-run)"
                )
                return 0
            purged = await retention.purge(operator(retention.texts))
        print(f"{len(purged)} closed ticket(s) past {config.retention_days} days purged")
        return 0

    return _run_on_database(config, main)


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

    out: Path = args.out
    if problem := unusable_directory(out):
        print(f"--out: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(level=logging.WARNING)
    run_demo(out, sys.stdout)
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

    def verb(name: str, about: str) -> argparse.ArgumentParser:
        # The line in the verb list is also the first line of the verb's own --help.
        return sub.add_parser(name, help=about, description=about)

    run = verb("run", "run the bot until SIGINT/SIGTERM (systemd runs this)")
    run.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    run.add_argument(
        "--verbose", action="store_true", help="DEBUG logs (still no NIK, phone or token)"
    )
    run.set_defaults(func=cmd_run)

    check = verb("check-config", "check a configuration file; exit 2 if wrong")
    check.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    check.set_defaults(func=cmd_check_config)

    recap = verb("recap", "print the pending recap, or send a test email")
    recap.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    what = recap.add_mutually_exclusive_group()
    what.add_argument(
        "--dry-run", action="store_true", help="print the next recap email; changes nothing"
    )
    what.add_argument(
        "--test", action="store_true", help="send a short test email (no personal data)"
    )
    recap.set_defaults(func=cmd_recap)

    demo = verb("demo", "the whole process on this machine, no token")
    demo.add_argument(
        "--out", type=Path, default=Path("demo-out"),
        help="where the recap email, HTML and XLSX go (default ./demo-out)",
    )  # fmt: skip
    demo.set_defaults(func=cmd_demo)

    backup = verb("backup", "a consistent copy of the live database")
    backup.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    backup.add_argument(
        "out", type=Path, help="the new file to write (owner-only, not overwritten)"
    )
    backup.set_defaults(func=cmd_backup)

    report = verb("report", "the monthly report's chart, XLSX and text")
    report.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    report.add_argument("--month", required=True, help="the month, e.g. 2026-10")
    report.add_argument(
        "--out",
        type=Path,
        required=True,
        help="directory for the files (created owner-only if missing)",
    )
    report.set_defaults(func=cmd_report)

    export = verb("export", "everything held on one NIK (subject access)")
    export.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    export.add_argument(
        "--nik",
        required=True,
        help="the resident's 16-digit NIK, or - to read it from standard input",
    )
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the new file to write (owner-only, not overwritten)",
    )
    export.set_defaults(func=cmd_export)

    province = verb("province-report", "merge offices' monthly summaries into a ranking")
    province.add_argument("--out", type=Path, required=True, help="the directory to write to")
    province.add_argument("files", type=Path, nargs="+", help="ringkasan-*.json of one month")
    province.set_defaults(func=cmd_province_report)

    purge = verb("purge", "apply the retention rule now (also runs daily)")
    purge.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    purge.add_argument(
        "--dry-run", action="store_true", help="list what would be erased; change nothing"
    )
    purge.set_defaults(func=cmd_purge)

    mailbox = verb("mailbox", "check the [mailbox] of the DWH admin's answers")
    mailbox.add_argument("--config", type=Path, required=True, help=CONFIG_HELP)
    mailbox.add_argument(
        "--test", action="store_true", help="log in and list the folder; one line on failure"
    )
    mailbox.set_defaults(func=cmd_mailbox)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result
