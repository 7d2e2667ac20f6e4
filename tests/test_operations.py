"""Operating the product (issue D): demo, documentation, backup."""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.conftest import VALID_FORM, form
from ticketbot.cli import parser
from ticketbot.demo import run_demo
from ticketbot.emulator.simulation import KASI, STAF, Simulation
from ticketbot.handlers import COMMANDS
from ticketbot.store import Stores

ROOT = Path(__file__).resolve().parent.parent


def test_demo_covers_every_sop_step_and_writes_the_email(tmp_path: Path) -> None:
    out = io.StringIO()
    steps = run_demo(tmp_path / "out", out)
    transcript = out.getvalue()
    assert steps == ["1–2", "3", "5 (ditolak)", "4", "4 (email masuk)", "5"]
    for fragment in ("Tiket #1", "Tiket belum dibuat", "Sudah ada tiket terbuka", "Verifikasi",
                     "Alasan penolakan", "Sinkron di Konsolidasi", "Email diterima server SMTP",
                     "konfirmasi 2 tiket", "https://wa.me/", "Selesai — pemohon sudah diinformasikan",
                     # The DWH side's mail, read from the demo's own IMAP server (SPEC §4c).
                     "tidak sampai ke admin DWH pusat", "[SINKRON 12.73 B2]", "Balasan otomatis",
                     "🔁 #3 sinkron ulang: gagal: NIK ganda", "Diterapkan oleh Budi ADB"):  # fmt: skip
        assert fragment in transcript, fragment
    # The group never shows a full NIK; only the staff's own typing and the pop-up do.
    group_lines = [ln for ln in transcript.splitlines() if ln.strip().startswith("│")]
    assert not any(re.search(r"(?<!\d)\d{16}(?!\d)", ln) for ln in group_lines)
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["rekap-sinkronisasi-nik-2026-11-24.xlsx", "rekap.eml", "rekap.html"]
    sheet = load_workbook(tmp_path / "out" / files[0]).active
    assert sheet.cell(row=2, column=2).value == "1273014506850001"  # headers in row 1
    assert "Telegram menolak" not in transcript
    # Each deletion says why: a person's message held a NIK; the bot's own old card (re-posted
    # at a hand-off) did not.
    deletions = [ln for ln in transcript.splitlines() if "Bot menghapus pesan" in ln]
    assert any("(memuat NIK lengkap)" in ln for ln in deletions)
    assert any("(kartu lama, sudah dikirim ulang)" in ln for ln in deletions)
    assert readme_intakes() == "five intakes"


def readme_intakes() -> str:
    match = re.search(r"plays one office day:\s+(\w+ intakes)", (ROOT / "README.md").read_text())
    assert match is not None
    return match.group(1)


def test_every_verb_has_a_one_line_description_in_its_own_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    subcommands = parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for verb, sub in subcommands.items():
        assert sub.description and "\n" not in sub.description, verb
        assert sub.format_help().split("\n\n")[1].strip() == sub.description, verb


def test_every_registered_command_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "PANDUAN.md").read_text()
    for command in COMMANDS:
        assert f"/{command.command}" in readme, command.command
        assert f"/{command.command}" in guide, command.command
    assert "/help" in readme and "/start" in readme and "/rekap kirim" in readme
    subcommands = parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for verb in subcommands:
        assert f"ticketbot {verb}" in readme, verb


def test_readme_starts_with_the_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    install, tests = (ln.split("#")[0].strip() for ln in first_block.strip().splitlines())
    ci = (ROOT / ".ci" / "run").read_text()
    assert install.startswith("python3 -m venv .venv") and "ticketbot demo" in install
    assert tests == ".venv/bin/python -m pytest"
    assert install in ci and tests in ci


async def test_backup_while_running_restores(sim: Simulation, tmp_path: Path) -> None:
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    await sim.say(STAF, form(lembaga="Bank"))
    assert sim.config is not None
    config = tmp_path / "backup.toml"
    config.write_text(
        '[office]\nname = "Disdukcapil"\n[telegram]\ngroup_id = -100\n'
        "[roles]\nkasi = [1]\nadb = [2]\nstaf = [3]\n"
        f'[database]\npath = "{sim.config.database_path}"\n'
        '[smtp]\nhost = "127.0.0.1"\nfrom = "x@example.go.id"\n[recap]\nto = ["a@example.go.id"]\n'
    )
    out = tmp_path / "copy.sqlite3"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticketbot", "backup", "--config", str(config), str(out),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TICKETBOT_TELEGRAM_TOKEN": "123456:TEST-cli-not-a-real-token-000"},
    )  # fmt: skip
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr
    # The bot kept serving during the backup.
    await sim.tap(KASI, card, "NIK")
    restored = await Stores.open(out, migrate=False)
    try:
        assert await restored.tickets.count_tickets() == 2
        original = [(e.action, e.actor_id) for e in await sim.office.repo.events.events_for(1)]
        copied = [(e.action, e.actor_id) for e in await restored.events.events_for(1)]
        assert copied == original[: len(copied)] and ("verify", KASI.user_id) in copied
        assert await restored.db.schema_version() == await sim.office.repo.db.schema_version()
    finally:
        await restored.close()
    # An existing file is never overwritten.
    again = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticketbot", "backup", "--config", str(config), str(out),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TICKETBOT_TELEGRAM_TOKEN": "123456:TEST-cli-not-a-real-token-000"},
    )  # fmt: skip
    _, err = await again.communicate()
    assert again.returncode == 2 and b"already exists" in err


def test_recap_dry_run_with_nothing_pending_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import always_open_config
    from ticketbot.cli import main

    config = always_open_config(tmp_path / "config.toml", "http://127.0.0.1:9/bot", 9)

    async def create() -> None:
        await (await Stores.open(tmp_path / "office.sqlite3")).close()

    asyncio.run(create())
    assert main(["recap", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("nothing pending")
    assert "Subject" not in out
