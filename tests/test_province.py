"""Figures for the province (SPEC §4b): `ticketbot report` writes the month's summary
without personal data; `ticketbot province-report` merges offices into a ranking."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path

import openpyxl
import pytest
from PIL import Image

from tests.activity import month_of_activity
from tests.conftest import always_open_config
from ticketbot.cli import main
from ticketbot.store import Stores

FULL = re.compile(r"(?<!\d)\d{16}(?!\d)")


def office(tmp_path: Path, name: str, kode: str) -> Path:
    home = tmp_path / kode
    home.mkdir()
    config = always_open_config(home / "config.toml", "http://127.0.0.1:9/bot", 9)
    text = config.read_text()
    config.write_text(text.replace("[office]\n", f'[office]\nkode_wilayah = "{kode}"\n', 1)
                      .replace('name = "', f'name = "{name} ', 1))  # fmt: skip

    async def seed() -> None:
        repo = await Stores.open(home / "office.sqlite3")
        try:
            await month_of_activity(repo)
        finally:
            await repo.close()

    asyncio.run(seed())
    return config


@pytest.fixture
def summaries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[Path]:
    found = []
    for name, kode in (("Kota Sibolga", "12.73"), ("Kota Medan", "12.71")):
        config = office(tmp_path, name, kode)
        out = tmp_path / f"out-{kode}"
        assert main(["report", "--config", str(config), "--month", "2026-05",
                     "--out", str(out)]) == 0  # fmt: skip
        found.append(out / f"ringkasan-{kode}-2026-05.json")
    capsys.readouterr()
    return found


def test_the_summary_has_the_figures_and_no_personal_data(summaries: list[Path]) -> None:
    text = summaries[0].read_text()
    data = json.loads(text)
    assert (data["kode_wilayah"], data["month"], data["format"]) == (
        "12.73",
        "2026-05",
        "ticketbot-ringkasan-1",
    )
    assert data["opened"] > 0 and [s["sop_step"] for s in data["steps"]] == [3, 4, 5]
    assert 0 < data["steps"][0]["within_share"] < 1
    assert data["channels"] == {"loket": data["opened"]}
    assert data["resync_rate"] is not None and data["rejected"] > 0
    # No ticket, NIK, name or phone: only counts and shares.
    assert not FULL.search(text) and "Warga" not in text and "+62" not in text
    assert "ticket_id" not in text and "nik" not in text.lower()


def test_province_report_ranks_the_offices(
    summaries: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "provinsi"
    assert main(["province-report", "--out", str(out), *map(str, summaries)]) == 0
    sheet = openpyxl.load_workbook(out / "provinsi-2026-05.xlsx")["Peringkat"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert sorted(r[1] for r in rows) == ["Kota Medan", "Kota Sibolga"]
    assert [r[0] for r in rows] == [1, 2]
    assert Image.open(io.BytesIO((out / "provinsi-2026-05.png").read_bytes())).format == "PNG"
    # The same office twice, or two months: one line, exit 2.
    for files, problem in (([summaries[0], summaries[0]], "give each office once"),):
        assert main(["province-report", "--out", str(tmp_path / "x"), *map(str, files)]) == 2
        err = capsys.readouterr().err
        assert problem in err and err.count("\n") == 1
    other = json.loads(summaries[1].read_text())
    other["month"] = "2026-04"
    mixed = tmp_path / "ringkasan-12.71-2026-04.json"
    mixed.write_text(json.dumps(other))
    assert main(["province-report", "--out", str(tmp_path / "y"), str(summaries[0]),
                 str(mixed)]) == 2  # fmt: skip
    assert "different months" in capsys.readouterr().err


def test_an_unknown_region_code_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = always_open_config(tmp_path / "config.toml", "http://127.0.0.1:9/bot", 9)
    config.write_text(
        config.read_text().replace("[office]\n", '[office]\nkode_wilayah = "12.99"\n', 1)
    )
    with pytest.raises(SystemExit) as exited:
        main(["check-config", "--config", str(config)])
    assert exited.value.code == 2
    assert "office.kode_wilayah: '12.99' is not a kab/kota code" in capsys.readouterr().err
    config.write_text(config.read_text().replace('"12.99"', '"92.71"'))
    with pytest.raises(SystemExit) as exited:
        main(["check-config", "--config", str(config)])
    assert exited.value.code == 2
    assert ("office.kode_wilayah: '92.71' was retired by the 2022 Papua split; it is now"
            " '96.71'") in capsys.readouterr().err  # fmt: skip
