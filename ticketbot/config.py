"""TOML configuration (SPEC §5) loaded into typed settings.

Every section is a pydantic model: each key, its type, its default and its check are
declared once, here; unknown keys are refused (`extra="forbid"`), secrets are `SecretStr`.
pydantic collects every problem of every section; they are written as `key: message`,
one line each, so `check-config` lists them all and `run` refuses to start on exactly the
same messages. The sections the procedure's table implies (its roles, its time standards,
its reason lists) are models built from the table.
"""

from __future__ import annotations

import difflib
import email.policy
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    create_model,
)
from pydantic_core import PydanticCustomError

from ticketbot.domain.calendar import WEEKDAYS, Sla, SpecialPeriod, WorkCalendar, parse_workdays
from ticketbot.domain.lifecycle import SOP_09, Procedure, Transition
from ticketbot.domain.privacy import carries_personal_number
from ticketbot.domain.province import known_region
from ticketbot.domain.regions import RETIRED
from ticketbot.domain.validation import LembagaCatalog, claimed_twice
from ticketbot.records import PING_GATHER

TOKEN_ENV = "TICKETBOT_TELEGRAM_TOKEN"
SMTP_PASSWORD_ENV = "TICKETBOT_SMTP_PASSWORD"
IMAP_PASSWORD_ENV = "TICKETBOT_IMAP_PASSWORD"
TOKEN_SHAPE = re.compile(r"^\d{3,12}:[A-Za-z0-9_-]{20,}$")
EMAIL_SHAPE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
PHOTO_MINUTES_MAX = 47 * 60  # an hour inside Telegram's 48 hours, for retries
DAY_HOURS = tuple(f"{d}_hours" for d in WEEKDAYS)
REQUIRED_SECTIONS = ("office", "telegram", "roles", "smtp", "recap")

DEFAULT_LEMBAGA: dict[str, list[str]] = {
    "BPJS Kesehatan": ["bpjs kes", "bpjs-kes", "jkn", "p-care", "pcare"],
    "BPJS Ketenagakerjaan": ["bpjs tk", "bpjstk", "bpjs naker", "jamsostek"],
    "Bank": [],
    "Operator Seluler": ["operator", "provider", "kartu sim", "registrasi sim"],
    "Direktorat Jenderal Pajak": ["djp", "pajak", "kantor pajak", "npwp"],
    "Kemensos DTKS": ["dtks", "kemensos", "bansos", "pkh"],
}


# -- the value types: each says in one line what is wrong ------------------------------


def refuse(message: str) -> NoReturn:
    """A problem with one key's value: its message is the line check-config prints."""
    raise PydanticCustomError("config", "{message}", {"message": message})


def _string(value: object) -> str:
    if not isinstance(value, str):
        refuse("must be a string")
    return value


def _text(value: object) -> str:
    if not _string(value).strip():
        refuse("must not be empty")
    return str(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        refuse("must be an integer")
    return value


def _number(value: object) -> float:
    number = _any_number(value)
    if number <= 0:
        refuse("must be greater than 0")
    return number


def _any_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        refuse("must be a number")
    return float(value)


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        refuse("must be true or false")
    return value


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        refuse("must be a list of strings")
    return tuple(value)


def _clock(value: object) -> time:
    match = HHMM.match(_string(value))
    if not match:
        refuse(f"must be a time as HH:MM (24 hours), got {value!r}")
    return time(int(match[1]), int(match[2]))


def _optional_clock(value: object) -> time | None:
    return None if _string(value) == "" else _clock(value)


def one_mailbox(text: str) -> bool:
    """True when `text` is exactly one address, with or without a name. A display name
    with a comma must be quoted: "Disdukcapil, Kota Sibolga" <x@example.go.id>."""
    try:
        header = email.policy.default.header_factory("From", text)
    except (ValueError, IndexError):
        return False
    addresses: tuple[Any, ...] = tuple(getattr(header, "addresses", ()))
    if len(addresses) != 1 or header.defects:
        return False
    return bool(EMAIL_SHAPE.match(str(addresses[0].addr_spec)))


def _addresses(value: object) -> tuple[str, ...]:
    found = tuple(v.strip() for v in _strings(value))
    for address in found:
        # As smtp.from: a bare address, or one with a name ("Admin DWH <dwh@…>").
        if not one_mailbox(address):
            refuse(f"{address!r} is not an email address")
    return found


def _some_addresses(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        refuse("must name at least one address")
    return value


def _mailbox(value: str) -> str:
    if value.strip() and not one_mailbox(value):
        refuse(
            "must be one mailbox like 'Disdukcapil Kota Sibolga <disdukcapil@example.go.id>'"
            " (quote a name that has a comma: '\"Disdukcapil, Sibolga\" <…>')"
        )
    return value


def _zone(value: object) -> ZoneInfo:
    name = _string(value)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        refuse(f"unknown time zone {name!r}")


def _date(value: object) -> date:
    if isinstance(value, date):
        return value  # TOML has dates too: from = 2026-02-19
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        refuse(f"{value!r} is not a date as YYYY-MM-DD")


def _dates(value: object) -> frozenset[date]:
    if not isinstance(value, list):
        refuse("must be a list of dates as YYYY-MM-DD")
    return frozenset(_date(v) for v in value)


def _hours_of(value: object, *, closed_ok: bool) -> tuple[time, time] | None:
    """ "07:30-16:00" as (start, end); None for "closed" where that is allowed."""
    if closed_ok and value == "closed":
        return None
    parts = value.split("-") if isinstance(value, str) else []
    if len(parts) != 2 or not all(HHMM.match(p.strip()) for p in parts):
        allowed = ' or "closed"' if closed_ok else ""
        refuse(f"must look like 07:30-16:00{allowed}, got {value!r}")
    start, end = (time.fromisoformat(p.strip()) for p in parts)
    if end <= start:
        refuse("must end after it starts")
    return (start, end)


def _hours(value: object) -> tuple[time, time]:
    found = _hours_of(value, closed_ok=False)
    assert found is not None
    return found


def _user_ids(value: object) -> frozenset[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        refuse("must be a list of Telegram user ids (positive integers, no quotes)")
    return frozenset(value)


def _checked(check: Callable[[Any], bool], message: str) -> AfterValidator:
    def validate(value: Any) -> Any:
        if not check(value):
            refuse(message)
        return value

    return AfterValidator(validate)


Str = Annotated[str, BeforeValidator(_string)]
Text = Annotated[str, BeforeValidator(_text)]
Int = Annotated[int, BeforeValidator(_integer)]
Number = Annotated[float, BeforeValidator(_number)]
Flag = Annotated[bool, BeforeValidator(_boolean)]
Strings = Annotated[tuple[str, ...], BeforeValidator(_strings)]
Clock = Annotated[time, BeforeValidator(_clock)]
Addresses = Annotated[tuple[str, ...], BeforeValidator(_addresses)]
Dates = Annotated[frozenset[date], BeforeValidator(_dates)]
Hours = Annotated[tuple[time, time], BeforeValidator(_hours)]
Secret = Annotated[SecretStr, BeforeValidator(lambda v: SecretStr(_string(v)))]


# -- the sections ------------------------------------------------------------------------


class Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, arbitrary_types_allowed=True,
        hide_input_in_errors=True,  # a secret typed in the wrong place never prints
    )  # fmt: skip


def _kode_wilayah(value: object) -> str:
    kode = _string(value).strip()
    if kode in RETIRED:
        refuse(f"{kode!r} was retired by the 2022 Papua split; it is now {RETIRED[kode]!r}")
    if kode and not known_region(kode):
        refuse(f'{kode!r} is not a kab/kota code of the Kepmendagri 2025 table (like "12.73")')
    return kode


class OfficeConfig(Section):
    name: Text
    timezone: Annotated[ZoneInfo, BeforeValidator(_zone)] = ZoneInfo("Asia/Jakarta")
    # Kepmendagri code of the kab/kota: names the province summary (and the recap tag).
    kode_wilayah: Annotated[str, BeforeValidator(_kode_wilayah)] = ""


class TelegramConfig(Section):
    token: Secret = SecretStr("")  # or TICKETBOT_TELEGRAM_TOKEN
    base_url: Annotated[
        str, BeforeValidator(_string),
        _checked(lambda u: re.match(r"^https?://", u) is not None,
                 "must start with http:// or https://"),
    ] = "https://api.telegram.org/bot"  # fmt: skip
    group_id: Annotated[
        int, BeforeValidator(_integer),
        _checked(lambda g: g < 0, "must be a negative group chat id (see /id)"),
    ]  # fmt: skip
    # Telegram's physical bounds (SPEC §6); lower only to be gentler.
    messages_per_second: Number = 30
    group_messages_per_minute: Number = 20


def _beside_config(value: object, info: ValidationInfo) -> Path | None:
    text = _string(value)
    base: Path = (info.context or {}).get("base", Path.cwd())
    return (base / text).resolve() if text else None


SECURITY = ("none", "starttls", "tls")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


# A mail server's port and how the connection is secured (SMTP and IMAP alike).
Port = Annotated[
    int, BeforeValidator(_integer),
    _checked(lambda p: 0 < p < 65536, "must be between 1 and 65535"),
]  # fmt: skip
Security = Annotated[
    str, BeforeValidator(_string),
    _checked(lambda s: s in SECURITY, 'must be "none", "starttls" or "tls"'),
]  # fmt: skip


class SmtpConfig(Section):
    host: Text
    port: Port = 587
    security: Security = "starttls"
    username: Str = ""
    password: Secret = SecretStr("")  # or TICKETBOT_SMTP_PASSWORD
    sender: Annotated[str, BeforeValidator(_text), AfterValidator(_mailbox)] = Field(alias="from")
    timeout_seconds: Number = 30  # per step of the SMTP conversation: seconds, not minutes
    # An office CA to trust besides the system's, relative to the configuration's directory.
    ca_file: Annotated[Path | None, BeforeValidator(_beside_config)] = None


class RecapConfig(Section):
    to: Annotated[tuple[str, ...], BeforeValidator(_addresses), AfterValidator(_some_addresses)]
    cc: Addresses = ()
    time: Clock = time(15, 0)
    send_empty: Flag = False
    chase_workdays: Number = 3


class RemindersConfig(Section):
    repeat_minutes: Number = 30
    escalate_after: Annotated[
        int, BeforeValidator(_integer), AfterValidator(lambda n: max(n, 0))
    ] = 2
    morning_summary: Annotated[time | None, BeforeValidator(_optional_clock)] = time(7, 45)
    # Turn pings to people who have a private chat with the bot go there (a link to the
    # card), not to the group: the group's 20 messages a minute are what caps an office.
    private_pings: Flag = False
    # Seconds a turn ping waits, so that pings for the same people within them go as one
    # message (a burst of intakes, a batch confirmed); 0: each goes at once.
    ping_gather_seconds: Annotated[
        float, BeforeValidator(_any_number),
        _checked(lambda n: 0 <= n <= 60, "must be between 0 and 60 (seconds)"),
    ] = PING_GATHER.total_seconds()  # fmt: skip


class MailboxConfig(Section):
    """The DWH admin's answers (SPEC §4c): one IMAP folder; an empty host turns it off."""

    host: Str = ""
    port: Port = 993
    security: Security = "tls"  # "none": only to 127.0.0.1 (checked below)
    username: Str = ""
    password: Secret = SecretStr("")  # or TICKETBOT_IMAP_PASSWORD
    folder: Annotated[
        str, BeforeValidator(_string), _checked(lambda f: bool(f.strip()), "must name a folder")
    ] = "INBOX"
    trusted: Addresses = ()  # empty: recap.to and recap.cc
    authserv_id: Str = ""
    ca_file: Annotated[Path | None, BeforeValidator(_beside_config)] = None
    max_bytes: Annotated[
        int, BeforeValidator(_integer),
        _checked(lambda n: n >= 1024, "must be at least 1024 (bytes)"),
    ] = 10 * 1024 * 1024  # fmt: skip
    # Seconds: how long one IDLE lasts before it is renewed (servers drop it after 29-30
    # minutes), and the poll where the server has no IDLE.
    idle_seconds: Number = 24 * 60
    poll_seconds: Number = 60
    retry_seconds: Number = 5  # the first reconnect's wait; doubled each time, at most 10 min

    @property
    def enabled(self) -> bool:
        return bool(self.host.strip())


class ReportConfig(Section):
    to: Addresses = ()
    province_to: Addresses = ()  # the JSON summary only (no personal data)


class DatabaseConfig(Section):
    path: Text = "ticketbot.sqlite3"


class WeekdayHours(Section):
    """`mon_hours` … `sun_hours`: a weekday's own hours, where they differ."""

    mon_hours: Hours | None = None
    tue_hours: Hours | None = None
    wed_hours: Hours | None = None
    thu_hours: Hours | None = None
    fri_hours: Hours | None = None
    sat_hours: Hours | None = None
    sun_hours: Hours | None = None

    def own_hours(self) -> tuple[tuple[int, tuple[time, time]], ...]:
        """(weekday, hours) of the days given, Monday = 0."""
        return tuple(
            (day, hours)
            for day, name in enumerate(DAY_HOURS)
            if (hours := getattr(self, name)) is not None
        )


class SpecialEntry(WeekdayHours):
    """One [[calendar.special]] period: other hours (Ramadan), or "closed"."""

    first: Annotated[date, BeforeValidator(_date)] = Field(alias="from")
    last: Annotated[date | None, BeforeValidator(_date)] = Field(None, alias="to")
    hours: Annotated[str | None, BeforeValidator(_string)] = None
    open_on: Dates = frozenset()


def _weekdays(value: object) -> tuple[str, ...]:
    days = tuple(d.lower() for d in _strings(value))
    bad = [d for d in days if d not in WEEKDAYS]
    if bad:
        refuse(f"unknown day(s) {bad}; use {list(WEEKDAYS)}")
    if not days:
        refuse("must name at least one day")
    return days


class CalendarConfig(WeekdayHours):
    workdays: Annotated[tuple[str, ...], BeforeValidator(_weekdays)] = (
        "mon", "tue", "wed", "thu", "fri",
    )  # fmt: skip
    public_holidays: Annotated[
        str, BeforeValidator(_string),
        _checked(lambda c: c in ("", "ID"), 'must be "ID" or "" (off)'),
    ] = "ID"  # fmt: skip
    work_hours: Hours = (time(7, 30), time(16, 0))
    extra_holidays: Dates = frozenset()
    open_on: Dates = frozenset()
    special: tuple[SpecialEntry, ...] = ()


class PrivacyConfig(Section):
    delete_intake: Flag = True
    retention_days: Annotated[
        int, BeforeValidator(_integer), _checked(lambda d: d >= 1, "must be at least 1")
    ] = 730
    photo_minutes: Annotated[
        float, BeforeValidator(_number),
        _checked(lambda m: m <= PHOTO_MINUTES_MAX, f"must be at most {PHOTO_MINUTES_MAX}"
                 " (Telegram lets a bot delete its messages for 48 hours)"),
    ] = 30  # fmt: skip


def _institutions(value: object) -> dict[str, list[str]]:
    if not isinstance(value, Mapping) or not all(
        isinstance(v, list) and all(isinstance(a, str) for a in v) for v in value.values()
    ):
        refuse("must be a table of name = [aliases]")
    return {str(k): list(v) for k, v in value.items()}


class LembagaConfig(Section):
    # [lembaga.known]'s own keys are the office's institutions: any name goes there.
    known: Annotated[dict[str, list[str]], BeforeValidator(_institutions)] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_LEMBAGA.items()}
    )


# The sections every procedure has.
FIXED: dict[str, type[Section]] = {
    "office": OfficeConfig, "telegram": TelegramConfig, "database": DatabaseConfig,
    "smtp": SmtpConfig, "recap": RecapConfig, "reminders": RemindersConfig,
    "report": ReportConfig, "calendar": CalendarConfig, "privacy": PrivacyConfig,
    "lembaga": LembagaConfig, "mailbox": MailboxConfig,
}  # fmt: skip


def _keys(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(f.alias or name for name, f in model.model_fields.items())


def procedure_sections(procedure: Procedure) -> dict[str, type[Section]]:
    """[roles], [sla] and [reject] as the procedure's table names them."""
    roles: dict[str, Any] = {}
    for rule in procedure.roles:
        ids: Any = Annotated[frozenset[int], BeforeValidator(_user_ids)]
        if rule.required:
            ids = Annotated[
                frozenset[int], BeforeValidator(_user_ids),
                _checked(bool, "must name at least one user id"),
            ]  # fmt: skip
        roles[rule.role] = (ids, ...) if rule.listed else (ids, frozenset())
    sla: dict[str, Any] = {s.setting: (Number, s.default) for s in procedure.standards}
    reasons: dict[str, Any] = {}
    for lst in procedure.reason_lists:
        checks: list[Any] = [BeforeValidator(_strings), AfterValidator(_nameless)]
        if lst.key == "reasons":  # Tolak's: the one a Kasi always needs
            checks.append(_checked(bool, "must name at least one reason"))
        reasons[lst.key] = (Annotated[tuple[str, ...], *checks], tuple(lst.defaults))
    return {
        "roles": create_model("RolesConfig", __base__=Section, **roles),
        "sla": create_model("SlaConfig", __base__=Section, **sla),
        "reject": create_model("ReasonsConfig", __base__=Section, **reasons),
    }


def _nameless(reasons: tuple[str, ...]) -> tuple[str, ...]:
    for n, reason in enumerate(reasons, start=1):
        # A preset reason is shown on every card and sent to residents: it names nobody.
        if carries_personal_number(reason):
            refuse(f"reason {n} holds a full NIK/KK or a phone number")
    return reasons


# Every section, in the order a reader meets them (and their problems are listed).
ORDER = ("office", "telegram", "roles", "database", "smtp", "recap", "reminders", "report",
         "mailbox", "calendar", "sla", "privacy", "lembaga", "reject")  # fmt: skip


def sections_of(procedure: Procedure) -> dict[str, type[Section]]:
    every = {**FIXED, **procedure_sections(procedure)}
    return {name: every[name] for name in ORDER}


def schema_of(procedure: Procedure) -> dict[str, frozenset[str]]:
    """Every key of every section, as the models declare them."""
    return {name: _keys(model) for name, model in sections_of(procedure).items()}


SPECIAL_KEYS = _keys(SpecialEntry)


# -- the whole configuration -------------------------------------------------------------


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
    mailbox: MailboxConfig = field(default_factory=MailboxConfig)
    province_to: tuple[str, ...] = ()  # the province: the JSON summary only
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


def _hint(name: str, known: frozenset[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _key_of(section: str, loc: tuple[int | str, ...]) -> str:
    """("special", 0, "from") in [calendar] -> "calendar.special[1].from"."""
    key = section
    for part in loc:
        key += f"[{part + 1}]" if isinstance(part, int) else f".{part}"
    return key


def _lines(section: str, model: type[BaseModel], error: ValidationError) -> list[str]:
    """pydantic's errors as `key: message` lines, in the section's words."""
    lines = []
    for e in error.errors(include_url=False, include_input=False):
        loc = tuple(e["loc"])
        key = _key_of(section, loc)
        if e["type"] == "config":
            message = e["msg"]
        elif e["type"] == "extra_forbidden":
            owner = SpecialEntry if "special" in loc else model
            message = f"unknown key{_hint(str(loc[-1]), _keys(owner))}"
        elif e["type"] == "missing":
            message = MISSING.get(
                (section, str(loc[-1])), MISSING.get((section, "*"), "is required")
            )
        elif e["type"] in ("model_type", "dict_type"):
            message = (
                "must be a table with from, to and hours"
                if "special" in loc
                else (f"must be a section ([{section}])")
            )
        elif e["type"] in ("tuple_type", "list_type"):
            message = "must be [[calendar.special]] tables"
        else:  # a type pydantic checks itself: say it plainly
            message = e["msg"].lower()
        line = f"{key}: {message}"
        if line not in lines:
            lines.append(line)
    return lines


# Words for a missing key where "is required" alone would not say enough.
MISSING: dict[tuple[str, str], str] = {
    ("calendar", "from"): "is required (YYYY-MM-DD)",
    ("roles", "*"): "is required: a list of Telegram user ids",
}


def _unknown_sections(data: Mapping[str, Any], schema: Mapping[str, Any]) -> tuple[
    list[str], set[str]
]:  # fmt: skip
    """A typo must not pass silently: an unknown section is one line with a did-you-mean;
    the section it stands for is then not reported missing as well."""
    problems: list[str] = []
    misspelt: set[str] = set()
    for name, value in data.items():
        if name in schema:
            continue
        kind = "section" if isinstance(value, Mapping) else "key"
        close = difflib.get_close_matches(name, sorted(schema), n=1, cutoff=0.6)
        hint = f" (did you mean [{close[0]}]?)" if close and kind == "section" else ""
        if close and kind == "section" and close[0] not in data:
            misspelt.add(close[0])
        problems.append(f"{name}: unknown {kind}{hint or _hint(name, tuple(schema))}")
    return problems, misspelt


def _special_periods(entries: tuple[SpecialEntry, ...], problems: list[str]) -> tuple[
    tuple[SpecialPeriod, ...], frozenset[date]
]:  # fmt: skip
    periods: list[SpecialPeriod] = []
    open_on: set[date] = set()
    for index, entry in enumerate(entries, start=1):
        key = f"calendar.special[{index}]"
        open_on |= entry.open_on
        if entry.hours is None:
            if not entry.open_on:
                problems.append(f'{key}.hours: is required: "08:00-15:00" or "closed"')
            continue
        last = entry.last or entry.first
        if last < entry.first:
            problems.append(f"{key}.to: must not be before from")
            continue
        try:
            hours = _hours_of(entry.hours, closed_ok=True)
        except PydanticCustomError as error:
            problems.append(f"{key}.hours: {error.message()}")
            continue
        own = entry.own_hours()
        periods.append(SpecialPeriod(entry.first, last, hours, own))
    return tuple(periods), frozenset(open_on)


def _database_path(text: str, base: Path, problems: list[str]) -> Path:
    path = (base / text).resolve() if text else base
    parent = path.parent
    if text and not parent.is_dir():
        problems.append(f"database.path: directory {parent} does not exist")
    elif text and not os.access(parent, os.W_OK):
        problems.append(f"database.path: directory {parent} is not writable")
    elif path.exists() and (path.is_dir() or not os.access(path, os.W_OK)):
        problems.append(f"database.path: {path} is not a writable file")
    return path


def parse_config(
    data: Mapping[str, Any], env: Mapping[str, str], base: Path, *, need_token: bool = True,
    procedure: Procedure = SOP_09,
) -> Config:  # fmt: skip
    """`need_token` False: for the verbs that never talk to Telegram (backup, recap
    --dry-run, report, export, purge), which run as the service user without the secrets."""
    sections = sections_of(procedure)
    problems, misspelt = _unknown_sections(data, sections)
    read: dict[str, Any] = {}
    for name, model in sections.items():
        table = data.get(name)
        if table is None:
            if name in REQUIRED_SECTIONS:
                if name not in misspelt:
                    problems.append(f"[{name}]: section is missing")
                continue
            table = {}
        if not isinstance(table, Mapping):
            problems.append(f"{name}: must be a section ([{name}])")
            continue
        try:
            read[name] = model.model_validate(table, context={"base": base})
        except ValidationError as error:
            problems += _lines(name, model, error)

    # What depends on more than one key, or on the environment and the disk.
    telegram: TelegramConfig | None = read.get("telegram")
    token = env.get(TOKEN_ENV) or (telegram.token.get_secret_value() if telegram else "")
    if "telegram" in read or "telegram" in data:
        if not token and need_token:
            problems.append(f"telegram.token: is required (or set {TOKEN_ENV})")
        elif token and not TOKEN_SHAPE.match(token):
            problems.append("telegram.token: does not look like a bot token from BotFather")
    smtp: SmtpConfig | None = read.get("smtp")
    if smtp is not None:
        if smtp.ca_file is not None and not (
            smtp.ca_file.is_file() and os.access(smtp.ca_file, os.R_OK)
        ):
            problems.append(f"smtp.ca_file: {smtp.ca_file} is not a readable file")
        if smtp.username and smtp.security == "none":
            problems.append(
                'smtp.username: would send the password unencrypted; use security = "starttls"'
                ' or "tls"'
            )
    mailbox: MailboxConfig | None = read.get("mailbox")
    if mailbox is not None and mailbox.enabled:
        if mailbox.ca_file is not None and not (
            mailbox.ca_file.is_file() and os.access(mailbox.ca_file, os.R_OK)
        ):
            problems.append(f"mailbox.ca_file: {mailbox.ca_file} is not a readable file")
        if not mailbox.username:
            problems.append("mailbox.username: is required when mailbox.host is set")
        if mailbox.security == "none" and mailbox.host not in LOOPBACK:
            problems.append(
                'mailbox.security: "none" would send the password unencrypted; use "tls" or'
                ' "starttls" (plain IMAP only to a server on this machine, 127.0.0.1)'
            )
    database = read.get("database")
    path = _database_path(database.path, base, problems) if database else base
    calendar_section: CalendarConfig | None = read.get("calendar")
    special, special_open = (
        _special_periods(calendar_section.special, problems)
        if calendar_section
        else ((), frozenset())
    )
    lembaga: LembagaConfig | None = read.get("lembaga")
    for alias, first, second in claimed_twice(lembaga.known if lembaga else {}):
        problems.append(f"lembaga.known.{second}: {alias!r} is already an alias of {first!r}")
    problems = sorted(problems, key=_section_order(list(sections)))
    if problems:
        raise ConfigError(problems)

    office: OfficeConfig = read["office"]
    assert telegram is not None
    assert smtp is not None
    assert calendar_section is not None
    assert lembaga is not None
    if env.get(SMTP_PASSWORD_ENV):
        smtp = smtp.model_copy(update={"password": SecretStr(env[SMTP_PASSWORD_ENV])})
    cal = calendar_section
    privacy: PrivacyConfig = read["privacy"]
    mailbox = read["mailbox"]
    if env.get(IMAP_PASSWORD_ENV):
        mailbox = mailbox.model_copy(update={"password": SecretStr(env[IMAP_PASSWORD_ENV])})
    if not mailbox.trusted:
        recap_section: RecapConfig = read["recap"]
        mailbox = mailbox.model_copy(update={"trusted": recap_section.to + recap_section.cc})
    return Config(
        office=office,
        telegram=telegram.model_copy(update={"token": SecretStr(token)}),
        roles=dict(read["roles"]),
        database_path=path,
        smtp=smtp,
        recap=read["recap"],
        calendar=WorkCalendar(
            tz=office.timezone,
            workdays=parse_workdays(cal.workdays),
            start=cal.work_hours[0],
            end=cal.work_hours[1],
            country=cal.public_holidays,
            extra_holidays=cal.extra_holidays,
            day_hours=cal.own_hours(),
            special=special,
            open_on=cal.open_on | special_open,
        ),
        sla=Sla(dict(read["sla"])),
        delete_intake=privacy.delete_intake,
        lembaga=LembagaCatalog(lembaga.known),
        reasons=dict(read["reject"]),
        reminders=read["reminders"],
        report_to=read["report"].to,
        mailbox=mailbox,
        province_to=read["report"].province_to,
        retention_days=privacy.retention_days,
        photo_minutes=privacy.photo_minutes,
        procedure=procedure,
    )


def _section_order(names: list[str]) -> Callable[[str], int]:
    """Problems by section, in the models' order (then as found): one read, top to bottom."""

    def order(line: str) -> int:
        section = line.partition(":")[0].strip("[]").partition(".")[0].partition("[")[0]
        return names.index(section) if section in names else -1

    return order


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
        for section, key in (("telegram", "token"), ("smtp", "password"), ("mailbox", "password"))
    )
