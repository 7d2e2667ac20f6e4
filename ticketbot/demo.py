"""`ticketbot demo`: one office day of SOP 09 on this machine, no token, no network.

The real application runs against the Bot API emulator and an SMTP sink on loopback (the
same Simulation the tests use). The transcript shows the group as people see it; the recap
email, its HTML and its XLSX are written to the output directory.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote

from ticketbot.emulator.botapi import ApiCall
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, STAF2, TZ, Person, Simulation
from ticketbot.paths import write_private

ROLE_NAMES = {KASI: "Kasi", ADB: "ADB SIAK", STAF: "Staf Informasi", STAF2: "Staf Informasi"}
TICKET_A = (
    "/tiket\nNIK: 1273014506850001\nKK: 1273010101090003\nNama: Siti Aminah\n"
    "Lembaga: BPJS Kesehatan\nHP: 0812-3456-7890\nKeterangan: NIK tidak terbaca di P-Care"
)
TICKET_B = (
    "/tiket\nNIK: 1273022209910002\nKK: 1273020101100005\nLembaga: bank\n"
    "HP: +62 813 7000 1234\nKeterangan: Pembukaan rekening ditolak, NIK tidak ditemukan"
)
BAD_NIK = TICKET_A.replace("1273014506850001", "1273013206850001").replace("0812-", "0631 ")


@dataclass
class Transcript:
    sim: Simulation
    out: TextIO
    seen: int = 0
    steps: list[str] = field(default_factory=list)

    def line(self, text: str = "") -> None:
        print(text, file=self.out)

    def step(self, number: str, title: str) -> None:
        self.steps.append(number)
        self.line()
        self.line(f"━━ Langkah {number}: {title}")

    def when(self) -> str:
        return self.sim.clock.now.astimezone(TZ).strftime("%H:%M")

    def typed(self, who: Person, text: str) -> None:
        lines = text.splitlines()
        self.line(f"[{self.when()}] 👤 {who.name} ({ROLE_NAMES[who]}) menulis:")
        for ln in lines:
            self.line(f"      {ln}")

    def tapped(self, who: Person, label: str) -> None:
        self.line(f"[{self.when()}] 👆 {who.name} ({ROLE_NAMES[who]}) menekan [{label}]")

    def bot_calls(self) -> None:
        """Everything the bot did since the last look, as the group sees it."""
        calls = self.sim.api.calls[self.seen :]
        self.seen = len(self.sim.api.calls)
        for call in calls:
            if call.status != 200:
                self.line(f"      ⚠️ Telegram menolak {call.method}: {call.description}")
                continue
            self._show(call)

    def _show(self, call: ApiCall) -> None:
        p = call.params
        if call.method == "sendMessage":
            self.line(f"[{self.when()}] 🤖 Bot mengirim:")
            self._message(int(call.result["message_id"]))
        elif call.method == "editMessageText":
            self.line(f"[{self.when()}] 🤖 Bot memperbarui kartu (pesan #{p['message_id']}):")
            self._message(int(p["message_id"]))
        elif call.method == "deleteMessage":
            gone = self.sim.api.message(int(p["chat_id"]), int(p["message_id"]))
            # The bot's own old pings hold no NIK: they go because they are out of date.
            why = (
                "pesan bot yang sudah usang"
                if gone.from_id == self.sim.api.bot_id
                else ("memuat NIK lengkap")
            )
            self.line(f"[{self.when()}] 🤖 Bot menghapus pesan #{p['message_id']} ({why})")
        elif call.method == "answerCallbackQuery" and p.get("text"):
            kind = "pop-up (hanya untuk penekan)" if p.get("show_alert") else "notifikasi"
            text = str(p["text"]).replace("\n", " / ")
            self.line(f"      💬 {kind}: {text}")

    def _message(self, message_id: int) -> None:
        m = self.sim.message(message_id)
        for ln in (m.plain or "").splitlines():
            self.line(f"      │ {ln}")
        for row in (m.reply_markup or {}).get("inline_keyboard", []):
            self.line("      │ " + "  ".join(f"[{b['text']}]" for b in row))


async def play(out_dir: Path, out: TextIO) -> Transcript:
    with tempfile.TemporaryDirectory(prefix="ticketbot-demo-") as tmp:
        start = datetime(2026, 11, 24, 8, 0, tzinfo=TZ)  # a Tuesday
        sim = Simulation(Path(tmp))
        sim.clock.now = start
        async with sim:
            t = Transcript(sim, out)
            t.seen = len(sim.api.calls)
            await run_day(sim, t)
            write_outputs(sim, out_dir, t)
        return t


def at(sim: Simulation, hh: int, mm: int) -> None:
    sim.clock.now = sim.clock.now.replace(hour=hh, minute=mm)


async def say(sim: Simulation, t: Transcript, who: Person, text: str) -> int:
    t.typed(who, text)
    message_id = await sim.say(who, text)
    t.bot_calls()
    return message_id


async def tap(sim: Simulation, t: Transcript, who: Person, message_id: int, label: str) -> None:
    button = sim.api.button_data(GROUP_ID, message_id, label)
    shown = next(
        b["text"]
        for row in (sim.message(message_id).reply_markup or {})["inline_keyboard"]
        for b in row
        if b.get("callback_data") == button
    )
    t.tapped(who, shown)
    await sim.tap(who, message_id, label)
    t.bot_calls()


async def run_day(sim: Simulation, t: Transcript) -> None:
    t.line("ticketbot demo — SOP 09 Disdukcapil Kota Sibolga: sinkronisasi NIK pada DWH")
    t.line("Satu hari kerja (Selasa 24 November 2026) di grup Telegram kantor, dimainkan di")
    t.line("komputer ini: Bot API tiruan dan server email lokal, tanpa token, tanpa internet.")
    t.line("Semua NIK/KK di sini buatan.")
    await sim.run_jobs()
    t.bot_calls()

    t.step("1–2", "pemohon datang; Staf Informasi memverifikasi NIK dan membuka tiket")
    at(sim, 8, 5)
    await say(sim, t, STAF, TICKET_A)
    card_a = sim.last_bot_message().message_id
    at(sim, 8, 7)
    t.line("      (formulir berikut salah: NIK bertanggal 32 dan nomor telepon rumah)")
    await say(sim, t, STAF2, BAD_NIK)
    at(sim, 8, 9)
    t.line("      (pemohon yang sama datang lagi ke loket lain: duplikat)")
    await say(sim, t, STAF2, TICKET_A.replace("BPJS Kesehatan", "bpjs kes"))
    at(sim, 8, 10)
    await say(sim, t, STAF2, TICKET_B)
    card_b = sim.last_bot_message().message_id

    t.step("3", "Kasi memverifikasi NIK dan memerintahkan ADB (atau menolak dengan alasan)")
    at(sim, 8, 12)
    await tap(sim, t, KASI, card_a, "NIK")
    await tap(sim, t, KASI, card_a, "Verifikasi")
    at(sim, 8, 14)
    await tap(sim, t, KASI, card_b, "Tolak")
    await tap(sim, t, KASI, card_b, "1. ")

    t.step("5 (ditolak)", "Staf menginformasikan penolakan ke pemohon lewat WhatsApp")
    at(sim, 8, 18)
    wa_link(sim, t, card_b)
    await tap(sim, t, STAF2, card_b, "Diinformasikan")

    t.step("4", "ADB SIAK menyinkronkan di Konsolidasi; rekap harian terkirim ke admin DWH")
    at(sim, 10, 0)
    await tap(sim, t, ADB, card_a, "Konsolidasi")
    await say(sim, t, STAF, "/rekap")
    at(sim, 15, 0)
    t.line(f"[{t.when()}] ⏰ Jadwal rekap harian (recap.time = 15:00)")
    await sim.run_jobs()
    t.bot_calls()
    received = sim.smtp.received[0]
    t.line(f"      📧 Email diterima server SMTP: {received.message['Subject']}")
    t.line(f"         kepada {', '.join(received.recipients)}, lampiran XLSX")
    summary = sim.last_bot_message().message_id
    at(sim, 15, 40)
    t.line("      (admin DWH pusat membalas email: data sudah sinkron di DWH)")
    await tap(sim, t, ADB, summary, "DWH")

    t.step("5", "Staf menginformasikan pemohon bahwa data sudah sinkron di DWH; tiket selesai")
    at(sim, 15, 43)
    wa_link(sim, t, card_a)
    await tap(sim, t, STAF, card_a, "Diinformasikan")
    at(sim, 15, 45)
    await say(sim, t, KASI, "/status #1")
    await say(sim, t, KASI, "/antrian")


def wa_link(sim: Simulation, t: Transcript, card: int) -> None:
    markup = sim.message(card).reply_markup or {}
    url = next(b["url"] for row in markup["inline_keyboard"] for b in row if "url" in b)
    t.line(f"[{t.when()}] 👆 Staf membuka tombol WhatsApp: {unquote(url)}")


def write_outputs(sim: Simulation, out_dir: Path, t: Transcript) -> None:
    out_dir.mkdir(mode=0o700, exist_ok=True)
    message = sim.smtp.received[0].message
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    attachment = next(message.iter_attachments())
    # The demo's own files, written again on each run; never through a planted link.
    for name, data in (("rekap.eml", bytes(message)),
                       ("rekap.html", html.get_content().encode("utf-8")),
                       (str(attachment.get_filename()), attachment.get_content())):  # fmt: skip
        write_private(out_dir / name, data, replace=True)
    t.line()
    t.line(f"Email rekap, HTML dan XLSX ditulis ke {out_dir}/:")
    for path in sorted(out_dir.iterdir()):
        t.line(f"  {path.name} ({path.stat().st_size} byte)")


def run_demo(out_dir: Path, out: TextIO) -> list[str]:
    """Play the day; return the SOP steps the transcript covered."""
    return asyncio.run(play(out_dir, out)).steps
