"""TOML configuration (SPEC §5) loaded into typed settings.

Every problem is collected as `key: message`, so `check-config` can list them all and `run`
refuses to start on exactly the same messages. Secrets never show in reprs or logs.
"""

from __future__ import annotations

import difflib
import email.policy
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ticketbot.domain.calendar import WEEKDAYS, Sla, SpecialPeriod, WorkCalendar, parse_workdays
from ticketbot.domain.lifecycle import SOP_09, Procedure, Transition
from ticketbot.domain.privacy import carries_personal_number
from ticketbot.domain.validation import LembagaCatalog, claimed_twice

TOKEN_ENV = "TICKETBOT_TELEGRAM_TOKEN"
SMTP_PASSWORD_ENV = "TICKETBOT_SMTP_PASSWORD"
TOKEN_SHAPE = re.compile(r"^\d{3,12}:[A-Za-z0-9_-]{20,}$")
EMAIL_SHAPE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
PHOTO_MINUTES_MAX = 47 * 60  # an hour inside Telegram's 48 hours, for retries
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

# Every key the configuration knows (SPEC §5); anything else is a typo and an error.
DAY_HOURS = tuple(f"{d}_hours" for d in WEEKDAYS)
SCHEMA: dict[str, frozenset[str]] = {
    "office": frozenset({"name", "timezone"}),
    "telegram": frozenset(
        {"token", "base_url", "group_id", "messages_per_second", "group_messages_per_minute"}
    ),
    "database": frozenset({"path"}),
    "smtp": frozenset(
        {"host", "port", "security", "username", "password", "from", "timeout_seconds", "ca_file"}
    ),
    "recap": frozenset({"to", "cc", "time", "send_empty", "chase_workdays"}),
    "reminders": frozenset({"repeat_minutes", "escalate_after", "morning_summary"}),
    "report": frozenset({"to"}),
    "calendar": frozenset(
        {
            "workdays",
            "public_holidays",
            "work_hours",
            "extra_holidays",
            "open_on",
            "special",
            *DAY_HOURS,
        }
    ),
    "privacy": frozenset({"delete_intake", "retention_days", "photo_minutes"}),
    "lembaga": frozenset({"known"}),
}


def schema_of(procedure: Procedure) -> dict[str, frozenset[str]]:
    """Every key: the fixed sections, and those the procedure's table names (its roles,
    its time standards, its reason lists)."""
    return {
        **SCHEMA,
        "roles": frozenset(procedure.role_names()),
        "sla": frozenset(s.setting for s in procedure.standards),
        "reject": frozenset(r.key for r in procedure.reason_lists),
    }


SPECIAL_KEYS = frozenset({"from", "to", "hours", "open_on", *DAY_HOURS})
REQUIRED_SECTIONS = ("office", "telegram", "roles", "smtp", "recap")

DEFAULT_LEMBAGA: dict[str, list[str]] = {
    "BPJS Kesehatan": ["bpjs kes", "bpjs-kes", "jkn", "p-care", "pcare"],
    "BPJS Ketenagakerjaan": ["bpjs tk", "bpjstk", "bpjs naker", "jamsostek"],
    "Bank": [],
    "Operator Seluler": ["operator", "provider", "kartu sim", "registrasi sim"],
    "Direktorat Jenderal Pajak": ["djp", "pajak", "kantor pajak", "npwp"],
    "Kemensos DTKS": ["dtks", "kemensos", "bansos", "pkh"],
}


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
    timeout_seconds: float = 30  # per step of the SMTP conversation: seconds, not minutes
    ca_file: Path | None = None  # an office CA to trust besides the system's


@dataclass(frozen=True)
class RecapConfig:
    to: tuple[str, ...]
    cc: tuple[str, ...]
    time: time
    send_empty: bool = False
    chase_workdays: float = 3


@dataclass(frozen=True)
class RemindersConfig:
    repeat_minutes: float = 30
    escalate_after: int = 2
    morning_summary: time | None = time(7, 45)


@dataclass(frozen=True)
class Config:
    office: OfficeConfig
    telegram: TelegramConfig
    roles: Mapping[str, frozenset[int]]  # every role of the procedure, kadis included
    database_path: Path
    smtp: SmtpConfig
    recap: RecapConfig
    calendar: WorkCalendar
    sla: Sla
    delete_intake: bool
    lembaga: LembagaCatalog
    # Preset reasons, by the procedure's reason list ("reasons" is Tolak's).
    reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    report_to: tuple[str, ...] = ()
    retention_days: int = 730
    photo_minutes: float = 30  # a "Foto" copy in a private chat lives this long
    procedure: Procedure = field(default=SOP_09, compare=False, repr=False)
    source: Path | None = field(default=None, compare=False)

    def roles_of(self, user_id: int) -> frozenset[str]:
        return frozenset(role for role, ids in self.roles.items() if user_id in ids)

    def people_who(self, what: str) -> frozenset[int]:
        """Everyone whose role says `what` ("presses", "opens", "reports", "recaps")."""
        roles = self.procedure.roles_that(what)
        return frozenset(i for role, ids in self.roles.items() if role in roles for i in ids)

    def may(self, user_id: int, what: str) -> bool:
        return bool(self.roles_of(user_id) & self.procedure.roles_that(what))

    def reasons_of(self, transition: Transition) -> tuple[str, ...]:
        """The preset reasons offered as buttons for a transition that needs one."""
        return self.reasons.get(transition.reasons or "", ())


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Reader:
    """Reads typed values out of the TOML tree and collects `key: message` problems."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.problems: list[str] = []
        self.misspelt: set[str] = set()  # sections typed wrong: already reported once

    def raw(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def fail(self, key: str, message: str) -> None:
        if key.partition(".")[0] in self.misspelt and message.startswith("is required"):
            return  # one typo, one line: "[rekap]: unknown section (did you mean …)"
        line = f"{key}: {message}"
        if line not in self.problems:
            self.problems.append(line)

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


def _hint(name: str, known: frozenset[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_keys(r: _Reader, schema: Mapping[str, frozenset[str]]) -> None:
    """A typo must not pass silently: every unknown section and key is an error."""
    for name, value in r.data.items():
        if name not in schema:
            kind = "section" if isinstance(value, Mapping) else "key"
            close = difflib.get_close_matches(name, sorted(schema), n=1, cutoff=0.6)
            hint = f" (did you mean [{close[0]}]?)" if close and kind == "section" else ""
            if close and kind == "section" and close[0] not in r.data:
                r.misspelt.add(close[0])
            r.fail(name, f"unknown {kind}{hint or _hint(name, tuple(schema))}")
            continue
        if not isinstance(value, Mapping):
            r.fail(name, "must be a section ([" + name + "])")
            continue
        # [lembaga.known]'s own keys are the office's institutions: any name goes there.
        for key in value:
            if key not in schema[name]:
                r.fail(f"{name}.{key}", f"unknown key{_hint(key, schema[name])}")
    specials = r.raw("calendar.special")
    for index, entry in enumerate(specials if isinstance(specials, list) else []):
        for key in entry if isinstance(entry, Mapping) else ():
            if key not in SPECIAL_KEYS:
                r.fail(f"calendar.special[{index + 1}].{key}",
                       f"unknown key{_hint(key, SPECIAL_KEYS)}")  # fmt: skip


def _one_mailbox(text: str) -> bool:
    """True when `text` is exactly one address, as the From header must be. A display name
    with a comma must be quoted: "Disdukcapil, Kota Sibolga" <x@example.go.id>."""
    try:
        header = email.policy.default.header_factory("From", text)
    except (ValueError, IndexError):
        return False
    addresses: tuple[Any, ...] = tuple(getattr(header, "addresses", ()))
    if len(addresses) != 1 or header.defects:
        return False
    return bool(EMAIL_SHAPE.match(str(addresses[0].addr_spec)))


def _date(r: _Reader, key: str, text: object) -> date | None:
    if isinstance(text, date):
        return text  # TOML has dates too: from = 2026-02-19
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        r.fail(key, f"{text!r} is not a date as YYYY-MM-DD")
        return None


def _dates(r: _Reader, key: str) -> frozenset[date]:
    value = r.raw(key)
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        r.fail(key, "must be a list of dates as YYYY-MM-DD")
        return frozenset()
    return frozenset(d for d in (_date(r, key, v) for v in value) if d is not None)


def _hours(
    r: _Reader, key: str, text: object, *, closed_ok: bool = False
) -> tuple[time, time] | None:
    """ "07:30-16:00" as (start, end); None for "closed" where that is allowed."""
    if closed_ok and text == "closed":
        return None
    parts = str(text).split("-") if isinstance(text, str) else []
    if len(parts) != 2 or not all(HHMM.match(p.strip()) for p in parts):
        allowed = ' or "closed"' if closed_ok else ""
        r.fail(key, f"must look like 07:30-16:00{allowed}, got {text!r}")
        return (time(7, 30), time(16, 0))
    start, end = (time.fromisoformat(p.strip()) for p in parts)
    if end <= start:
        r.fail(key, "must end after it starts")
        return (time(7, 30), time(16, 0))
    return (start, end)


def _emails(r: _Reader, key: str, *, required: bool) -> tuple[str, ...]:
    values = r.strings(key, None if required else [])
    if required and not values and isinstance(r.raw(key), list):
        r.fail(key, "must name at least one address")
    for v in values:
        # As smtp.from: a bare address, or one with a name ("Admin DWH <dwh@…>").
        if not _one_mailbox(v.strip()):
            r.fail(key, f"{v!r} is not an email address")
    return tuple(v.strip() for v in values)


def _roles(r: _Reader, procedure: Procedure) -> dict[str, frozenset[int]]:
    roles: dict[str, frozenset[int]] = {}
    table = r.raw("roles")
    listed = [rule.role for rule in procedure.roles if rule.listed]
    if not isinstance(table, Mapping):
        names = ", ".join(listed[:-1]) + f" and {listed[-1]}" if len(listed) > 1 else listed[0]
        r.fail("roles", f"is required: {names} lists of Telegram user ids")
        return {rule.role: frozenset() for rule in procedure.roles}
    for rule in procedure.roles:
        key = f"roles.{rule.role}"
        value = table.get(rule.role)
        ids: list[int] = []
        if value is None:
            if rule.listed:
                r.fail(key, "is required: a list of Telegram user ids")
        elif not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        ):
            r.fail(key, "must be a list of Telegram user ids (positive integers, no quotes)")
        else:
            ids = value
            if rule.required and not ids:
                r.fail(key, "must name at least one user id")
        roles[rule.role] = frozenset(ids)
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
    days = [d.lower() for d in r.strings("calendar.workdays", ["mon", "tue", "wed", "thu", "fri"])]
    bad = [d for d in days if d not in WEEKDAYS]
    if bad:
        r.fail("calendar.workdays", f"unknown day(s) {bad}; use {list(WEEKDAYS)}")
    elif not days:
        r.fail("calendar.workdays", "must name at least one day")
    country = r.string("calendar.public_holidays", "ID", required=False)
    if country not in ("", "ID"):
        r.fail("calendar.public_holidays", 'must be "ID" or "" (off)')
    default = _hours(r, "calendar.work_hours", r.raw("calendar.work_hours") or "07:30-16:00")
    assert default is not None
    day_hours: dict[int, tuple[time, time]] = {}
    for index, key in enumerate(DAY_HOURS):
        if r.raw(f"calendar.{key}") is not None:
            hours = _hours(r, f"calendar.{key}", r.raw(f"calendar.{key}"))
            if hours is not None:
                day_hours[index] = hours
    open_on = set(_dates(r, "calendar.open_on"))
    special: list[SpecialPeriod] = []
    entries = r.raw("calendar.special")
    if entries is not None and not isinstance(entries, list):
        r.fail("calendar.special", "must be [[calendar.special]] tables")
        entries = []
    for index, entry in enumerate(entries or [], start=1):
        key = f"calendar.special[{index}]"
        if not isinstance(entry, Mapping):
            r.fail(key, "must be a table with from, to and hours")
            continue
        first = _date(r, f"{key}.from", entry.get("from")) if "from" in entry else None
        last = _date(r, f"{key}.to", entry.get("to", entry.get("from")))
        if first is None and "from" not in entry:
            r.fail(f"{key}.from", "is required (YYYY-MM-DD)")
        if "hours" not in entry and "open_on" not in entry:
            r.fail(f"{key}.hours", 'is required: "08:00-15:00" or "closed"')
        if isinstance(entry.get("open_on"), list):
            open_on |= _dates(r, f"{key}.open_on")
        if first is None or last is None or "hours" not in entry:
            continue
        if last < first:
            r.fail(f"{key}.to", "must not be before from")
            continue
        hours = _hours(r, f"{key}.hours", entry["hours"], closed_ok=True)
        own = {
            index: found
            for index, name in enumerate(DAY_HOURS)
            if name in entry and (found := _hours(r, f"{key}.{name}", entry[name])) is not None
        }
        special.append(SpecialPeriod(first, last, hours, tuple(sorted(own.items()))))
    return WorkCalendar(
        tz=tz,
        workdays=parse_workdays(d for d in days if d in WEEKDAYS) or frozenset(range(5)),
        start=default[0],
        end=default[1],
        country=country if country in ("", "ID") else "ID",
        extra_holidays=_dates(r, "calendar.extra_holidays"),
        day_hours=tuple(sorted(day_hours.items())),
        special=tuple(special),
        open_on=frozenset(open_on),
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
    names = {str(k): list(v) for k, v in table.items()}
    for alias, first, second in claimed_twice(names):
        r.fail(f"lembaga.known.{second}", f"{alias!r} is already an alias of {first!r}")
    return LembagaCatalog(names)


def parse_config(
    data: Mapping[str, Any], env: Mapping[str, str], base: Path, *, need_token: bool = True,
    procedure: Procedure = SOP_09,
) -> Config:  # fmt: skip
    """`need_token` False: for the verbs that never talk to Telegram (backup, recap
    --dry-run, report, export, purge), which run as the service user without the secrets."""
    r = _Reader(data)
    _unknown_keys(r, schema_of(procedure))
    for section in REQUIRED_SECTIONS:
        if section not in data and section not in r.misspelt:
            r.fail(f"[{section}]", "section is missing")
            r.misspelt.add(section)  # one line for the section, not one per key
    name = r.string("office.name")
    tz_name = r.string("office.timezone", "Asia/Jakarta")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        r.fail("office.timezone", f"unknown time zone {tz_name!r}")
        tz = ZoneInfo("Asia/Jakarta")

    token_text = env.get(TOKEN_ENV) or r.string("telegram.token", "", required=False)
    if not token_text:
        if need_token:
            r.fail("telegram.token", f"is required (or set {TOKEN_ENV})")
    elif not TOKEN_SHAPE.match(token_text):
        r.fail("telegram.token", "does not look like a bot token from BotFather")
    base_url = r.string("telegram.base_url", "https://api.telegram.org/bot")
    if base_url and not re.match(r"^https?://", base_url):
        r.fail("telegram.base_url", "must start with http:// or https://")
    group_id = r.integer("telegram.group_id")
    told = any(p.startswith(("telegram.group_id:", "[telegram]")) for p in r.problems)
    if group_id >= 0 and not told:
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
    if not 0 < port < 65536 and not any(p.startswith("smtp.port:") for p in r.problems):
        r.fail("smtp.port", "must be between 1 and 65535")
    sender = r.string("smtp.from")
    if sender.strip() and not _one_mailbox(sender):
        r.fail(
            "smtp.from",
            "must be one mailbox like 'Disdukcapil Kota Sibolga <disdukcapil@example.go.id>'"
            " (quote a name that has a comma: '\"Disdukcapil, Sibolga\" <…>')",
        )
    ca_text = r.string("smtp.ca_file", "", required=False)
    ca_file = (base / ca_text).resolve() if ca_text else None
    if ca_file is not None and not (ca_file.is_file() and os.access(ca_file, os.R_OK)):
        r.fail("smtp.ca_file", f"{ca_file} is not a readable file")
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
        timeout_seconds=r.number("smtp.timeout_seconds", 30),
        ca_file=ca_file,
    )
    recap = RecapConfig(
        to=_emails(r, "recap.to", required=True),
        cc=_emails(r, "recap.cc", required=False),
        time=r.clock("recap.time", "15:00"),
        send_empty=r.boolean("recap.send_empty", False),
        chase_workdays=r.number("recap.chase_workdays", 3),
    )
    summary = r.string("reminders.morning_summary", "07:45", required=False)
    reminders = RemindersConfig(
        repeat_minutes=r.number("reminders.repeat_minutes", 30),
        escalate_after=max(r.integer("reminders.escalate_after", 2), 0),
        morning_summary=r.clock("reminders.morning_summary", summary) if summary else None,
    )
    roles = _roles(r, procedure)
    config = Config(
        office=OfficeConfig(name=name, timezone=tz),
        telegram=telegram,
        roles=roles,
        database_path=_database_path(r, base),
        smtp=smtp,
        recap=recap,
        calendar=_calendar(r, tz),
        sla=Sla(
            {
                standard.setting: r.number(f"sla.{standard.setting}", standard.default)
                for standard in procedure.standards
            }
        ),
        delete_intake=r.boolean("privacy.delete_intake", True),
        lembaga=_lembaga(r),
        reasons={
            lst.key: tuple(r.strings(f"reject.{lst.key}", list(lst.defaults)))
            for lst in procedure.reason_lists
        },
        reminders=reminders,
        report_to=_emails(r, "report.to", required=False),
        retention_days=r.integer("privacy.retention_days", 730),
        photo_minutes=r.number("privacy.photo_minutes", 30),
        procedure=procedure,
    )
    if config.photo_minutes > PHOTO_MINUTES_MAX:
        r.fail("privacy.photo_minutes", f"must be at most {PHOTO_MINUTES_MAX}"
               " (Telegram lets a bot delete its messages for 48 hours)")  # fmt: skip
    if config.retention_days < 1:
        r.fail("privacy.retention_days", "must be at least 1")
    for lst in procedure.reason_lists:
        if lst.key == "reasons" and not config.reasons[lst.key]:
            r.fail("reject.reasons", "must name at least one reason")
        for n, reason in enumerate(config.reasons[lst.key], start=1):
            # A preset reason is shown on every card and sent to residents: it names nobody.
            if carries_personal_number(reason):
                r.fail(f"reject.{lst.key}", f"reason {n} holds a full NIK/KK or a phone number")
    if r.problems:
        raise ConfigError(r.problems)
    return config


def load_config(
    path: Path, env: Mapping[str, str] | None = None, *, need_token: bool = True,
    procedure: Procedure = SOP_09,
) -> Config:  # fmt: skip
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
    config = parse_config(
        data, env, path.resolve().parent, need_token=need_token, procedure=procedure
    )
    return replace(config, source=path)


def config_warnings(config: Config, data_secret: bool, today: date) -> list[str]:
    """Not errors, but an operator must know (check-config prints them, exit 0)."""
    warnings = []
    cal = config.calendar
    if cal.country:
        for year in (today.year, today.year + 1):
            if not cal.has_cuti_bersama(year):
                warnings.append(
                    f"calendar.public_holidays: no cuti bersama known for {year} in the"
                    " installed holidays package; upgrade it (pip install -U holidays) or list"
                    " the days in calendar.extra_holidays"
                )
        if missing := cal.ramadan_uncovered(today):
            warnings.append(
                f"calendar.special: Ramadan begins about {missing[0]:%Y-%m-%d} and no"
                " [[calendar.special]] period covers it; add its hours (see"
                " config.example.toml) or deadlines will count the usual hours"
            )
    timed = {"recap.time": config.recap.time,
             "reminders.morning_summary": config.reminders.morning_summary}  # fmt: skip
    for key, moment in timed.items():
        if moment is not None and not cal.start <= moment < cal.end:
            warnings.append(
                f"{key}: {moment:%H:%M} is outside work hours ({cal.start:%H:%M}-"
                f"{cal.end:%H:%M}); nobody is at the office to act on it then"
            )
    if data_secret and config.source is not None:
        mode = stat.S_IMODE(config.source.stat().st_mode)
        if mode & 0o077:
            warnings.append(
                f"config: {config.source} holds a secret and is readable by others"
                f" (mode {mode:04o}); chmod 600 it or move the secret to the environment"
            )
    return warnings


def file_holds_secret(path: Path) -> bool:
    """True when the TOML file itself carries the token or the SMTP password."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return any(
        isinstance(data.get(section), Mapping) and str(data[section].get(key) or "").strip()
        for section, key in (("telegram", "token"), ("smtp", "password"))
    )
