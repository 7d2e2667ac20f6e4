"""The monthly report (SPEC §4b): figures from a month of activity checked against an
independent computation, the chart and the spreadsheet, /laporan in the group, and the
monthly email exactly once across a restart."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from PIL import Image

from tests.activity import SETTINGS, TZ, expected_figures, month_of_activity
from ticketbot.domain.report import Month, percentile
from ticketbot.emulator.simulation import GROUP_ID, KASI, Simulation
from ticketbot.report import chart_figure

FULL_NUMBER = re.compile(r"(?<!\d)\d{16}(?!\d)")
MAY = Month(2026, 5)


# The shared `sim` fixture (conftest) with the test's office hours: it also checks that
# Telegram refused nothing and every tap was answered.
office_hours = pytest.mark.parametrize("sim", [SETTINGS], indirect=True)


@office_hours
async def test_figures_match_an_independent_computation(sim: Simulation) -> None:
    office = await month_of_activity(sim.services.repo)
    files = await sim.services.reports.build(MAY)
    report = files.figures
    start, end = datetime(2026, 5, 1, tzinfo=TZ), datetime(2026, 6, 1, tzinfo=TZ)
    expected = expected_figures(office, start, end)
    assert report.complete
    assert (report.start, report.end) == (start, end)
    got = {s.sop_step: (s.handled, s.median_minutes, s.p90_minutes, s.within)
           for s in report.steps}  # fmt: skip
    assert got.keys() == expected.steps.keys()
    for step, (handled, median, p90, within) in expected.steps.items():
        assert got[step][0] == handled > 0, step
        assert got[step][1] == pytest.approx(median), step
        assert got[step][2] == pytest.approx(p90), step
        assert got[step][3] == within, step
        assert 0 < within < handled, f"step {step} should have both kinds: {within}/{handled}"
    assert report.opened == expected.opened
    assert report.closed == expected.closed
    assert Counter(dict(report.lembaga)) == expected.lembaga
    assert Counter({(a, r): n for a, r, n in report.reasons}) == expected.reasons
    assert {a for a, _ in expected.reasons} == {"reject", "return_to_kasi", "cancel", "resync"} - {
        "cancel"  # the opener's cancel of a new ticket needs no reason
    }
    assert {t.ticket_id: (t.state, t.age_days, t.overdue) for t in report.open_at_end} == (
        expected.open_at_end
    )
    assert any(o for _, _, o in expected.open_at_end.values())
    assert sum(w.opened for w in report.weeks) == report.opened
    assert sum(w.closed for w in report.weeks) == report.closed
    assert [w.monday.weekday() for w in report.weeks] == [0] * len(report.weeks)


def test_percentile_is_numpys_linear_rule() -> None:
    import numpy as np

    for values in ([5.0], [1.0, 2.0], [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]):
        for p in (0, 50, 90, 100):
            assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))


@office_hours
async def test_chart_and_spreadsheet(sim: Simulation) -> None:
    office = await month_of_activity(sim.services.repo)
    files = await sim.services.reports.build(MAY)
    image = Image.open(io.BytesIO(files.png))
    image.verify()
    assert Image.open(io.BytesIO(files.png)).format == "PNG"
    width, height = image.size
    # A phone shows it whole: about a screen's width, taller than wide, legible when fit.
    assert 720 <= width <= 1440
    assert 1.0 <= height / width <= 2.2
    assert len(files.png) < 10 * 1024 * 1024  # Telegram's limit for a photo

    wb = openpyxl.load_workbook(io.BytesIO(files.xlsx))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert not [c.value for c in cells if FULL_NUMBER.search(str(c.value))]
    assert not [c.value for c in cells if c.data_type == "f"]
    summary = wb["Ringkasan"]
    rows = list(summary.iter_rows(min_row=2, values_only=True))
    assert rows[0][2] == files.figures.opened
    for row, step in zip(rows[1:], files.figures.steps, strict=True):
        assert row[2:6] == (
            step.handled, round(step.median_minutes, 1), round(step.p90_minutes, 1), step.within
        )  # fmt: skip
    # Re-syncs per ticket sent, beside the figures (SPEC §4b), counted from the plan.
    resyncs, sent = files.figures.resyncs
    start, end = datetime(2026, 5, 1, tzinfo=TZ), datetime(2026, 6, 1, tzinfo=TZ)
    assert resyncs == sum(1 for a, _, when in office.plan.reasons
                          if a == "resync" and start <= when < end) > 0  # fmt: skip
    assert sent == sum(1 for _, when, state in office.plan.history
                       if state == "sent_to_dwh" and start <= when < end)  # fmt: skip
    assert list(wb["Sinkron ulang"].iter_rows(min_row=2, values_only=True)) == [
        (sent, resyncs, round(100 * resyncs / sent, 1))
    ]
    assert f"Sinkron ulang (DWH belum terbaca): {resyncs} dari {sent} tiket" in files.text
    # Counted by channel (SPEC §3 Sumber): every ticket of this month came to the desk.
    assert files.figures.channels == (("loket", files.figures.opened),)
    assert list(wb["Sumber"].iter_rows(min_row=2, values_only=True)) == [
        ("loket", files.figures.opened)
    ]
    tickets = list(wb["Tiket"].iter_rows(min_row=2, values_only=True))
    assert {r[0] for r in tickets} == {t.ticket_id for t in files.figures.tickets}
    assert all(re.fullmatch(r"\d{6}\*{6}\d{4}", r[1]) for r in tickets)
    assert not FULL_NUMBER.search(files.caption + files.text + files.html)


@office_hours
async def test_laporan_sends_one_photo_and_one_document(sim: Simulation) -> None:
    await month_of_activity(sim.services.repo)
    before = len(sim.api.calls)
    message_id = await sim.say(KASI, "/laporan 2026-05")
    calls = [c for c in sim.api.calls[before:] if c.method not in ("getUpdates",)]
    photos = [c for c in calls if c.method == "sendPhoto"]
    documents = [c for c in calls if c.method == "sendDocument"]
    assert len(photos) == len(documents) == 1
    assert all(c.status == 200 for c in photos + documents)
    photo = sim.api.messages[(GROUP_ID, photos[0].result["message_id"])]
    document = sim.api.messages[(GROUP_ID, documents[0].result["message_id"])]
    assert photo.reply_to == document.reply_to == message_id
    assert photo.upload is not None and photo.upload.data.startswith(b"\x89PNG")
    assert document.upload is not None
    assert document.upload.filename == "laporan-2026-05.xlsx"
    assert document.upload.data.startswith(b"PK")
    assert photo.plain is not None and photo.plain.startswith("📊 Laporan Mei 2026")
    assert "tepat waktu" in photo.plain
    assert not FULL_NUMBER.search(photo.plain)
    assert not [c for c in calls if c.method == "sendMessage"]


@office_hours
@pytest.mark.parametrize(
    ("argument", "words"),
    [("2026-13", "Bulan tidak dikenali"), ("Mei", "Bulan tidak dikenali"),
     ("2027-01", "Bulan itu belum dimulai")],
)  # fmt: skip
async def test_laporan_refuses_a_bad_month_in_indonesian(
    sim: Simulation, argument: str, words: str
) -> None:
    await sim.say(KASI, f"/laporan {argument}")
    await sim.services.outbox.drained()
    assert not sim.api.calls_of("sendPhoto", "sendDocument")
    assert words in (sim.last_bot_message().plain or "")


@office_hours
async def test_laporan_alone_is_the_running_month(sim: Simulation) -> None:
    # The simulated clock stands on 24 Nov 2026: November so far.
    await sim.say(KASI, "/laporan")
    photo = sim.api.calls_of("sendPhoto")[-1]
    assert str(photo.params["caption"]).startswith("📊 <b>Laporan November 2026</b> (s.d. ")


async def test_monthly_email_goes_exactly_once_across_a_restart(tmp_path: Path) -> None:
    settings = {**SETTINGS, "report__to": ["kadis@example.go.id"]}
    async with Simulation(tmp_path, settings=settings) as sim:
        await month_of_activity(sim.services.repo)
        # 1 June 2026 is Pancasila Day: the first working day of June is the 2nd.
        sim.clock.now = datetime(2026, 6, 1, 10, 0, tzinfo=TZ)
        await sim.run_jobs()
        assert not sim.smtp.received
        sim.clock.now = datetime(2026, 6, 2, 7, 59, tzinfo=TZ)
        await sim.run_jobs()
        assert not sim.smtp.received
        # Office opens: the first attempt is deferred by the server, then the bot restarts.
        sim.clock.now = datetime(2026, 6, 2, 8, 0, tzinfo=TZ)
        sim.smtp.refusals.append("451 4.3.0 try again later")
        await sim.run_jobs()
        assert not sim.smtp.received
        run = await sim.services.repo.reports.report_run("2026-05")
        assert run is not None and (run.status, run.attempts) == ("pending", 1)
        await sim.stop_bot()
        await sim.start_bot()
        sim.clock.now = datetime(2026, 6, 2, 9, 0, tzinfo=TZ)
        await sim.run_jobs()
        await sim.stop_bot()
        await sim.start_bot()
        sim.clock.now = datetime(2026, 6, 3, 9, 0, tzinfo=TZ)
        await sim.run_jobs()
        assert len(sim.smtp.received) == 1
        got = sim.smtp.received[0]
        assert got.recipients == ["kadis@example.go.id"]
        assert got.message["Message-ID"] == run.message_id
        assert got.message["Subject"].startswith("Laporan bulanan sinkronisasi NIK DWH")
        assert "Mei 2026" in got.message["Subject"]
        names = [p.get_filename() for p in got.message.iter_attachments()]
        assert names == ["laporan-2026-05.png", "laporan-2026-05.xlsx"]
        body = got.message.get_body(("plain",))
        assert body is not None
        assert "Verifikasi Kasi" in body.get_content()
        sent = await sim.services.repo.reports.report_run("2026-05")
        assert sent is not None and sent.status == "sent"
        # July's first working day: June's report, May's never again.
        sim.clock.now = datetime(2026, 7, 1, 9, 0, tzinfo=TZ)
        await sim.run_jobs()
        assert [r.message["Subject"].endswith("Juni 2026") for r in sim.smtp.received] == [
            False, True,
        ]  # fmt: skip


async def test_a_refused_monthly_email_is_told_once(tmp_path: Path) -> None:
    settings = {**SETTINGS, "report__to": ["kadis@example.go.id"]}
    async with Simulation(tmp_path, settings=settings) as sim:
        await month_of_activity(sim.services.repo)
        sim.clock.now = datetime(2026, 6, 2, 9, 0, tzinfo=TZ)
        sim.smtp.refusals.append("550 5.1.1 mailbox unavailable")
        await sim.run_jobs()
        sim.clock.now = datetime(2026, 6, 3, 9, 0, tzinfo=TZ)
        await sim.run_jobs()
        told = [c for c in sim.api.calls_of("sendMessage")
                if "Laporan bulanan Mei 2026 gagal dikirim" in str(c.params["text"])]  # fmt: skip
        assert len(told) == 1
        assert "ditolak server email" in str(told[0].params["text"])
        assert not sim.smtp.received
        # The operator fixes the address and restarts: it goes, once.
        await sim.stop_bot()
        await sim.start_bot()
        await sim.run_jobs()
        assert len(sim.smtp.received) == 1


@office_hours
async def test_laporan_refused_by_telegram_says_so_in_indonesian(sim: Simulation) -> None:
    sim.api.fail_next("sendPhoto", 400, "Bad Request: IMAGE_PROCESS_FAILED")
    await sim.say(KASI, "/laporan 2026-05")
    await sim.services.outbox.drained()
    assert not sim.api.calls_of("sendPhoto", "sendDocument")
    assert (sim.last_bot_message().plain or "").startswith(
        "⚠️ Laporan Mei 2026 belum dapat dikirim ke grup."
    )
    sim.api.calls[:] = [c for c in sim.api.calls if not c.injected]


# -- what a reader of the chart, the XLSX and the letter saw wrong (issue O, item 13) --------


@office_hours
async def test_weeks_are_named_alike_in_the_chart_and_the_spreadsheet(sim: Simulation) -> None:
    await month_of_activity(sim.services.repo)
    files = await sim.services.reports.build(MAY)
    weeks = files.figures.weeks
    # May 2026 begins on a Friday: its first week is named by 1 May, not Monday 27 April.
    assert weeks[0].monday.isoformat() == "2026-04-27" and weeks[0].first.isoformat() == (
        "2026-05-01"
    )
    sheet = openpyxl.load_workbook(io.BytesIO(files.xlsx))["Per minggu"]
    named = [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert named == [w.first.isoformat() for w in weeks]
    fig = chart_figure(files.figures, sim.services.texts, "Kantor", sim.services.config.sla)
    ticks = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert ticks == [f"{w.first.day}/{w.first.month}" for w in weeks]


async def test_a_running_month_draws_no_weeks_still_to_come(sim: Simulation) -> None:
    # Tuesday 24 November 2026: the weeks of 26 Oct (1 Nov), 2, 9, 16 and 23 Nov; not 30 Nov.
    files = await sim.services.reports.build(Month(2026, 11))
    assert [w.first.day for w in files.figures.weeks] == [1, 2, 9, 16, 23]


@office_hours
async def test_bar_labels_of_three_digits_do_not_run_into_each_other(sim: Simulation) -> None:
    await month_of_activity(sim.services.repo)
    files = await sim.services.reports.build(MAY)
    # A big city's month: six weeks (as August 2026 has) of over a thousand tickets each.
    first = files.figures.weeks[0]
    busy = replace(files.figures, weeks=tuple(
        replace(first, opened=1350 + i, closed=1349 - i) for i in range(6)
    ))  # fmt: skip
    fig = chart_figure(busy, sim.services.texts, "Kantor", sim.services.config.sla)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    fig.draw(renderer)
    boxes = [t.get_window_extent(renderer) for t in fig.axes[1].texts if t.get_text()]
    assert len(boxes) == 2 * len(busy.weeks)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)


@office_hours
async def test_the_letter_is_signed_by_the_office(sim: Simulation) -> None:
    await month_of_activity(sim.services.repo)
    files = await sim.services.reports.build(MAY)
    assert "ticketbot" not in files.text and "ticketbot" not in files.html
    assert files.text.rstrip().endswith(sim.services.config.office.name)


def test_a_wrapped_cell_gets_a_row_tall_enough() -> None:
    from ticketbot.xlsx import Column, add_table, new_workbook, workbook_bytes

    wb = new_workbook()
    add_table(wb, "Alasan", (Column("No", 5, "number"), Column("Alasan", 20, wrap=True)),
              [(1, "pendek"), (2, "alasan yang panjang sekali " * 3)])  # fmt: skip
    sheet = openpyxl.load_workbook(io.BytesIO(workbook_bytes(wb)))["Alasan"]
    assert sheet.row_dimensions[2].height is None  # one line: the default height
    assert sheet.row_dimensions[3].height == 15 * 5  # 81 characters in 19 a line


async def test_the_province_gets_the_json_summary_only_once(tmp_path: Path) -> None:
    settings = {**SETTINGS, "report__to": ["kadis@example.go.id"],
                "report__province_to": ["dukcapil@sumutprov.example.go.id"],
                "office__kode_wilayah": "12.73"}  # fmt: skip
    async with Simulation(tmp_path, settings=settings) as sim:
        await month_of_activity(sim.services.repo)
        sim.clock.now = datetime(2026, 6, 2, 9, 0, tzinfo=TZ)
        await sim.run_jobs()
        await sim.run_jobs()
        by_to = {tuple(r.recipients): r.message for r in sim.smtp.received}
        assert len(sim.smtp.received) == 2
        province = by_to[("dukcapil@sumutprov.example.go.id",)]
        [attachment] = list(province.iter_attachments())
        assert attachment.get_filename() == "ringkasan-12.73-2026-05.json"
        summary = json.loads(attachment.get_content())
        assert summary["kode_wilayah"] == "12.73" and summary["month"] == "2026-05"
        assert not FULL_NUMBER.search(province.as_string())
        assert [p.get_filename() for p in by_to[("kadis@example.go.id",)].iter_attachments()] == [
            "laporan-2026-05.png", "laporan-2026-05.xlsx",
        ]  # fmt: skip
