"""`ticketbot demo`: one office day of SOP 09 on this machine, no token, no network.

The real application runs against the Bot API emulator, an SMTP sink and an IMAP server
on loopback (the same Simulation and servers the tests use). The transcript shows the group
as people see it; the recap email, its HTML and its XLSX are written to the output
directory.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import TextIO
from urllib.parse import unquote

from ticketbot.emulator.botapi import ApiCall
from ticketbot.emulator.imap import ImapServer
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
TICKET_C = (
    "/tiket\nNIK: 1273035512880003\nKK: 1273030101120007\nLembaga: BPJS Kesehatan\n"
    "HP: 0813-6111-2222\nKeterangan: Kartu BPJS tidak aktif, NIK tidak terbaca"
)
ADMIN = "admin-dwh@example.go.id"
OFFICE_MAIL = "disdukcapil@example.go.id"


def _mail(subject: str, body: str, refs: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Admin DWH Pusat <{ADMIN}>"
    message["To"] = OFFICE_MAIL
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="dwh.example.go.id")
    message["In-Reply-To"] = refs
    message["References"] = refs
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()


def _bounce(recap_id: str) -> bytes:
    """What a Postfix server sends back when the admin's mailbox is full (RFC 3464)."""
    text = f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.go.id>
To: {OFFICE_MAIL}
Subject: Undelivered Mail Returned to Sender
Message-ID: {make_msgid(domain="mx.example.go.id")}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"

--dsn
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered: mailbox full.

--dsn
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.go.id

Final-Recipient: rfc822; {ADMIN}
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 mailbox full

--dsn
Content-Type: text/rfc822-headers

Message-ID: {recap_id}
Subject: Rekap sinkronisasi NIK DWH

--dsn--
"""
    return text.replace("\n", "\r\n").encode()


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
            # The bot's own old cards and pings hold no NIK: they go because they are out of
            # date (a card re-posted at a hand-off).
            why = "memuat NIK lengkap"
            if gone.from_id == self.sim.api.bot_id:
                card = (gone.plain or "").startswith("📋 Tiket #")
                why = "kartu lama, sudah dikirim ulang" if card else "pesan bot yang sudah usang"
            self.line(f"[{self.when()}] 🤖 Bot menghapus pesan #{p['message_id']} ({why})")
        elif call.method == "answerCallbackQuery" and p.get("text"):
            kind = "pop-up (hanya untuk penekan)" if p.get("show_alert") else "notifikasi"
            text = str(p["text"]).replace("\n", " / ")
            self.line(f"      💬 {kind}: {text}")

    def _message(self, message_id: int) -> None:
        m = self.sim.api.message(GROUP_ID, message_id)
        for ln in (m.plain or "").splitlines():
            self.line(f"      │ {ln}")
        for row in (m.reply_markup or {}).get("inline_keyboard", []):
            self.line("      │ " + "  ".join(f"[{b['text']}]" for b in row))


async def play(out_dir: Path, out: TextIO) -> Transcript:
    with tempfile.TemporaryDirectory(prefix="ticketbot-demo-") as tmp:
        start = datetime(2026, 11, 24, 8, 0, tzinfo=TZ)  # a Tuesday
        # The office's mailbox for the DWH admin's answers: a real IMAP server on loopback.
        imap = ImapServer()
        await imap.start()
        try:
            settings = {
                "mailbox__host": "127.0.0.1", "mailbox__port": imap.port,
                "mailbox__security": "none", "mailbox__username": imap.user,
                "mailbox__password": imap.password,
            }  # fmt: skip
            sim = Simulation(Path(tmp), settings=settings)
            sim.clock.now = start
            async with sim:
                t = Transcript(sim, out)
                t.seen = len(sim.api.calls)
                await run_day(sim, t, imap)
                write_outputs(sim, out_dir, t)
        finally:
            await imap.stop()
        return t


def at(sim: Simulation, hh: int, mm: int) -> None:
    sim.clock.now = sim.clock.now.replace(hour=hh, minute=mm)


async def say(sim: Simulation, t: Transcript, who: Person, text: str) -> int:
    t.typed(who, text)
    message_id = await sim.say(who, text)
    t.bot_calls()
    return message_id


async def tap(sim: Simulation, t: Transcript, who: Person, message_id: int, label: str) -> None:
    button = sim.button_data(message_id, label)
    shown = next(
        b["text"]
        for row in (sim.message(message_id).reply_markup or {})["inline_keyboard"]
        for b in row
        if b.get("callback_data") == button
    )
    t.tapped(who, shown)
    await sim.tap(who, message_id, label)
    t.bot_calls()


async def mail_arrives(sim: Simulation, t: Transcript, imap: ImapServer, raw: bytes) -> None:
    """A mail reaches the office's mailbox; the bot reads it (IDLE) and tells the group."""
    watcher = sim.services.mailbox
    assert watcher is not None
    handled = len(await sim.services.repo.mails.mails()) + 1
    await imap.deliver(raw)
    while len([m for m in await sim.services.repo.mails.mails() if m.handled_at]) < handled:
        await watcher.wait_rounds(watcher.rounds + 1)
    await sim.services.outbox.drained()
    t.bot_calls()


async def run_day(sim: Simulation, t: Transcript, imap: ImapServer) -> None:
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
    at(sim, 8, 11)
    await say(sim, t, STAF, TICKET_C)
    card_c = sim.last_bot_message().message_id

    t.step("3", "Kasi memverifikasi NIK dan memerintahkan ADB (atau menolak dengan alasan)")
    at(sim, 8, 12)
    await tap(sim, t, KASI, card_a, "NIK")
    await tap(sim, t, KASI, card_a, "Verifikasi")
    at(sim, 8, 14)
    await tap(sim, t, KASI, card_b, "Tolak")
    await tap(sim, t, KASI, card_b, "1. ")
    at(sim, 8, 15)
    await tap(sim, t, KASI, card_c, "Verifikasi")

    t.step("5 (ditolak)", "Staf menginformasikan penolakan ke pemohon lewat WhatsApp")
    at(sim, 8, 18)
    wa_link(sim, t, card_b)
    await tap(sim, t, STAF2, card_b, "Diinformasikan")

    t.step("4", "ADB SIAK menyinkronkan di Konsolidasi; rekap harian terkirim ke admin DWH")
    at(sim, 10, 0)
    await tap(sim, t, ADB, card_a, "Konsolidasi")
    await tap(sim, t, ADB, card_c, "Konsolidasi")
    await say(sim, t, STAF, "/rekap")
    at(sim, 15, 0)
    t.line(f"[{t.when()}] ⏰ Jadwal rekap harian (recap.time = 15:00)")
    await sim.run_jobs()
    t.bot_calls()
    received = sim.smtp.received[0]
    t.line(f"      📧 Email diterima server SMTP: {received.message['Subject']}")
    t.line(f"         kepada {', '.join(received.recipients)}, lampiran XLSX")
    first_recap = str(received.message["Message-ID"])

    t.step("4 (email masuk)", "jawaban dari sisi DWH masuk ke grup lewat kotak surat kantor")
    at(sim, 15, 2)
    t.line(f"[{t.when()}] 📥 Server email pusat mengembalikan rekap: kotak surat admin penuh")
    await mail_arrives(sim, t, imap, _bounce(first_recap))
    at(sim, 15, 10)
    await say(sim, t, ADB, "/rekap kirim")
    second = sim.smtp.received[-1].message
    t.line(f"      📧 Email diterima server SMTP: {second['Subject']}")
    at(sim, 15, 11)
    t.line(f"[{t.when()}] 📥 Balasan otomatis admin DWH (sedang rapat)")
    await mail_arrives(sim, t, imap, _mail(
        f"Automatic reply: {second['Subject']}", "Saya sedang rapat sampai pukul 15.30.",
        str(second["Message-ID"]), Auto_Submitted="auto-replied",
    ))  # fmt: skip
    at(sim, 15, 40)
    t.line(f"[{t.when()}] 📥 Admin DWH pusat membalas: satu tiket gagal")
    await mail_arrives(sim, t, imap, _mail(
        f"Re: {second['Subject']}",
        "Selamat sore,\nSudah kami sinkronkan di DWH.\n#3 gagal: NIK ganda di DWH, mohon"
        " dicek ulang di SIAK.\n\nSalam,\nAdmin DWH\n\nPada Sel, 24 Nov 2026 menulis:\n"
        "> Rekap sinkronisasi NIK DWH\n",
        str(second["Message-ID"]),
    ))  # fmt: skip
    [answer] = [m for m in await sim.services.repo.mails.mails() if m.proposal]
    assert answer.group_message_id is not None
    await tap(sim, t, ADB, answer.group_message_id, "Terapkan")

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
