"""Issue M: the DWH admin's mail comes back into the group (SPEC §4c), end to end: a real
IMAP server (pymap, IMAP4rev1 with IDLE) on loopback, the bot's watcher, the fake Bot API,
the database. Every test checks what was stored and what Telegram was asked to do."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests import mails
from tests.conftest import assert_no_full_numbers, form
from tests.test_recap import at, synced
from ticketbot.domain.lifecycle import State
from ticketbot.emulator.imap import ImapServer
from ticketbot.emulator.simulation import ADB, GROUP_ID, STAF, Simulation
from ticketbot.mailbox import MailboxWatcher


def mailbox_settings(imap: ImapServer, **more: Any) -> dict[str, Any]:
    return {
        "mailbox__host": "127.0.0.1", "mailbox__port": imap.port, "mailbox__security": "none",
        "mailbox__username": imap.user, "mailbox__password": imap.password,
        "mailbox__retry_seconds": 0.05,
        **{f"mailbox__{k}": v for k, v in more.items()},
    }  # fmt: skip


@pytest.fixture
async def imap() -> AsyncIterator[ImapServer]:
    server = ImapServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def msim(
    tmp_path: Path, imap: ImapServer, request: pytest.FixtureRequest
) -> AsyncIterator[Simulation]:
    settings = {**mailbox_settings(imap), **getattr(request, "param", {})}
    async with Simulation(tmp_path, settings=settings) as sim:
        await watcher(sim).connected.wait()
        yield sim
        assert sim.api.errors == []
        assert sim.api.unanswered_callbacks() == []
        assert_no_full_numbers(sim)


def watcher(sim: Simulation) -> MailboxWatcher:
    assert sim.services.mailbox is not None
    return sim.services.mailbox


async def arrive(sim: Simulation, imap: ImapServer, *raws: bytes, handled: int) -> None:
    """Deliver `raws`; return once `handled` mails in all are handled and the group shows
    them (the watcher's IDLE wakes it; no clock is waited on)."""
    await imap.deliver(*raws)
    async with asyncio.timeout(60):  # a hang guard, not a timing claim
        while len([m for m in await sim.services.repo.mails.mails() if m.handled_at]) < handled:
            await watcher(sim).wait_rounds(watcher(sim).rounds + 1)
    await sim.services.outbox.drained()


async def recap_sent(sim: Simulation, count: int = 2) -> int:
    """`count` tickets synced and the 15:00 recap sent; returns the summary's message id."""
    for i in range(count):
        await synced(sim, form(nik=f"127301450685{i + 1:04d}"))
    sim.clock.now = at(2026, 11, 24, 15, 0)
    await sim.run_jobs()
    [batch] = await sim.services.repo.batches.batches("sent")
    assert batch.message_id == mails.RECAP_ID and batch.summary_message_id is not None
    return batch.summary_message_id


async def test_an_answer_comes_in_proposes_and_terapkan_applies_it(
    msim: Simulation, imap: ImapServer
) -> None:
    sim = msim
    summary = await recap_sent(sim)
    before = len(sim.api.calls_of("sendMessage"))
    await arrive(sim, imap, mails.gmail_reply(
        "Sudah kami sinkronkan.\n#2 gagal: NIK ganda di DWH, hubungi 0812-3456-7890"),
        handled=1)  # fmt: skip

    # Stored: handled once, its bytes dropped, the proposal kept; flagged on the server.
    [mail] = await sim.services.repo.mails.mails()
    assert (mail.verdict, mail.batch_id, mail.raw) == ("reply", 1, None)
    assert mail.proposal == {
        "confirm": [1],
        "failed": [[2, "gagal: NIK ganda di DWH, hubungi 0812****7890"]],
    }
    assert list((await imap.flags()).values()) == ["\\Seen"]
    # The group: one message, a reply to the batch's summary, with Terapkan for the ADB.
    [post] = sim.api.calls_of("sendMessage")[before:]
    assert post.params["reply_parameters"]["message_id"] == summary
    text = post.params["text"]
    assert "Admin DWH Pusat &lt;admin-dwh@example.go.id&gt;" in text
    assert "<i>Sudah kami sinkronkan.</i>" in text and "NIK       :" not in text
    assert "✅ Konfirmasi sinkron di DWH: #1" in text
    assert "🔁 #2 sinkron ulang: gagal: NIK ganda di DWH, hubungi 0812****7890" in text
    assert post.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "✅ Terapkan", "callback_data": "1:A:1"}]]
    }
    # Nothing changed before the tap.
    states = {t.id: t.state for t in await sim.services.repo.batches.batch_tickets(1)}
    assert states == {1: State.SENT_TO_DWH, 2: State.SENT_TO_DWH}

    answer = mail.group_message_id
    assert answer is not None
    refused = await sim.tap(STAF, answer, "Terapkan")
    assert sim.answer_to(refused)["text"] == "Tombol ini hanya untuk ADB SIAK."
    applied = await sim.tap(ADB, answer, "Terapkan")
    assert sim.answer_to(applied)["text"] == "Usulan admin DWH diterapkan: 2 tiket berubah."
    one = await sim.services.repo.tickets.get_ticket(1)
    two = await sim.services.repo.tickets.get_ticket(2)
    assert one is not None and one.state == State.READY_TO_INFORM
    assert two is not None and two.state == State.VERIFIED and two.batch_id is None
    # An event per ticket naming the mail, the ADB as actor; one on the batch for the mail.
    for ticket_id, action, detail in (
        (1, "confirm_dwh", "email DWH #1"),
        (2, "resync", "gagal: NIK ganda di DWH, hubungi 0812****7890 (email DWH #1)"),
    ):
        last = await sim.services.repo.events.last_transition(ticket_id)
        assert last is not None and (last.action, last.actor_id, last.detail) == (
            action, ADB.user_id, detail)  # fmt: skip
    shown = sim.message(answer)
    assert "Diterapkan oleh" in (shown.text or "") and shown.reply_markup is None
    # The button again (a stale copy): nothing more happens.
    again = await sim.tap_data(ADB, answer, "1:A:1", forged=True)
    assert sim.answer_to(again)["text"] == "Usulan ini sudah diterapkan sebelumnya."
    # The same mail delivered twice (a copy in the folder): handled once.
    calls = len(sim.api.calls_of("sendMessage"))
    await imap.deliver(mails.gmail_reply("Sudah kami sinkronkan."))
    await watcher(sim).wait_rounds(watcher(sim).rounds + 1)
    await sim.services.outbox.drained()
    assert len(await sim.services.repo.mails.mails()) == 1
    assert len(sim.api.calls_of("sendMessage")) == calls


async def test_out_of_office_delay_and_bounce(msim: Simulation, imap: ImapServer) -> None:
    sim = msim
    await recap_sent(sim)
    before = len(sim.api.calls_of("sendMessage"))
    await arrive(sim, imap, mails.exchange_out_of_office(), mails.gmail_vacation(),
                 mails.postfix_bounce("4.4.1", action="delayed", mid="<delay@mx>"), handled=3)  # fmt: skip
    verdicts = [m.verdict for m in await sim.services.repo.mails.mails()]
    assert verdicts == ["auto", "auto", "delay"]
    posts = [c.params["text"] for c in sim.api.calls_of("sendMessage")[before:]]
    # Two automatic replies, told once; the delay told once; nothing proposed or changed.
    assert len(posts) == 2 and "Balasan otomatis" in posts[0] and "tertunda" in posts[1]
    assert all("reply_markup" not in c.params for c in sim.api.calls_of("sendMessage")[before:])
    assert {t.state for t in await sim.services.repo.batches.batch_tickets(1)} == {
        State.SENT_TO_DWH
    }

    await arrive(sim, imap, mails.postfix_bounce(), handled=4)
    batch = await sim.services.repo.batches.get_batch(1)
    assert batch is not None and batch.undelivered == mails.ADMIN
    # Its tickets go out again: back to synced, out of the batch, with the bot's event.
    for ticket_id in (1, 2):
        ticket = await sim.services.repo.tickets.get_ticket(ticket_id)
        assert ticket is not None and (ticket.state, ticket.batch_id) == (State.SYNCED, None)
        last = await sim.services.repo.events.last_transition(ticket_id)
        assert last is not None and last.action == "undelivered" and last.actor_id is None
    [told] = [c.params["text"] for c in sim.api.calls_of("sendMessage")[before + 2 :]]
    assert "tidak sampai" in told and mails.ADMIN in told and "5.1.1" in told
    # The batch's summary says so too, and no longer claims anything confirmed.
    assert batch.summary_message_id is not None
    shown = sim.message(batch.summary_message_id)
    assert "Tidak sampai: server email menolak untuk admin-dwh@example.go.id" in (shown.text or "")
    assert "sudah dikonfirmasi" not in (shown.text or "") and shown.reply_markup is None
    # A second report of the same failure changes nothing more.
    await arrive(sim, imap, mails.exchange_bounce(), handled=5)
    assert (await sim.services.repo.batches.get_batch(1)).undelivered == mails.ADMIN  # type: ignore[union-attr]
    # The next recap takes them.
    sent = len(sim.smtp.received)
    await sim.say(ADB, "/rekap kirim")
    assert len(sim.smtp.received) == sent + 1
    assert [t.id for t in await sim.services.repo.batches.batch_tickets(2)] == [1, 2]
    assert "[SINKRON 12.73 B2]" in str(sim.smtp.received[-1].message["Subject"])


@pytest.mark.parametrize("msim", [{"recap__cc": ["kabid-lama@example.go.id"]}], indirect=True)
async def test_a_bounce_from_a_cc_address_changes_nothing(
    msim: Simulation, imap: ImapServer
) -> None:
    sim = msim
    await recap_sent(sim)
    before = len(sim.api.calls_of("sendMessage"))
    cc_bounce = mails.postfix_bounce().replace(mails.ADMIN.encode(), b"kabid-lama@example.go.id")
    await arrive(sim, imap, cc_bounce, handled=1)
    [mail] = await sim.services.repo.mails.mails()
    batch = await sim.services.repo.batches.get_batch(1)
    assert mail.verdict == "bounce" and batch is not None and batch.undelivered is None
    assert {t.state for t in await sim.services.repo.batches.batch_tickets(1)} == {
        State.SENT_TO_DWH
    }
    [told] = [c.params["text"] for c in sim.api.calls_of("sendMessage")[before:]]
    assert "tidak sampai ke kabid-lama@example.go.id" in told
    assert "tidak ada tiket yang berubah" in told


@pytest.mark.parametrize("msim", [{"mailbox__authserv_id": "mx.example.go.id"}], indirect=True)
async def test_a_spoofed_sender_is_shown_unverified_without_buttons(
    msim: Simulation, imap: ImapServer
) -> None:
    sim = msim
    await recap_sent(sim)
    before = len(sim.api.calls_of("sendMessage"))
    spoofed = mails.gmail_reply(
        "OK semua sudah. NIK 1273014506850001", mid="<spoof@evil.example>",
        auth="mx.example.go.id; spf=fail smtp.mailfrom=evil.example; dmarc=fail"
             " header.from=example.go.id",
    )  # fmt: skip
    await arrive(sim, imap, spoofed, handled=1)
    [mail] = await sim.services.repo.mails.mails()
    assert (mail.verdict, mail.proposal) == ("untrusted", None)
    [post] = sim.api.calls_of("sendMessage")[before:]
    assert "tidak terverifikasi" in post.params["text"] and "reply_markup" not in post.params
    assert "127301******0001" in post.params["text"]
    assert {t.state for t in await sim.services.repo.batches.batch_tickets(1)} == {
        State.SENT_TO_DWH
    }


@pytest.mark.parametrize("msim", [{"mailbox__max_bytes": 4096}], indirect=True)
async def test_oversize_malformed_and_unmatched_mail_never_stop_the_watcher(
    msim: Simulation, imap: ImapServer
) -> None:
    sim = msim
    await recap_sent(sim)
    big = mails.gmail_reply("Sudah.\n" + "lampiran " * 1000, mid="<big@example.go.id>")
    broken = (b"From: Admin <admin-dwh@example.go.id>\r\nMessage-ID: <broken@x>\r\n"
              b"Subject: Re: [SINKRON 12.73 B1]\r\nContent-Type: multipart/mixed; boundary=\"q\""
              b"\r\n\r\n--q\r\nContent-Type: text/plain; charset=x-unknown\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n%%%\r\n")  # fmt: skip
    stranger = mails.gmail_reply("halo", refs="<other@x>", subject="Rapat besok",
                                 mid="<unrelated@x>")  # fmt: skip
    good = mails.thunderbird_reply("OK, semua selesai.")
    await arrive(sim, imap, big, broken, stranger, good, handled=4)
    verdicts = [m.verdict for m in await sim.services.repo.mails.mails()]
    assert verdicts == ["oversize", "reply", "unmatched", "reply"]
    stored = await sim.services.repo.mails.mails()
    assert stored[0].size > 4096 and stored[2].batch_id is None
    # The last one proposes the whole batch.
    assert stored[3].proposal == {"confirm": [1, 2], "failed": []}


async def test_the_mailbox_going_away_and_coming_back(msim: Simulation, imap: ImapServer) -> None:
    sim = msim
    await recap_sent(sim)
    before = len(sim.api.calls_of("sendMessage"))
    await imap.stop()
    # Told once, however many tries fail.
    # Told once, from the third failed try on.
    await watcher(sim).wait_until(lambda w: w.failures >= 4)
    rounds = watcher(sim).rounds
    await sim.services.outbox.drained()
    await imap.start()  # a new server: new UIDVALIDITY, an empty folder
    await watcher(sim).wait_rounds(rounds + 1)
    await arrive(sim, imap, mails.thunderbird_reply("OK, semua selesai."), handled=1)
    texts = [c.params["text"] for c in sim.api.calls_of("sendMessage")[before:]]
    assert len([t for t in texts if "tidak bisa dihubungi" in t]) == 1
    assert len([t for t in texts if "kembali terbaca" in t]) == 1
    assert await sim.services.repo.db.setting("mailbox_trouble") is None
    assert [m.verdict for m in await sim.services.repo.mails.mails()] == ["reply"]


async def test_a_refused_login_is_told_once(tmp_path: Path, imap: ImapServer) -> None:
    settings = {**mailbox_settings(imap), "mailbox__password": "wrong"}
    async with Simulation(tmp_path, settings=settings) as sim:
        await watcher(sim).wait_until(lambda w: w.failures >= 4)  # refused four times
        await sim.services.outbox.drained()
        told = [
            c for c in sim.api.calls_of("sendMessage") if "kata sandi ditolak" in c.params["text"]
        ]
        assert len(told) == 1 and int(told[0].params["chat_id"]) == GROUP_ID
        assert "wrong" not in told[0].params["text"]


# -- the command line --------------------------------------------------------------------


async def _mailbox_test(config: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticketbot", "mailbox", "--config", str(config), "--test",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("TICKETBOT_")},
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _config(tmp_path: Path, mailbox: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[office]\nname = "Disdukcapil Kota Sibolga"\nkode_wilayah = "12.73"\n'
        "[telegram]\ngroup_id = -100123\n[roles]\nkasi = [1]\nadb = [2]\nstaf = [3]\n"
        '[smtp]\nhost = "127.0.0.1"\nfrom = "Disdukcapil <disdukcapil@example.go.id>"\n'
        '[recap]\nto = ["admin-dwh@example.go.id"]\n' + mailbox
    )
    path.chmod(0o600)
    return path


async def test_mailbox_test_over_starttls_with_the_office_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(tmp_path / "srv.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    server = ImapServer(cert=tmp_path / "srv.pem")
    await server.start()
    try:
        base = (f'[mailbox]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "starttls"\n'
                f'username = "{server.user}"\n')  # fmt: skip
        ok = _config(tmp_path, base + f'password = "{server.password}"\nca_file = "ca.pem"\n')
        assert await _mailbox_test(ok) == (
            0,
            "ok: logged in to 127.0.0.1; folder 'INBOX' holds 0 messages; IDLE\n",
            "",
        )
        untrusted = _config(tmp_path, base + f'password = "{server.password}"\n')
        code, out, err = await _mailbox_test(untrusted)
        assert (code, out) == (1, "") and err.startswith("mailbox: tls: certificate not trusted")
        assert err.count("\n") == 1
        refused = _config(tmp_path, base + 'password = "nope"\nca_file = "ca.pem"\n')
        code, _, err = await _mailbox_test(refused)
        assert (code, err) == (
            1,
            "mailbox: login: [AUTHENTICATIONFAILED] Invalid authentication credentials.\n",
        )
        assert "nope" not in err
    finally:
        await server.stop()


async def test_mailbox_test_says_in_one_line_what_is_wrong(tmp_path: Path) -> None:
    closed = ImapServer()  # never started: nothing listens on its port
    plain = _config(tmp_path, f'[mailbox]\nhost = "127.0.0.1"\nport = {closed.port}\n'
                              'security = "none"\nusername = "u"\npassword = "p"\n')  # fmt: skip
    code, _, err = await _mailbox_test(plain)
    assert code == 1 and err.startswith("mailbox: unreachable: ") and err.count("\n") == 1
    off = _config(tmp_path, "")
    assert await _mailbox_test(off) == (
        2,
        "",
        "mailbox.host: is empty, so the mailbox is off; set [mailbox] first\n",
    )
    remote = _config(tmp_path, '[mailbox]\nhost = "imap.example.go.id"\nsecurity = "none"\n'
                               'username = "u"\n')  # fmt: skip
    code, _, err = await _mailbox_test(remote)
    assert code == 2 and 'mailbox.security: "none" would send the password unencrypted' in err


async def test_retention_erases_what_old_mail_said(msim: Simulation, imap: ImapServer) -> None:
    sim = msim
    await recap_sent(sim)
    await arrive(sim, imap, mails.gmail_reply("Sudah.\n#2 gagal: nama Siti Aminah salah"),
                 handled=1)  # fmt: skip
    [before] = await sim.services.repo.mails.mails()
    assert before.proposal is not None and before.shown["lines"]
    sim.clock.now += timedelta(days=sim.services.config.retention_days + 1)
    await sim.services.retention.purge()
    [after] = await sim.services.repo.mails.mails()
    assert after.proposal is None and "lines" not in after.shown and "subject" not in after.shown
    assert (after.verdict, after.shown["sender"], after.batch_id) == ("reply", mails.ADMIN, 1)


async def test_a_stop_is_not_held_by_a_cancellation_the_watcher_dropped(
    msim: Simulation,
) -> None:
    """Python 3.11's asyncio.wait_for (aioimaplib's commands use it) returns a result that
    lands in the same moment as a cancellation and drops the cancellation: the watcher went
    on into its next IDLE and a stop waited it out. The stop cancels again until the watcher
    ends."""
    w = watcher(msim)
    await w.stop()

    never = asyncio.Event()  # nothing sets it: only a cancellation ends a wait on it

    async def drops_one_cancellation() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await never.wait()  # as wait_for does when its result came at once
        await never.wait()  # the next IDLE

    w._task = asyncio.create_task(drops_one_cancellation())
    await asyncio.sleep(0)
    async with asyncio.timeout(10) as guard:  # a hang guard, not a timing claim
        await w.stop()
    assert not guard.expired() and w._task.cancelled()
