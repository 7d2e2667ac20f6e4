"""Configuration: typed, validated, secrets kept out of reprs; the CLI's check-config."""

from __future__ import annotations

import logging
import re
import shutil
from io import StringIO
from pathlib import Path

import pytest

from ticketbot.cli import main
from ticketbot.config import TOKEN_ENV, ConfigError, load_config
from ticketbot.logs import setup_logging

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
TOKEN = "123456:TEST-example-not-a-real-token"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    target = tmp_path / "config.toml"
    shutil.copy(EXAMPLE, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_example_is_valid_with_token_in_env(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert main(["check-config", "--config", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == "OK\n"
    config = load_config(example)
    assert config.telegram.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(config) and TOKEN.split(":")[1] not in str(config)
    assert config.roles_of(333333333) == {"staf"}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("group_id = -1001234567890", 'group_id = "-100"', "telegram.group_id: must be an integer"),
        ("kasi = [111111111]", 'kasi = ["111111111"]', "roles.kasi: must be a list of Telegram user ids"),
        ('time = "15:00"', 'time = "3pm"', "recap.time: must be a time as HH:MM"),
        ('time = "15:00"', 'time = "24:00"', "recap.time: must be a time as HH:MM"),
        ('security = "starttls"', 'security = "ssl"', "smtp.security: must be"),
        ('timezone = "Asia/Jakarta"', 'timezone = "Asia/Sibolga"', "office.timezone: unknown time zone"),
        ('path = "ticketbot.sqlite3"', 'path = "/nonexistent/dir/x.sqlite3"', "database.path: directory /nonexistent/dir does not exist"),
        ('work_hours = "07:30-16:00"', 'work_hours = "16:00-07:30"', "calendar.work_hours: must end after it starts"),
        ('workdays = ["mon",', 'workdays = ["senin",', "calendar.workdays: unknown day"),
        ("kasi_minutes = 10", "kasi_minutes = -1", "sla.kasi_minutes: must be greater than 0"),
        ('to = ["admin-dwh@example.go.id"]', 'to = ["admin-dwh"]', "recap.to: 'admin-dwh' is not an email address"),
        ("delete_intake = true", 'delete_intake = "ya"', "privacy.delete_intake: must be true or false"),
        ("ping_gather_seconds = 3", "ping_gather_seconds = 90", "reminders.ping_gather_seconds: must be between 0 and 60 (seconds)"),
    ],
)  # fmt: skip
def test_broken_key_exits_2_naming_it(
    example: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    message: str,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    edit(example, old, new)
    with pytest.raises(SystemExit) as exit_info:
        main(["check-config", "--config", str(example)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1


def test_missing_token_is_reported(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ConfigError) as error:
        load_config(example)
    assert error.value.problems == [
        "telegram.token: is required (or set TICKETBOT_TELEGRAM_TOKEN)"
    ]


def test_run_refuses_to_start_with_the_same_messages(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    edit(example, 'time = "15:00"', 'time = "25:00"')
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--config", str(example)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "telegram.token: is required (or set TICKETBOT_TELEGRAM_TOKEN)",
        "recap.time: must be a time as HH:MM (24 hours), got '25:00'",
    ]


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[office\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_logs_never_carry_token_or_full_nik() -> None:
    stream = StringIO()
    handler = setup_logging(logging.DEBUG, stream)
    try:
        logging.getLogger("telegram.ext").info("POST https://api.telegram.org/bot%s/getMe", TOKEN)
        logging.getLogger("ticketbot").warning("NIK %s rejected", "1273014506850001")
        try:
            raise RuntimeError(f"bot{TOKEN} failed for 1273014506850001")
        except RuntimeError:
            logging.getLogger("ticketbot").exception("boom")
    finally:
        logging.getLogger().removeHandler(handler)
    output = stream.getvalue()
    assert TOKEN not in output and "1273014506850001" not in output
    assert "<token>" in output and "127301******0001" in output
    assert re.search(r"RuntimeError", output)
