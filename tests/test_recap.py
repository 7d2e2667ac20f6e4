"""The daily recap email (issue C): scheduled, exactly once, survives outages."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.conftest import VALID_FORM, form
from ticketbot import recap
from ticketbot.domain.lifecycle import State
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, TZ, Simulation
from ticketbot.xlsx import RecapRow

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


async def synced(sim: Simulation, text: str = VALID_FORM) -> int:
    """A ticket verified and synced at Konsolidasi; returns its card's message id."""
    await sim.say(STAF, text)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    await sim.tap(ADB, card, "Konsolidasi")
    return card


async def states(sim: Simulation) -> list[State]:
    return [t.state for t in await sim.office.repo.tickets.open_tickets()]


def parts(message: EmailMessage) -> tuple[str, str, bytes]:
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    attachment = next(message.iter_attachments())
    assert attachment.get_content_type() == XLSX
    return plain.get_content(), html.get_content(), attachment.get_content()


async def test_scheduled_recap_at_the_configured_time_on_a_working_day(sim: Simulation) -> None:
    await sim.run_jobs()  # Tuesday 09:00: Monday's recap had nothing to send
    card = await synced(sim)
    sim.clock.now = at(2026, 11, 24, 14, 59)
    await sim.run_jobs()
    assert sim.smtp.received == []
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    assert len(sim.smtp.received) == 1
    assert await states(sim) == [State.SENT_TO_DWH]
    assert "Menunggu admin DWH pusat" in (sim.message(card).plain or "")
    summary = sim.last_bot_message()
    assert "Rekap 24 Nov 2026" in (summary.plain or "") and "#1 127301******0001" in (
        summary.plain or ""
    )
    assert summary.reply_markup is not None
    assert "DWH" in summary.reply_markup["inline_keyboard"][0][0]["text"]
    await sim.run_jobs()  # the same day again: nothing more
    assert len(sim.smtp.received) == 1
    # The text part, line by line: each field on its own line, as a mail client shows it.
    plain, _, _ = parts(sim.smtp.received[0].message)
    ticket_line = plain.splitlines().index("1. Tiket #1")
    assert plain.splitlines()[ticket_line + 1 : ticket_line + 4] == [
        "   NIK       : 1273014506850001",  # the DWH admin needs the whole number
        "   No. KK    : 1273010101090003",
        "   Lembaga   : BPJS Kesehatan",
    ]


async def test_jobs_are_registered_with_grace_and_coalescing(sim: Simulation) -> None:
    assert sim.app is not None and sim.app.job_queue is not None
    daily = sim.app.job_queue.get_jobs_by_name("recap-daily")[0].job
    assert daily.misfire_grace_time == 3600 and daily.coalesce is True
    fields = {f.name: str(f) for f in daily.trigger.fields}
    assert (fields["hour"], fields["minute"], fields["day_of_week"]) == (
        "15",
        "0",
        "mon,tue,wed,thu,fri",
    )
    assert str(daily.trigger.timezone) == "Asia/Jakarta"


@pytest.mark.parametrize("sim", [{}], indirect=True)
async def test_no_recap_on_cuti_bersama_holiday_or_weekend(sim: Simulation) -> None:
    sim.clock.now = at(2026, 12, 23, 16, 0)
    await sim.run_jobs()  # Wednesday's recap: nothing pending yet
    await synced(sim)
    for day in (24, 25, 26, 27):  # cuti bersama, Natal, Saturday, Sunday
        sim.clock.now = at(2026, 12, day, 15, 5)
        await sim.run_jobs()
        assert sim.smtp.received == [], day
    sim.clock.now = at(2026, 12, 28, 15, 0)
    await sim.run_jobs()
    assert len(sim.smtp.received) == 1
    assert "28 Des 2026" in str(sim.smtp.received[0].message["Subject"])


@pytest.mark.parametrize("sim", [{"recap__cc": ["kadis@example.go.id"]}], indirect=True)
async def test_email_content(sim: Simulation) -> None:
    await synced(sim, form(keterangan="<script>alert('x')</script> & co"))
    await synced(sim, form(nik="1273016902000002", kk="1273010101090004", lembaga="Bank Sumut"))
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    [received] = sim.smtp.received
    message = received.message
    assert sorted(received.recipients) == ["admin-dwh@example.go.id", "kadis@example.go.id"]
    assert received.sender == "disdukcapil@example.go.id"
    assert message["Subject"] == (
        "Rekap sinkronisasi NIK DWH - Dinas Kependudukan dan Pencatatan Sipil Kota Sibolga"
        " - 24 Nov 2026 - 2 tiket [SINKRON 12.73 B1]"
    )
    assert message["Message-ID"] == "<rekap-1-2026-11-24@example.go.id>"
    plain, html, xlsx = parts(message)
    assert "NIK       : 1273014506850001" in plain and "<script>alert('x')</script> & co" in plain
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in html
        and "<script>" not in html
    )
    assert "1273016902000002" in html
    sheet = load_workbook(io.BytesIO(xlsx)).active
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        (1, "1273014506850001", "1273010101090003", "BPJS Kesehatan"),
        (2, "1273016902000002", "1273010101090004", "Bank Sumut"),
    ]
    for line in sheet.iter_rows(min_row=2):
        assert line[1].data_type == "s" and line[2].data_type == "s"
        assert line[1].number_format == "@"
    assert rows[0][7] == "Sari Staf" and rows[0][9] == "Rina Kasi" and rows[0][11] == "Budi ADB"


async def test_smtp_down_then_up_sends_exactly_once(sim: Simulation) -> None:
    await sim.run_jobs()
    await synced(sim)
    await sim.smtp.stop()
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    [batch] = await sim.office.repo.batches.batches("pending")
    assert batch.attempts == 1 and batch.next_attempt_at > sim.clock.now
    first_retry = batch.next_attempt_at
    sim.clock.now = first_retry
    await sim.run_jobs()
    [batch] = await sim.office.repo.batches.batches("pending")
    assert batch.attempts == 2
    assert batch.next_attempt_at - first_retry > (
        first_retry - at(2026, 11, 24, 15, 0)
    )  # back-off
    assert await states(sim) == [State.SYNCED]
    sim.clock.now = at(2026, 11, 24, 16, 1)  # over an hour late: the group is told, once
    await sim.run_jobs()
    late = [m for m in sim.api.visible(GROUP_ID) if "terlambat" in (m.plain or "")]
    assert len(late) == 1 and "belum diterima server email" in (late[0].plain or "")
    await sim.run_jobs()
    assert len([m for m in sim.api.visible(GROUP_ID) if "terlambat" in (m.plain or "")]) == 1
    await sim.smtp.start()
    sim.clock.now = at(2026, 11, 24, 18, 0)
    await sim.run_jobs()
    await sim.run_jobs()
    assert len(sim.smtp.received) == 1
    assert sim.smtp.received[0].message["Message-ID"] == batch.message_id
    assert await states(sim) == [State.SENT_TO_DWH]


async def test_451_then_250(sim: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    built, build = [], recap.recap_workbook

    def counted(rows: Sequence[RecapRow], title: str) -> bytes:
        built.append(len(rows))
        return build(rows, title)

    monkeypatch.setattr(recap, "recap_workbook", counted)
    await sim.run_jobs()
    await synced(sim)
    sim.smtp.refusals.append("451 4.3.0 Mailbox busy, try later")
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    [batch] = await sim.office.repo.batches.batches("pending")
    assert batch.last_error == "451 4.3.0 Mailbox busy, try later"
    sim.clock.now = batch.next_attempt_at
    await sim.run_jobs()
    assert len(sim.smtp.received) == 1 and await states(sim) == [State.SENT_TO_DWH]
    assert built == [1]  # built once, in a worker thread; the retry sent the same message


async def test_550_fails_for_good_and_rekap_kirim_retries(sim: Simulation) -> None:
    await sim.run_jobs()
    await synced(sim)
    sim.smtp.refusals.append("550 5.1.1 No such user")
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    assert "gagal dikirim" in (sim.last_bot_message().plain or "")
    assert "550 5.1.1 No such user" in (sim.last_bot_message().plain or "")
    sim.clock.now = at(2026, 11, 25, 9, 0)
    await sim.run_jobs()
    assert sim.smtp.received == []  # no retry loop on a permanent refusal
    await sim.say(STAF, "/rekap kirim")
    assert "Hanya Kasi atau ADB" in (sim.last_bot_message().plain or "")
    await sim.say(ADB, "/rekap kirim")
    assert len(sim.smtp.received) == 1 and await states(sim) == [State.SENT_TO_DWH]


async def test_restart_between_freezing_and_sending(sim: Simulation) -> None:
    await sim.run_jobs()
    await synced(sim)
    await sim.smtp.stop()
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()  # frozen, not delivered
    await sim.stop_bot()
    await sim.smtp.start()
    await sim.start_bot()
    sim.clock.now = at(2026, 11, 24, 15, 10)
    await sim.run_jobs()
    await sim.run_jobs()
    assert len(sim.smtp.received) == 1
    assert len(await sim.office.repo.batches.batches()) == 1
    assert await states(sim) == [State.SENT_TO_DWH]


async def test_rekap_kirim_twice_at_once(sim: Simulation) -> None:
    await synced(sim)
    (u1, _), (u2, _) = await asyncio.gather(
        sim.api.post(KASI.user_id, GROUP_ID, "/rekap kirim"),
        sim.api.post(ADB.user_id, GROUP_ID, "/rekap kirim"),
    )
    assert sim.app is not None
    assert sim.inbox is not None
    runner = sim.inbox.runner
    await asyncio.gather(runner.wait_handled(u1), runner.wait_handled(u2))
    await sim.services.outbox.drained()  # replies go out through the outbox
    assert len(sim.smtp.received) == 1
    replies = [m.plain or "" for m in sim.api.visible(GROUP_ID) if m.reply_to]
    # One sent it: its answer is the batch's summary (one group message, not two); the
    # other is told there was nothing left.
    assert replies == ["ℹ️ Tidak ada tiket yang perlu direkap; tidak ada email yang dikirim."]
    summaries = [m for m in sim.api.visible(GROUP_ID) if (m.plain or "").startswith("📧 Rekap")]
    assert len(summaries) == 1 and "1 tiket" in (summaries[0].plain or "")


async def test_missed_day_is_caught_up_at_start_up(sim: Simulation) -> None:
    await sim.run_jobs()
    await synced(sim)
    await sim.stop_bot()
    sim.clock.now = at(2026, 11, 25, 8, 0)  # the bot was down at Tuesday 15:00
    await sim.start_bot()
    await sim.run_jobs()
    [received] = sim.smtp.received
    assert "24 Nov 2026" in str(received.message["Subject"])
    sim.clock.now = at(2026, 11, 25, 15, 0)
    await sim.run_jobs()
    assert len(sim.smtp.received) == 1  # Wednesday: nothing new


async def test_tickets_synced_after_freezing_go_to_the_next_batch(sim: Simulation) -> None:
    await sim.run_jobs()
    await synced(sim)
    await sim.smtp.stop()
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    await synced(sim, form(lembaga="Bank"))
    await sim.smtp.start()
    sim.clock.now = at(2026, 11, 24, 15, 30)
    await sim.run_jobs()
    assert len(sim.smtp.received) == 1
    first = parts(sim.smtp.received[0].message)[0]
    assert "Tiket #1" in first and "Tiket #2" not in first
    sim.clock.now = at(2026, 11, 25, 15, 0)
    await sim.run_jobs()
    assert len(sim.smtp.received) == 2
    second = parts(sim.smtp.received[1].message)[0]
    assert "Tiket #2" in second and "Tiket #1" not in second


async def test_batch_dwh_button_confirms_every_ticket(sim: Simulation) -> None:
    await sim.run_jobs()
    cards = [await synced(sim), await synced(sim, form(lembaga="Bank"))]
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    summary = sim.last_bot_message().message_id
    q = await sim.tap(KASI, summary, "DWH")
    assert sim.answer_to(q)["text"] == "Tombol ini hanya untuk ADB SIAK."
    assert await states(sim) == [State.SENT_TO_DWH, State.SENT_TO_DWH]
    q = await sim.tap(ADB, summary, "DWH")
    assert sim.answer_to(q)["text"] == "2 tiket dikonfirmasi sinkron di DWH."
    assert await states(sim) == [State.READY_TO_INFORM, State.READY_TO_INFORM]
    for card in cards:
        assert "Sinkron di DWH — informasikan ke pemohon" in (sim.message(card).plain or "")
    assert sim.message(summary).reply_markup is None
    assert "sudah dikonfirmasi" in (sim.message(summary).plain or "")


async def test_rekap_preview_and_nothing_to_send(sim: Simulation) -> None:
    await sim.say(STAF, "/rekap")
    assert "Belum ada tiket baru" in (sim.last_bot_message().plain or "")
    await sim.say(KASI, "/rekap kirim")
    assert "Tidak ada tiket yang perlu direkap" in (sim.last_bot_message().plain or "")
    assert sim.smtp.received == []
    await synced(sim)
    await sim.say(STAF, "/rekap")
    preview = sim.last_bot_message().plain or ""
    assert "Belum direkap: 1 tiket" in preview and "#1 127301******0001" in preview
    assert "Sel 24 Nov 15:00" in preview


@pytest.mark.parametrize("sim", [{"recap__send_empty": True}], indirect=True)
async def test_send_empty(sim: Simulation) -> None:
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    assert len(sim.smtp.received) == 1
    assert "0 tiket" in str(sim.smtp.received[0].message["Subject"])


async def test_dry_run_prints_the_pending_recap_and_changes_nothing(
    sim: Simulation, tmp_path: Path
) -> None:
    await synced(sim)
    await sim.stop_bot()
    assert sim.config is not None
    config = tmp_path / "config.toml"
    config.write_text(
        f'[office]\nname = "Disdukcapil Kota Sibolga"\n'
        f"[telegram]\ngroup_id = {GROUP_ID}\n"
        f"[roles]\nkasi = [1]\nadb = [2]\nstaf = [3]\n"
        f'[database]\npath = "{sim.config.database_path}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nfrom = "x@example.go.id"\n'
        f'[recap]\nto = ["admin-dwh@example.go.id"]\n'
    )
    before = sim.config.database_path.read_bytes()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticketbot",
        "recap",
        "--config",
        str(config),
        "--dry-run",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "TICKETBOT_TELEGRAM_TOKEN": "123456:TEST-cli-not-a-real-token-000",
        },
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr
    out = stdout.decode()
    assert "NIK       : 1273014506850001" in out and "Subject: Rekap sinkronisasi NIK DWH" in out
    assert sim.config.database_path.read_bytes() == before
    await sim.start_bot()


@pytest.mark.parametrize("sim", [{"telegram__group_messages_per_minute": 600}], indirect=True)
async def test_a_large_batch_survives_telegram_rate_limits(sim: Simulation) -> None:
    await sim.run_jobs()
    cards = []
    for i in range(5):  # the most whose cards follow the batch (more: its summary carries it)
        cards.append(await synced(sim, form(lembaga=f"Bank {i}")))
    # Telegram now throttles the group hard, and answers one edit with a 429.
    sim.api.group_limit = (3, 1.0)
    sim.api.fail_next("editMessageText", 429, retry_after=1)
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    assert len(sim.smtp.received) == 1
    for card in cards:
        assert "Menunggu admin DWH pusat" in (sim.message(card).plain or "")
    throttled = [c for c in sim.api.calls if c.status == 429]
    assert throttled  # the limit was hit, and nothing was lost to it
    for call in throttled:
        sim.api.calls.remove(call)


@pytest.mark.parametrize("sim", [{"smtp__security": "starttls"}], indirect=True)
async def test_starttls_is_required_not_opportunistic(sim: Simulation) -> None:
    """A server that does not offer STARTTLS gets nothing in plain text."""
    await sim.run_jobs()
    await synced(sim)
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    assert sim.smtp.received == []
    [batch] = await sim.office.repo.batches.batches("pending")
    assert "STARTTLS" in (batch.last_error or "")
    assert await states(sim) == [State.SYNCED]


async def test_the_recap_names_the_resident(sim: Simulation) -> None:
    await sim.run_jobs()
    await synced(sim, f"{VALID_FORM}\nNama: Ani Lubis")
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    plain, html, _ = parts(sim.smtp.received[0].message)
    lines = plain.splitlines()
    assert lines[lines.index("1. Tiket #1") + 1] == "   Nama      : Ani Lubis"
    assert '<td style="word-break: break-word;">Ani Lubis</td>' in html


async def test_a_large_recap_renders_in_a_worker_process_exactly_as_in_a_thread(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    await synced(sim)
    await synced(sim, form(nik="1273016902000002", kk="1273010101090004", lembaga="Bank Sumut"))
    tickets = await sim.services.repo.batches.unbatched_synced()
    due = sim.clock().date()
    in_thread = await sim.desk.render(due, tickets, 7)
    assert sim.desk._pool is None  # small: a thread
    monkeypatch.setattr(recap, "PROCESS_FROM", 2)
    in_process = await sim.desk.render(due, tickets, 7)
    assert sim.desk._pool is not None  # large: the worker process
    assert (in_process.subject, in_process.text, in_process.html, in_process.filename) == (
        in_thread.subject, in_thread.text, in_thread.html, in_thread.filename)  # fmt: skip
    assert "[SINKRON 12.73 B7]" in in_process.subject
    cells = [
        [[c.value for c in row] for row in load_workbook(io.BytesIO(x)).active.iter_rows()]  # type: ignore[union-attr]
        for x in (in_thread.xlsx, in_process.xlsx)
    ]
    assert cells[0] == cells[1] and len(cells[0]) == 3
