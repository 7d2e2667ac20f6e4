"""TOML configuration (SPEC §5) loaded into typed settings.

Every problem is collected as `key: message`, so `check-config` can list them all and `run`
refuses to start on exactly the same messages. Secrets never show in reprs or logs.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ticketbot.domain.calendar import WEEKDAYS, Sla, WorkCalendar, parse_workdays
from ticketbot.domain.lifecycle import Role
from ticketbot.domain.validation import LembagaCatalog

TOKEN_ENV = "TICKETBOT_TELEGRAM_TOKEN"
SMTP_PASSWORD_ENV = "TICKETBOT_SMTP_PASSWORD"
TOKEN_SHAPE = re.compile(r"^\d{3,12}:[A-Za-z0-9_-]{20,}$")
EMAIL_SHAPE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

DEFAULT_LEMBAGA: dict[str, list[str]] = {
    "BPJS Kesehatan": ["bpjs kes", "bpjs-kes", "jkn", "p-care", "pcare"],
    "BPJS Ketenagakerjaan": ["bpjs tk", "bpjstk", "bpjs naker", "jamsostek"],
    "Bank": [],
    "Operator Seluler": ["operator", "provider", "kartu sim", "registrasi sim"],
    "Direktorat Jenderal Pajak": ["djp", "pajak", "kantor pajak", "npwp"],
    "Kemensos DTKS": ["dtks", "kemensos", "bansos", "pkh"],
}
DEFAULT_REJECT_REASONS = [
    "NIK tidak ditemukan di database SIAK",
    "Data pemohon tidak sesuai dokumen",
    "Dokumen persyaratan belum lengkap",
    "Bukan masalah sinkronisasi DWH",
]


class Secret:
    """A string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class OfficeConfig:
    name: str
    timezone: ZoneInfo


@dataclass(frozen=True)
class TelegramConfig:
    token: Secret
    base_url: str
    group_id: int
    # Telegram's physical bound (SPEC §6); lower only to be gentler.
    group_messages_per_minute: float = 20
    messages_per_second: float = 30


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str
    username: str
    password: Secret
    sender: str
    timeout_seconds: float = 300  # RFC 5321 §4.5.3.2: up to 10 min after the final dot


@dataclass(frozen=True)
class RecapConfig:
    to: tuple[str, ...]
    cc: tuple[str, ...]
    time: time
    send_empty: bool = False


@dataclass(frozen=True)
class Config:
    office: OfficeConfig
    telegram: TelegramConfig
    roles: Mapping[Role, frozenset[int]]
    database_path: Path
    smtp: SmtpConfig
    recap: RecapConfig
    calendar: WorkCalendar
    sla: Sla
    delete_intake: bool
    lembaga: LembagaCatalog
    reject_reasons: tuple[str, ...]
    source: Path | None = field(default=None, compare=False)

    def roles_of(self, user_id: int) -> frozenset[Role]:
        return frozenset(role for role, ids in self.roles.items() if user_id in ids)


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Reader:
    """Reads typed values out of the TOML tree and collects `key: message` problems."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.problems: list[str] = []

    def raw(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def string(self, key: str, default: str | None = None, *, required: bool = True) -> str:
        value = self.raw(key)
        if value is None:
            if default is not None:
                return default
            if required:
                self.fail(key, "is required")
            return ""
        if not isinstance(value, str):
            self.fail(key, "must be a string")
            return ""
        if required and not value.strip():
            self.fail(key, "must not be empty")
        return value

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.raw(key)
        if value is None and default is not None:
            return default
        if value is None:
            self.fail(key, "is required")
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, "must be an integer")
            return 0
        return value

    def number(self, key: str, default: float, *, positive: bool = True) -> float:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, "must be a number")
            return default
        if positive and value <= 0:
            self.fail(key, "must be greater than 0")
            return default
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
            return default
        return value

    def strings(self, key: str, default: list[str] | None = None) -> list[str]:
        value = self.raw(key)
        if value is None:
            if default is None:
                self.fail(key, "is required")
                return []
            return list(default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "must be a list of strings")
            return []
        return value

    def clock(self, key: str, default: str) -> time:
        text = self.string(key, default)
        match = HHMM.match(text)
        if not match:
            self.fail(key, f"must be a time as HH:MM (24 hours), got {text!r}")
            return time(0, 0)
        return time(int(match[1]), int(match[2]))


def _emails(r: _Reader, key: str, *, required: bool) -> tuple[str, ...]:
    values = r.strings(key, None if required else [])
    if required and not values and f"{key}: is required" not in r.problems:
        r.fail(key, "must name at least one address")
    for v in values:
        if not EMAIL_SHAPE.match(v.strip()):
            r.fail(key, f"{v!r} is not an email address")
    return tuple(v.strip() for v in values)


def _roles(r: _Reader) -> dict[Role, frozenset[int]]:
    roles: dict[Role, frozenset[int]] = {}
    table = r.raw("roles")
    if not isinstance(table, Mapping):
        r.fail("roles", "is required: kasi, adb and staf lists of Telegram user ids")
        return {role: frozenset() for role in Role}
    for unknown in sorted(set(table) - {role.value for role in Role}):
        r.fail(f"roles.{unknown}", "unknown role (known: kasi, adb, staf)")
    for role in Role:
        key = f"roles.{role.value}"
        value = table.get(role.value)
        ids: list[int] = []
        if value is None:
            r.fail(key, "is required: a list of Telegram user ids")
        elif not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        ):
            r.fail(key, "must be a list of Telegram user ids (positive integers, no quotes)")
        else:
            ids = value
            if role in (Role.KASI, Role.ADB) and not ids:
                r.fail(key, "must name at least one user id")
        roles[role] = frozenset(ids)
    return roles


def _database_path(r: _Reader, base: Path) -> Path:
    text = r.string("database.path", "ticketbot.sqlite3")
    path = (base / text).resolve() if text else base
    parent = path.parent
    if text and not parent.is_dir():
        r.fail("database.path", f"directory {parent} does not exist")
    elif text and not os.access(parent, os.W_OK):
        r.fail("database.path", f"directory {parent} is not writable")
    elif path.exists() and (path.is_dir() or not os.access(path, os.W_OK)):
        r.fail("database.path", f"{path} is not a writable file")
    return path


def _calendar(r: _Reader, tz: ZoneInfo) -> WorkCalendar:
    days = r.strings("calendar.workdays", ["mon", "tue", "wed", "thu", "fri"])
    bad = [d for d in days if d not in WEEKDAYS]
    if bad:
        r.fail("calendar.workdays", f"unknown day(s) {bad}; use {list(WEEKDAYS)}")
    elif not days:
        r.fail("calendar.workdays", "must name at least one day")
    country = r.string("calendar.public_holidays", "ID", required=False)
    if country not in ("", "ID"):
        r.fail("calendar.public_holidays", 'must be "ID" or "" (off)')
    hours = r.string("calendar.work_hours", "07:30-16:00")
    start, end = time(7, 30), time(16, 0)
    parts = hours.split("-")
    if len(parts) != 2 or not all(HHMM.match(p.strip()) for p in parts):
        r.fail("calendar.work_hours", f"must look like 07:30-16:00, got {hours!r}")
    else:
        start, end = (time.fromisoformat(p.strip()) for p in parts)
        if end <= start:
            r.fail("calendar.work_hours", "must end after it starts")
    extra: set[date] = set()
    for text in r.strings("calendar.extra_holidays", []):
        try:
            extra.add(date.fromisoformat(text))
        except ValueError:
            r.fail("calendar.extra_holidays", f"{text!r} is not a date as YYYY-MM-DD")
    return WorkCalendar(
        tz=tz,
        workdays=parse_workdays(d for d in days if d in WEEKDAYS) or frozenset(range(5)),
        start=start,
        end=end if end > start else time(16, 0),
        country=country if country in ("", "ID") else "ID",
        extra_holidays=frozenset(extra),
    )


def _lembaga(r: _Reader) -> LembagaCatalog:
    table = r.raw("lembaga.known")
    if table is None:
        return LembagaCatalog(DEFAULT_LEMBAGA)
    if not isinstance(table, Mapping) or not all(
        isinstance(v, list) and all(isinstance(a, str) for a in v) for v in table.values()
    ):
        r.fail("lembaga.known", "must be a table of name = [aliases]")
        return LembagaCatalog(DEFAULT_LEMBAGA)
    return LembagaCatalog({str(k): list(v) for k, v in table.items()})


def parse_config(data: Mapping[str, Any], env: Mapping[str, str], base: Path) -> Config:
    r = _Reader(data)
    name = r.string("office.name")
    tz_name = r.string("office.timezone", "Asia/Jakarta")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        r.fail("office.timezone", f"unknown time zone {tz_name!r}")
        tz = ZoneInfo("Asia/Jakarta")

    token_text = env.get(TOKEN_ENV) or r.string("telegram.token", "", required=False)
    if not token_text:
        r.fail("telegram.token", f"is required (or set {TOKEN_ENV})")
    elif not TOKEN_SHAPE.match(token_text):
        r.fail("telegram.token", "does not look like a bot token from BotFather")
    base_url = r.string("telegram.base_url", "https://api.telegram.org/bot")
    if base_url and not re.match(r"^https?://", base_url):
        r.fail("telegram.base_url", "must start with http:// or https://")
    group_id = r.integer("telegram.group_id")
    if group_id >= 0 and "telegram.group_id: must be an integer" not in r.problems:
        r.fail("telegram.group_id", "must be a negative group chat id (see /id)")
    telegram = TelegramConfig(
        token=Secret(token_text),
        base_url=base_url,
        group_id=group_id,
        group_messages_per_minute=r.number("telegram.group_messages_per_minute", 20),
        messages_per_second=r.number("telegram.messages_per_second", 30),
    )

    security = r.string("smtp.security", "starttls")
    if security not in ("none", "starttls", "tls"):
        r.fail("smtp.security", 'must be "none", "starttls" or "tls"')
    port = r.integer("smtp.port", 587)
    if not 0 < port < 65536:
        r.fail("smtp.port", "must be between 1 and 65535")
    sender = r.string("smtp.from")
    if sender and not re.search(r"[^@\s<>]+@[^@\s<>]+", sender):
        r.fail("smtp.from", "must contain an email address")
    username = r.string("smtp.username", "", required=False)
    if username and security == "none":
        r.fail(
            "smtp.username",
            'would send the password unencrypted; use security = "starttls" or "tls"',
        )
    smtp = SmtpConfig(
        host=r.string("smtp.host"),
        port=port,
        security=security,
        username=username,
        password=Secret(
            env.get(SMTP_PASSWORD_ENV) or r.string("smtp.password", "", required=False)
        ),
        sender=sender,
        timeout_seconds=r.number("smtp.timeout_seconds", 300),
    )
    recap = RecapConfig(
        to=_emails(r, "recap.to", required=True),
        cc=_emails(r, "recap.cc", required=False),
        time=r.clock("recap.time", "15:00"),
        send_empty=r.boolean("recap.send_empty", False),
    )
    roles = _roles(r)
    config = Config(
        office=OfficeConfig(name=name, timezone=tz),
        telegram=telegram,
        roles=roles,
        database_path=_database_path(r, base),
        smtp=smtp,
        recap=recap,
        calendar=_calendar(r, tz),
        sla=Sla(
            kasi_minutes=r.number("sla.kasi_minutes", 10),
            adb_workdays=r.number("sla.adb_workdays", 1),
            inform_minutes=r.number("sla.inform_minutes", 5),
        ),
        delete_intake=r.boolean("privacy.delete_intake", True),
        lembaga=_lembaga(r),
        reject_reasons=tuple(r.strings("reject.reasons", DEFAULT_REJECT_REASONS)),
    )
    if not config.reject_reasons:
        r.fail("reject.reasons", "must name at least one reason")
    if r.problems:
        raise ConfigError(r.problems)
    return config


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate; raises ConfigError with one `key: message` line per problem."""
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"config: file {path} not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"config: cannot read {path}: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"config: {path} is not valid TOML: {exc}"]) from None
    return replace(parse_config(data, env, path.resolve().parent), source=path)
