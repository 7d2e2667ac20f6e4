"""Issue F: the operator's path, tried where the operator meets it (CLI, group, files)."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import ssl
import subprocess
import sys
import tomllib
from datetime import date, datetime, time
from pathlib import Path

import pandas as pd
import pytest
import trustme
from openpyxl import load_workbook

from tests.conftest import VALID_FORM, form
from ticketbot import cli
from ticketbot.cli import main, parser
from ticketbot.config import (
    TOKEN_ENV,
    ConfigError,
    config_warnings,
    load_config,
    parse_config,
    schema_of,
)
from ticketbot.domain.calendar import Sla, SpecialPeriod, WorkCalendar, deadline
from ticketbot.domain.lifecycle import SOP_09, State
from ticketbot.emulator.botapi import FakeBotApi
from ticketbot.emulator.simulation import (
    ADB,
    GROUP_ID,
    KASI,
    STAF,
    TZ,
    Simulation,
    office_settings,
)
from ticketbot.emulator.smtp import SmtpSink
from ticketbot.xlsx import HEADERS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
TOKEN = "123456:TEST-operator-not-a-real-token"


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "config.toml"
    shutil.copy(EXAMPLE, target)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    # What check-config looks ahead from (cuti bersama, Ramadan): a fixed day, not the
    # machine's, so the checks below hold whenever they run.
    monkeypatch.setattr(cli, "office_today", lambda config: date(2026, 11, 24))
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        code = main(["check-config", "--config", str(path)])
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    return code, capsys.readouterr().err.strip().splitlines()


# -- configuration: every typo and every single problem is one clear line ---------------


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ('security = "starttls"', 'secuirty = "tls"',
         "smtp.secuirty: unknown key (did you mean 'security'?)"),
        ('time = "15:00"', 'tiem = "14:00"', "recap.tiem: unknown key (did you mean 'time'?)"),
        ("[privacy]", "[privasi]", "privasi: unknown section (did you mean [privacy]?)"),
        ("[recap]", "[rekap]", "rekap: unknown section (did you mean [recap]?)"),
        ("kasi = [111111111]", "kasi = [111111111]\nkepala = [1]",
         "roles.kepala: unknown key"),
        ('from = "Disdukcapil Kota Sibolga <disdukcapil@example.go.id>"',
         'from = "Disdukcapil Kota Sibolga, Sumatera Utara <disdukcapil@example.go.id>"',
         "smtp.from: must be one mailbox"),
        ('from = "Disdukcapil Kota Sibolga <disdukcapil@example.go.id>"',
         'from = "disdukcapil@example.go.id, dwh@example.go.id"',
         "smtp.from: must be one mailbox"),
        ('username = ""', 'username = "dinas"\nca_file = "missing-ca.pem"',
         "smtp.ca_file: "),
        ("group_id = -1001234567890", "", "telegram.group_id: is required"),
        ("[smtp]", "[smtpp]", "smtpp: unknown section (did you mean [smtp]?)"),
        ('fri_hours = "07:30-16:30"', 'fri_hours = "7.30-16.30"',
         "calendar.fri_hours: must look like 07:30-16:00"),
        # A typo in a sub-table is a typo too: the built-in list must not be used silently.
        ("[lembaga.known]", "[lembaga.knwon]",
         "lembaga.knwon: unknown key (did you mean 'known'?)"),
        ("port = 587", 'port = "587"', "smtp.port: must be an integer"),
        # Two institutions claiming one alias: an intake would go to the first, silently.
        ('"Bank" = []', '"Bank" = ["pajak"]',
         "lembaga.known.Direktorat Jenderal Pajak: 'pajak' is already an alias of 'Bank'"),
        # A preset reason is on every card and in residents' messages: it names nobody.
        ('    "NIK tidak ditemukan di database SIAK",',
         '    "NIK tidak ditemukan di database SIAK",\n    "hubungi 0812 3456 7890",',
         "reject.reasons: reason 2 holds a full NIK/KK or a phone number"),
    ],
)  # fmt: skip
def test_each_problem_is_exactly_one_line_naming_the_key(
    example: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, line: str
) -> None:
    edit(example, old, new)
    code, lines = check(example, capsys)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(line), lines


def test_a_quoted_display_name_with_a_comma_is_one_mailbox(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(example, 'from = "Disdukcapil Kota Sibolga <disdukcapil@example.go.id>"',
         'from = \'"Disdukcapil Kota Sibolga, Sumatera Utara" <disdukcapil@example.go.id>\'')  # fmt: skip
    code, _ = check(example, capsys)
    assert code == 0


def test_the_example_documents_every_key(example: Path) -> None:
    text = EXAMPLE.read_text()
    for section, keys in schema_of(SOP_09).items():
        assert f"[{section}" in text, section
        for key in keys:
            shown = rf"^#.*\b{key}\b|^{key}\s*=|^\[{section}\.{key}\]"
            assert re.search(shown, text, re.M), f"{section}.{key}"
    # And what it shows, uncommented, is a working configuration.
    uncommented = re.sub(r"^# (?!ca_file)(\w+ = |\[\[)", r"\1", text, flags=re.M)
    data = tomllib.loads(uncommented)
    config = parse_config(data, {TOKEN_ENV: TOKEN}, example.parent)
    assert config.calendar.hours(date(2026, 11, 27)) == (time(7, 30), time(16, 30))


def test_warnings_cuti_bersama_missing_and_secret_readable(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(example)
    # The pinned holidays package knows 2026 and 2027; it cannot know 2028 yet.
    assert config.calendar.has_cuti_bersama(2026) and config.calendar.has_cuti_bersama(2027)
    assert config_warnings(config, False, date(2026, 11, 24)) == []
    [warning] = config_warnings(config, False, date(2027, 6, 1))
    assert "no cuti bersama known for 2028" in warning
    # Ramadan 1448 H within 60 days, and no [[calendar.special]] for it.
    [warning] = config_warnings(config, False, date(2026, 12, 15))
    assert warning.startswith("calendar.special: Ramadan begins about 2027-02-08")
    edit(example, "# [[calendar.special]]\n# from = \"2027-02-08\"\n# to = \"2027-03-09\"\n"
                  "# hours = \"08:00-15:00\"\n# fri_hours = \"08:00-15:30\"",
         "[[calendar.special]]\nfrom = \"2027-02-08\"\nto = \"2027-03-09\"\n"
         "hours = \"08:00-15:00\"\nfri_hours = \"08:00-15:30\"")  # fmt: skip
    ramadan = load_config(example)
    assert config_warnings(ramadan, False, date(2026, 12, 15)) == []
    assert ramadan.calendar.hours(date(2027, 3, 5)) == (time(8), time(15, 30))
    assert ramadan.calendar.hours(date(2027, 3, 4)) == (time(8), time(15))
    edit(example, 'token = ""', 'token = "123456:TEST-in-the-file-not-a-real-token"')
    example.chmod(0o644)
    code, lines = check(example, capsys)
    assert code == 0 and len(lines) == 1
    assert "holds a secret and is readable by others (mode 0644)" in lines[0]
    assert "TEST-in-the-file" not in lines[0]
    example.chmod(0o600)
    assert check(example, capsys) == (0, [])
    # A recap or a morning summary outside work hours: a warning each.
    edit(example, 'time = "15:00"', 'time = "17:30"')
    edit(example, 'morning_summary = "07:45"', 'morning_summary = "06:00"')
    assert config_warnings(load_config(example), False, date(2026, 12, 15)) == [
        "recap.time: 17:30 is outside work hours (07:30-16:00); nobody is at the office to"
        " act on it then",
        "reminders.morning_summary: 06:00 is outside work hours (07:30-16:00); nobody is at"
        " the office to act on it then",
    ]


def test_offline_verbs_need_no_token(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    edit(example, 'path = "ticketbot.sqlite3"', f'path = "{example.parent / "db.sqlite3"}"')
    load_config(example, need_token=False)  # the database does not exist yet
    (example.parent / "db.sqlite3").write_bytes(b"")
    assert main(["backup", "--config", str(example), str(example.parent / "copy.sqlite3")]) == 0
    assert (example.parent / "copy.sqlite3").exists()
    code, lines = check(example, capsys)
    assert code == 2 and lines == ["telegram.token: is required (or set TICKETBOT_TELEGRAM_TOKEN)"]


# -- the command line ------------------------------------------------------------------


def test_cli_help_speaks_to_operators(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert re.fullmatch(r"ticketbot \d+\.\d+\.\d+\n", capsys.readouterr().out)
    top = parser()
    texts = [top.format_help()]
    for action in top._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():  # type: ignore[attr-defined]
            texts.append(sub.format_help())
            for option in sub._actions:
                if option.dest != "help":
                    assert option.help, f"{name} {option.dest} has no help"
    for text in texts:
        assert "SPEC" not in text and "§" not in text


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticketbot", *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def config_file(tmp_path: Path, base_url: str, smtp_port: int, **extra: str) -> Path:
    path = tmp_path / "config.toml"
    smtp = "\n".join(f"{k} = {v}" for k, v in extra.items())
    path.write_text(
        '[office]\nname = "Disdukcapil Kota Sibolga"\n'
        f'[telegram]\nbase_url = "{base_url}"\ngroup_id = {GROUP_ID}\n'
        "[roles]\nkasi = [111111111]\nadb = [222222222]\nstaf = [333333333]\n"
        '[database]\npath = "office.sqlite3"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nfrom = "x@example.go.id"\n{smtp}\n'
        '[recap]\nto = ["admin-dwh@example.go.id"]\n'
    )
    path.chmod(0o600)
    return path


async def test_a_token_telegram_refuses_is_exit_2_and_never_printed(tmp_path: Path) -> None:
    api = FakeBotApi(token="654321:TEST-the-right-token-not-real")
    await api.start()
    wrong = "654321:TEST-the-wrong-token-not-real-x"
    try:
        config = config_file(tmp_path, api.base_url, 25, security='"none"')
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ticketbot", "run", "--config", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, TOKEN_ENV: wrong},
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        await api.stop()
    err = stderr.decode()
    assert process.returncode == 2, err
    assert "TEST-the-wrong" not in err and "Traceback" not in err
    assert "telegram.token: Telegram refused the bot token" in err.splitlines()[-1]


def test_telegram_unreachable_at_start_is_one_line_and_exit_1(tmp_path: Path) -> None:
    config = config_file(tmp_path, "http://127.0.0.1:9/bot", 25, security='"none"')
    result = run_cli("run", "--config", str(config), env={TOKEN_ENV: TOKEN})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("cannot reach Telegram at http://127.0.0.1:9/bot")
    )
    assert TOKEN.split(":")[1] not in result.stderr


async def test_recap_test_sends_a_short_email_without_personal_data(tmp_path: Path) -> None:
    sink = SmtpSink()
    await sink.start()
    try:
        config = config_file(tmp_path, "http://127.0.0.1:9/bot", sink.port, security='"none"')
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ticketbot", "recap", "--config", str(config), "--test",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if k != TOKEN_ENV},
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        await sink.stop()
    assert process.returncode == 0, stderr
    assert stdout.decode().startswith("test email accepted by 127.0.0.1:")
    [received] = sink.received
    assert received.recipients == ["admin-dwh@example.go.id"]
    assert str(received.message["Subject"]).startswith("Uji kirim email ticketbot")
    body = received.message.get_body(preferencelist=("plain",))
    assert body is not None and not re.search(r"\d{6,}", body.get_content())
    # With the mail server gone: one English line, exit 1 (it may come back).
    result = run_cli("recap", "--config", str(config), "--test")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("smtp: test email not sent (unreachable)")


# -- recap failures reach the group once, in Indonesian -------------------------------


async def synced(sim: Simulation, text: str = VALID_FORM) -> None:
    await sim.say(STAF, text)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    await sim.tap(ADB, card, "Konsolidasi")


def group_texts(sim: Simulation) -> list[str]:
    return [m.plain or "" for m in sim.api.visible(GROUP_ID) if m.from_id == sim.api.bot_id]


RAW = re.compile(r"SMTP\w*Error|Error connecting|Traceback|Exception|errno|SSL", re.I)


async def test_mail_server_down_is_told_late_once_in_indonesian(sim: Simulation) -> None:
    await sim.run_jobs()
    await synced(sim)
    await sim.smtp.stop()
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    sim.clock.advance(hours=1, minutes=1)
    await sim.run_jobs()
    sim.clock.advance(hours=1)
    await sim.run_jobs()
    late = [t for t in group_texts(sim) if "terlambat" in t]
    assert len(late) == 1
    assert "server email tidak dapat dihubungi" in late[0] and "mencoba lagi otomatis" in late[0]
    assert not RAW.search(late[0])
    await sim.smtp.start()


async def test_a_permanent_refusal_by_rekap_kirim_is_one_message(sim: Simulation) -> None:
    await synced(sim)
    sim.smtp.refusals.append("550 5.1.1 No such user")
    before = len(group_texts(sim))
    await sim.say(KASI, "/rekap kirim")
    new = group_texts(sim)[before:]
    assert len(new) == 1, new
    assert "gagal dikirim" in new[0] and "Periksa alamat" in new[0]
    assert "mencoba lagi otomatis" not in new[0]
    assert "550 5.1.1 No such user" in new[0]  # the server's own reply helps the operator


@pytest.fixture
def office_ca() -> trustme.CA:
    return trustme.CA(organization_name="Disdukcapil Sibolga Test CA")


async def tls_office(
    tmp_path: Path, ca: trustme.CA, *, trust: bool
) -> tuple[Simulation, SmtpSink]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    sink = SmtpSink(tls=server)
    ca_file = tmp_path / "office-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    settings = {"smtp__security": "tls", **({"smtp__ca_file": str(ca_file)} if trust else {})}
    return Simulation(tmp_path, settings=settings, smtp=sink), sink


async def test_an_untrusted_certificate_is_permanent_and_said_plainly(
    tmp_path: Path, office_ca: trustme.CA
) -> None:
    sim, sink = await tls_office(tmp_path, office_ca, trust=False)
    async with sim:
        await synced(sim)
        sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
        await sim.run_jobs()
        [batch] = await sim.office.repo.batches.batches("failed")  # not retried as if transient
        assert batch.error_kind == "tls"
        [told] = [t for t in group_texts(sim) if "gagal dikirim" in t]
        assert "sertifikat server email tidak dipercaya" in told and "smtp.ca_file" in told
        assert not RAW.search(told)
        assert sink.received == []


async def test_an_office_ca_in_smtp_ca_file_is_trusted(
    tmp_path: Path, office_ca: trustme.CA
) -> None:
    sim, sink = await tls_office(tmp_path, office_ca, trust=True)
    async with sim:
        await synced(sim)
        sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
        await sim.run_jobs()
        assert len(sink.received) == 1


# -- the spreadsheet and the email on a phone --------------------------------------------


async def test_recap_xlsx_reads_with_pandas_defaults_and_is_a_plain_table(
    sim: Simulation,
) -> None:
    await synced(sim, form(keterangan="K" * 400))
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    message = sim.smtp.received[0].message
    xlsx = next(message.iter_attachments()).get_content()
    frame = pd.read_excel(io.BytesIO(xlsx))
    assert tuple(frame.columns) == HEADERS
    # pandas infers numbers from text cells; 16 digits still round-trip exactly (int64),
    # and read_excel(dtype=str) keeps them as the text they are.
    assert [str(v) for v in frame["NIK"]] == ["1273014506850001"]
    as_text = pd.read_excel(io.BytesIO(xlsx), dtype=str)
    assert as_text["No. KK"].tolist() == ["1273010101090003"]
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:P2"
    assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.fitToWidth == 1
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.cell(row=2, column=6).alignment.wrap_text
    widths = [sheet.column_dimensions[c].width for c in "ABCDEFGHIJKLMNOP"]
    assert all(w >= len(h) * 0.8 for w, h in zip(widths, HEADERS, strict=True))


async def test_recap_email_fits_a_phone(sim: Simulation) -> None:
    await synced(sim, form(keterangan="NIK tidak terbaca di aplikasi P-Care " * 6))
    sim.clock.now = sim.clock.now.replace(hour=15, minute=0)
    await sim.run_jobs()
    message = sim.smtp.received[0].message
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    lines = plain.get_content().splitlines()
    assert max(len(line) for line in lines) <= 78
    assert any("2026" in line and "Sinkron" in line for line in lines)  # dates with a year
    body = html.get_content()
    assert 'name="viewport"' in body and "max-width: 600px" in body
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        assert len(re.findall(r"<t[dh]\b", row)) <= 2  # label and value, never a wide table
    assert "24 Nov 2026" in body


# -- working hours -------------------------------------------------------------------------

SLA = Sla({"kasi_minutes": 10, "adb_workdays": 1, "inform_minutes": 5})


def due(state: str, since: datetime, cal: WorkCalendar, sla: Sla) -> datetime | None:
    """The deadline of a ticket entering `state` at `since` (SOP 09's table)."""
    return deadline(SOP_09.step(state).standard, since, cal, sla)


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def test_friday_hours_ramadan_hours_closures_and_open_on() -> None:
    cal = WorkCalendar(
        TZ,
        day_hours=((4, (time(7, 30), time(16, 30))),),
        special=(
            SpecialPeriod(date(2026, 2, 19), date(2026, 3, 19), (time(8), time(15))),
            SpecialPeriod(date(2026, 11, 30), date(2026, 11, 30), None),
        ),
        open_on=frozenset({date(2026, 12, 24)}),  # cuti bersama Natal, the office serves
    )
    # Friday 16:25 + 10 work minutes: 5 on Friday (to 16:30), 5 on Monday... closed 30 Nov.
    assert due(State.NEW, at(2026, 11, 27, 16, 25), cal, SLA) == at(2026, 12, 1, 7, 35)
    # Ramadan: 14:55 + 10 minutes runs past 15:00 to the next morning at 08:05.
    assert due(State.NEW, at(2026, 3, 3, 14, 55), cal, SLA) == at(2026, 3, 4, 8, 5)
    # One working day from Wednesday 23 Dec 10:00: the 24th is served → Thursday 10:00.
    assert cal.is_workday(date(2026, 12, 24)) and not cal.is_workday(date(2026, 12, 25))
    assert due(State.VERIFIED, at(2026, 12, 23, 10), cal, SLA) == at(2026, 12, 24, 10)
    # Friday 16:15 + 1 working day lands after Monday's close: Monday 16:00 (30 Nov is
    # closed, so Tuesday).
    assert due(State.VERIFIED, at(2026, 11, 27, 16, 15), cal, SLA) == at(2026, 12, 1, 16)


def test_calendar_keys_from_the_configuration(tmp_path: Path) -> None:
    data = office_settings("http://127.0.0.1:1/bot", TOKEN, tmp_path / "db.sqlite3", 25)
    data["calendar"] = {
        "fri_hours": "07:30-16:30",
        "open_on": ["2026-12-24"],
        "special": [{"from": "2026-02-19", "to": "2026-03-19", "hours": "08:00-15:00"},
                    {"from": "2026-11-30", "hours": "closed"}],
    }  # fmt: skip
    cal = parse_config(data, {}, tmp_path).calendar
    assert cal.hours(date(2026, 11, 27)) == (time(7, 30), time(16, 30))
    assert cal.hours(date(2026, 3, 2)) == (time(8), time(15))
    assert cal.hours(date(2026, 11, 30)) is None
    assert cal.hours(date(2026, 12, 24)) == (time(7, 30), time(16))


# -- the group becomes a supergroup ------------------------------------------------------

NEW_GROUP = -1009876543210


async def test_supergroup_upgrade_is_followed_and_survives_a_restart(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.api.migrate_group(GROUP_ID, NEW_GROUP)
    await sim.api.wait_until(
        lambda: any("supergrup" in (m.plain or "") for m in sim.api.visible(NEW_GROUP))
    )
    told = [m for m in sim.api.visible(NEW_GROUP) if "supergrup" in (m.plain or "")]
    assert len(told) == 1 and f"group_id = {NEW_GROUP}" in (told[0].plain or "")
    # Work goes on in the new group: an old card's button, and a new intake.
    update_id, _ = await sim.api.press(KASI.user_id, NEW_GROUP, card,
                                       sim.api.button_data(NEW_GROUP, card, "Verifikasi"))  # fmt: skip
    await sim._handled(update_id)
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == State.VERIFIED
    assert ticket.chat_id == NEW_GROUP
    await sim.stop_bot()
    await sim.start_bot()  # the configuration still names the old id
    await sim.say(STAF, form(lembaga="Bank"), chat_id=NEW_GROUP)
    assert await sim.office.repo.tickets.count_tickets() == 2
    assert sim.office.group_id == NEW_GROUP


# -- the README's operator path ----------------------------------------------------------


def test_secrets_file_is_read_alike_by_the_shell_and_systemd(tmp_path: Path) -> None:
    """The README writes secrets as NAME='value' lines: systemd's EnvironmentFile= and a
    shell's `set -a; . file` both take a single-quoted value literally."""
    password = "pa ss$word#1"
    secrets = tmp_path / "secrets.env"
    secrets.write_text(
        f"TICKETBOT_SMTP_PASSWORD='{password}'\nTICKETBOT_TELEGRAM_TOKEN='{TOKEN}'\n"
    )
    shown = subprocess.run(
        ["bash", "-c", f'set -a; . "{secrets}"; printf %s "$TICKETBOT_SMTP_PASSWORD"'],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert shown == password
    readme = (ROOT / "README.md").read_text()
    assert "set -a" in readme and "TICKETBOT_SMTP_PASSWORD='" in readme


def test_readme_stands_alone() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme and "SPEC.md" not in readme
    for needed in ("python3-venv", "/var/lib/ticketbot", "/etc/ticketbot/config.toml",
                   "ticketbot recap --config /etc/ticketbot/config.toml --test"):  # fmt: skip
        assert needed in readme, needed


def test_weekdays_any_case_and_recap_addresses_with_a_name(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(example, 'workdays = ["mon", "tue", "wed", "thu", "fri"]',
         'workdays = ["Mon", "TUE", "wed", "Thu", "fri"]')  # fmt: skip
    edit(example, 'to = ["admin-dwh@example.go.id"]',
         'to = ["Admin DWH Pusat <admin-dwh@example.go.id>"]')  # fmt: skip
    code, lines = check(example, capsys)
    assert (code, lines) == (0, [])
    config = load_config(example)
    assert config.calendar.workdays == frozenset(range(5))
    assert config.recap.to == ("Admin DWH Pusat <admin-dwh@example.go.id>",)


def test_an_empty_configuration_says_each_missing_section_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({}, {}, tmp_path)
    assert caught.value.problems == [
        f"[{section}]: section is missing"
        for section in ("office", "telegram", "roles", "smtp", "recap")
    ]
