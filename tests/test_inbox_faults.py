"""Issue R: nothing stops the inbox, nothing is handled twice, nothing is taken for a card.

The crash-like cases run the real `ticketbot run` as a subprocess against the fake Bot API
(as tests/test_crash.py does): a malformed update, a full disk, a store held up by another
process. The outbox cases run in process, where the fault can be placed exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from tests.conftest import VALID_FORM, always_open_config, form
from ticketbot.emulator.botapi import FakeBotApi
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, STRANGER, Simulation
from ticketbot.emulator.smtp import SmtpSink
from ticketbot.inbox import payload_of, raw_updates
from ticketbot.office import Office
from ticketbot.outbox import Pacer
from ticketbot.store.database import _fsync

TOKEN = "654321:TEST-inbox-not-a-real-token-xyz"


def nik(i: int) -> str:
    return f"127301450685{i + 1:04d}"


def cards(api: FakeBotApi) -> dict[int, int]:
    """ticket number -> message id of its visible card."""
    found: dict[int, int] = {}
    for m in api.visible(GROUP_ID):
        text = m.text or ""
        if m.from_id == api.bot_id and text.startswith("📋 <b>Tiket #"):
            found[int(text.split("#", 1)[1].split("<", 1)[0])] = m.message_id
    return found


@dataclass
class Bot:
    api: FakeBotApi
    directory: Path
    smtp_port: int
    process: asyncio.subprocess.Process | None = None

    async def start(self, config: Path) -> None:
        log = (self.directory / "bot.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ticketbot", "run", "--config", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
            env={**os.environ, "TICKETBOT_TELEGRAM_TOKEN": TOKEN},
        )  # fmt: skip
        log.close()
        await self.api.wait_for_call("setMyCommands", timeout=60)

    def log(self) -> str:
        return (self.directory / "bot.log").read_text()

    async def stop(self) -> int | None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), timeout=30)
        return self.process.returncode


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    api = FakeBotApi(token=TOKEN)
    await api.start()
    api.add_group(GROUP_ID)
    for p in (KASI, ADB, STAF, STRANGER):
        api.add_user(p.user_id, p.first_name, p.last_name)
    smtp = SmtpSink()
    await smtp.start()
    b = Bot(api, tmp_path, smtp.port)
    try:
        yield b
    finally:
        if b.process is not None and b.process.returncode is None:
            b.process.kill()
            await b.process.wait()
        await api.stop()
        await smtp.stop()


async def test_a_lone_surrogate_anywhere_never_stops_the_bot(bot: Bot, tmp_path: Path) -> None:
    api = bot.api
    config = always_open_config(tmp_path / "config.toml", api.base_url, bot.smtp_port)
    await bot.start(config)
    await api.post(STAF.user_id, GROUP_ID, VALID_FORM)
    await api.wait_until(lambda: 1 in cards(api))
    card = cards(api)[1]
    # Telegram's JSON can carry "\ud800", which no UTF-8 text (nor SQLite) can hold: in
    # callback data, in a message, and in a display name.
    await api.press(KASI.user_id, GROUP_ID, card, "v:1\ud800", forged=True)
    await api.post(STAF.user_id, GROUP_ID, "/status #1\ud800")
    api.add_user(ADB.user_id, "Budi\ud800", "ADB")
    await api.post(ADB.user_id, GROUP_ID, form(nik=nik(5), lembaga="Bank\ud800 Sumut"))
    # The next valid /tiket, 20 s later in the field, is carded: the inbox lives.
    await api.post(STAF.user_id, GROUP_ID, form(nik=nik(7), lembaga="DJP"))
    await api.wait_until(lambda: {1, 2, 3} <= set(cards(api)), timeout=30)
    # The forged tap was answered once, and nothing else failed.
    assert api.unanswered_callbacks() == []
    assert [c.method for c in api.errors] == []
    assert await bot.stop() == 0, bot.log()


# -- a full disk --------------------------------------------------------------------------


@contextlib.contextmanager
def tiny_disk(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True)  # fmt: skip
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk says it is full."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    written = 0
    try:
        while (n := _write_some(fd)) > 0:
            written += n
    finally:
        os.close(fd)
    assert written > 0
    return filler


def _write_some(fd: int) -> int:
    try:
        return os.write(fd, b"\0" * 4096)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        return 0


async def test_a_full_disk_is_told_once_and_survived_without_a_restart(
    bot: Bot, tmp_path: Path
) -> None:
    api = bot.api
    with tiny_disk(tmp_path / "disk", "4m") as disk:
        config = always_open_config(disk / "config.toml", api.base_url, bot.smtp_port)
        await bot.start(config)
        await api.post(STAF.user_id, GROUP_ID, form(nik=nik(0), lembaga="Bank 0"))
        await api.wait_until(lambda: 1 in cards(api))
        card = cards(api)[1]
        assert bot.process is not None
        pid = bot.process.pid

        filler = fill(disk)
        # While the disk is full: four intakes and a tap.
        intakes = [
            (await api.post(STAF.user_id, GROUP_ID, form(nik=nik(i), lembaga=f"Bank {i}")))[1]
            for i in range(1, 5)
        ]
        await api.press(
            KASI.user_id, GROUP_ID, card, api.button_data(GROUP_ID, card, "Verifikasi")
        )
        await api.wait_until(
            lambda: any("Penyimpanan bot penuh" in (m.text or "") for m in api.visible(GROUP_ID)),
            timeout=60,
        )
        assert not {2, 3, 4, 5} & set(cards(api))
        # Room again: the bot catches up by itself.
        filler.unlink()
        await api.wait_until(lambda: {1, 2, 3, 4, 5} <= set(cards(api)), timeout=60)
        await api.wait_until(  # re-posted for the ADB
            lambda: "Diverifikasi" in (api.message(GROUP_ID, cards(api)[1]).plain or ""),
            timeout=60,
        )
        await api.wait_until(lambda: all(api.message(GROUP_ID, m).deleted for m in intakes))
        assert bot.process.returncode is None and bot.process.pid == pid  # never restarted
        told = [m for m in api.calls_of("sendMessage")
                if "Penyimpanan bot penuh" in str(m.params.get("text"))]  # fmt: skip
        assert len(told) == 1
        assert api.unanswered_callbacks() == []
        assert await bot.stop() == 0, bot.log()
        # Nothing lost, nothing twice: five tickets, one verification.
        db = sqlite3.connect(disk / "office.sqlite3")
        try:
            assert db.execute("SELECT count(*) FROM tickets").fetchone() == (5,)
            assert db.execute("SELECT state FROM tickets WHERE id = 1").fetchone() == ("verified",)
            assert db.execute(
                "SELECT count(*) FROM events WHERE action = 'verify'"
            ).fetchone() == (1,)
            unhandled = "SELECT update_id, payload FROM inbox WHERE handled_at IS NULL"
            assert db.execute(unhandled).fetchall() == []
        finally:
            db.close()
    assert "disk is full" in bot.log()


# -- a store held up: every tap exactly once ----------------------------------------------


async def test_taps_during_a_held_store_are_each_answered_and_recorded_once(
    bot: Bot, tmp_path: Path
) -> None:
    api = bot.api
    config = always_open_config(tmp_path / "config.toml", api.base_url, bot.smtp_port)
    await bot.start(config)
    await api.post(STAF.user_id, GROUP_ID, VALID_FORM)
    await api.wait_until(lambda: 1 in cards(api))
    card = cards(api)[1]
    data = api.button_data(GROUP_ID, card, "NIK")
    # Another process holds the database's write lock: the store of the next updates waits
    # on it while their taps are already being handled.
    locker = sqlite3.connect(tmp_path / "office.sqlite3", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    queries = []
    for who in (KASI, ADB, STAF, KASI, ADB):
        queries.append((await api.press(who.user_id, GROUP_ID, card, data))[1])
    await api.wait_until(
        lambda: len(api.calls_of("answerCallbackQuery")) >= len(queries), timeout=30
    )
    locker.execute("ROLLBACK")
    locker.close()
    # More taps once the lock is gone, and a tap that comes with an intake.
    for who in (STAF, KASI):
        queries.append((await api.press(who.user_id, GROUP_ID, card, data))[1])
    await api.post(STAF.user_id, GROUP_ID, form(nik=nik(9), lembaga="Bank"))
    await api.wait_until(lambda: 2 in cards(api), timeout=30)
    await api.wait_until(
        lambda: len(api.calls_of("answerCallbackQuery")) >= len(queries), timeout=30
    )
    assert await bot.stop() == 0, bot.log()
    answered = [c.params["callback_query_id"] for c in api.calls_of("answerCallbackQuery")]
    assert sorted(answered) == sorted(queries)  # each exactly once
    assert [c for c in api.calls if c.method == "answerCallbackQuery" and c.status != 200] == []
    db = sqlite3.connect(tmp_path / "office.sqlite3")
    try:
        views = db.execute("SELECT count(*) FROM events WHERE action = 'view_nik'").fetchone()
        assert views == (len(queries),)
        assert db.execute("SELECT count(*) FROM inbox WHERE handled_at IS NULL").fetchone() == (0,)
    finally:
        db.close()
    # A restart replays nothing.
    await bot.start(config)
    await api.post(STAF.user_id, GROUP_ID, "/antrian")
    await api.wait_until(
        lambda: any("Antrian" in str(c.params.get("text")) for c in api.calls_of("sendMessage")),
        timeout=30,
    )
    assert await bot.stop() == 0
    db = sqlite3.connect(tmp_path / "office.sqlite3")
    try:
        views = db.execute("SELECT count(*) FROM events WHERE action = 'view_nik'").fetchone()
        assert views == (len(queries),)
    finally:
        db.close()


# -- in process: the lost-post search and the budget ----------------------------------------


async def test_a_card_lost_to_a_500_is_never_taken_for_another_message(sim: Simulation) -> None:
    await sim.say(STAF, form(nik=nik(0), lembaga="Bank 0"))
    # The next card's post fails with a 500 (Telegram did not post it); before its retry a
    # reply goes out, at the id where the lost post is looked for.
    sim.api.fail_next("sendMessage", 500)
    await sim.api.post(STAF.user_id, GROUP_ID, form(nik=nik(1), lembaga="Bank 1"))
    await sim.api.wait_until(lambda: any(c.status == 500 for c in sim.api.calls))
    reply = await sim.say(STAF, "/antrian")
    await sim.api.wait_until(lambda: 2 in cards(sim.api))
    await sim.services.outbox.drained()
    ticket = await sim.office.repo.tickets.get_ticket(2)
    assert ticket is not None and ticket.card_message_id == cards(sim.api)[2]
    assert (sim.message(ticket.card_message_id).text or "").startswith("📋 <b>Tiket #2</b>")
    # The reply stands as it was: no buttons, and not taken for the card.
    [answer] = [m for m in sim.api.visible(GROUP_ID) if m.reply_to == reply]
    assert answer.reply_markup is None and "Antrian" in (answer.plain or "")
    assert answer.message_id < ticket.card_message_id
    assert len(cards(sim.api)) == 2
    # The search's questions: ids past the newest, and the person's own /antrian.
    sim.api.calls[:] = [c for c in sim.api.calls if not c.injected
                        and "not found" not in str(c.description)
                        and "can't be edited" not in str(c.description)]  # fmt: skip


def test_a_429_gives_its_slot_back() -> None:
    """Eleven refused attempts in a row cost the group's budget nothing: the next send may
    go as soon as Telegram's retry_after has passed."""
    pacer = Pacer(group_per_minute=20, per_second=30)
    for _ in range(9):
        assert pacer.wait_for(GROUP_ID, charged=True) == 0
    for _ in range(11):
        assert pacer.wait_for(GROUP_ID, charged=True) == 0
        pacer.refund(GROUP_ID, charged=True)  # Telegram answered 429
        pacer.pause(GROUP_ID, 0.5)
        assert pacer.blocked_for(GROUP_ID, charged=True) <= 0.5
        pacer._paused.clear()  # the retry_after has passed
    # Nine real messages and nothing else in the minute: eleven more may still go.
    for _ in range(11):
        assert pacer.wait_for(GROUP_ID, charged=True) == 0
    assert pacer.wait_for(GROUP_ID, charged=True) > 55


@pytest.mark.parametrize("sim", [{"telegram__group_messages_per_minute": 20}], indirect=True)
async def test_429s_on_a_card_delay_it_only_by_retry_after(sim: Simulation) -> None:
    sim.api.fail_next("sendMessage", 429, retry_after=1, count=11)
    await sim.say(STAF, VALID_FORM)
    await sim.api.wait_until(lambda: 1 in cards(sim.api), timeout=60)
    # The refused attempts took no slot: only the card and its ping are in the minute.
    window = sim.services.outbox.pacer._group[GROUP_ID]
    assert len(window) == len(sim.api.calls_of("sendMessage", "editMessageText"))
    sim.api.calls[:] = [c for c in sim.api.calls if not c.injected]


@pytest.mark.parametrize("sim", [{"telegram__messages_per_second": 200}], indirect=True)
async def test_an_outsider_tap_flood_never_holds_the_kasis_tap(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)
    card = cards(sim.api)[1]
    data = sim.button_data(card, "Verifikasi")
    flood = [(await sim.api.press(STRANGER.user_id, GROUP_ID, card, data))[1] for _ in range(300)]
    _, kasi = await sim.api.press(KASI.user_id, GROUP_ID, card, data)
    flood += [(await sim.api.press(STRANGER.user_id, GROUP_ID, card, data))[1] for _ in range(300)]
    await sim.api.wait_until(
        lambda: len(sim.api.calls_of("answerCallbackQuery")) == len(flood) + 1, timeout=120
    )
    order = [c.params["callback_query_id"] for c in sim.api.calls_of("answerCallbackQuery")]
    # The Kasi's tap is answered before the flood's later taps, and decided.
    assert order.index(kasi) < order.index(flood[-1])
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == "verified"
    # Outsiders' taps are not decided, and the inbox keeps only their ids.
    events = await sim.office.repo.events.events_for(1)
    assert all(e.actor_id != STRANGER.user_id for e in events)
    async with sim.office.repo.db.conn.execute(
        "SELECT count(*) FROM inbox WHERE payload != ''"
    ) as cur:
        row = await cur.fetchone()
    assert row == (0,)


class SyncedCommits:
    """Counts the commits SQLite makes durable with an fsync (synchronous=FULL at COMMIT),
    from the statements the bot's connection runs (sqlite3's trace callback)."""

    def __init__(self) -> None:
        self.full = True
        self.count = 0

    def __call__(self, sql: str) -> None:
        statement = " ".join(sql.split()).upper()
        if statement.startswith("PRAGMA SYNCHRONOUS ="):
            self.full = statement.endswith("FULL")
        elif statement == "COMMIT" and self.full:
            self.count += 1

    def wal_fsync(self, path: Path) -> None:
        """The inbox's own fsync of the WAL (store/database.py `_fsync`), counted too."""
        self.count += 1
        _fsync(path)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


async def test_only_what_a_power_cut_must_not_take_is_fsyncd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One fsync per update: a form's ticket is fsync'd, and carries to disk the form's
    store (the next getUpdates waits for it: below) and its card's post intent (stored
    with the card's effect); a tap's store is not fsync'd (its decision's fsync makes it
    durable, and a tap lost with the power went unanswered, so it is tapped again): a
    hand-off tap costs its decision, which holds its re-post's intent."""
    # However slow this machine is, the form's own change carries its store (no fsync of
    # the inbox's own after a wait).
    monkeypatch.setattr("ticketbot.inbox.DURABLE_WITHIN", 60.0)
    async with Simulation(tmp_path) as sim:
        synced = SyncedCommits()
        monkeypatch.setattr("ticketbot.store.database._fsync", synced.wal_fsync)
        await sim.services.repo.db.conn.run(lambda db: db.set_trace_callback(synced))
        # Each person's first update (their name learnt) is not what is counted here.
        await sim.say(STAF, form(nik=nik(1)))
        first_card = sim.last_bot_message().message_id
        await sim.tap(KASI, first_card, "Verifikasi")
        await sim.services.outbox.drained()
        synced.take()

        await sim.say(STAF, form(nik=nik(2)))
        card = sim.last_bot_message().message_id
        await sim.services.outbox.drained()
        assert synced.take() == 1  # the ticket opened (the form's store, the post's intent)
        await sim.tap(KASI, card, "Verifikasi")  # to the ADB: the card re-posted
        await sim.services.outbox.drained()
        assert synced.take() == 1  # the decision (the re-post's intent with it)
        assert sim.card_now(card) != card
        await sim.tap(ADB, card, "Konsolidasi")  # nobody's turn next: the card edited
        await sim.services.outbox.drained()
        assert synced.take() == 1  # the decision
        # Every effect was tried: none is left taken for untried (an edit included).
        assert sim.services.repo.outbox.fresh == set()
        await sim.services.repo.db.conn.run(lambda db: db.set_trace_callback(None))
        states = {t.id: t.state for t in await sim.services.repo.tickets.open_tickets()}
        assert states == {1: "verified", 2: "synced"}


def test_an_update_is_stored_as_telegram_sent_it() -> None:
    """What getUpdates answered, verbatim (a field python-telegram-bot does not know
    included); a body that is not an answer gives nothing, and the parsed update is then
    serialised instead."""
    sent = {"update_id": 7, "message": {"message_id": 1, "date": 0, "text": "halo",
            "chat": {"id": GROUP_ID, "type": "supergroup"}}, "future_field": {"x": 1}}  # fmt: skip
    body = json.dumps({"ok": True, "result": [sent]}).encode()
    raw = raw_updates(body)
    assert raw == {7: sent}
    assert raw_updates(b"<html>") == {} and raw_updates(b'{"ok": false}') == {}
    update = Update.de_json(sent, None)
    assert update is not None
    stored, text = payload_of(update, raw[7])
    assert json.loads(text) == sent and stored is update
    _, fallback = payload_of(update)
    assert json.loads(fallback)["update_id"] == 7


async def test_the_inbox_never_serialises_an_update_again(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(self: Update, recursive: bool = True) -> dict[str, object]:
        raise AssertionError("an update serialised again")

    monkeypatch.setattr(Update, "to_dict", refused)
    await sim.say(STAF, VALID_FORM)
    card = sim.last_bot_message().message_id
    await sim.tap(KASI, card, "Verifikasi")
    ticket = await sim.services.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == "verified"
    rows = await sim.services.repo.db.conn.execute(
        "SELECT count(*) FROM inbox WHERE handled_at IS NULL"
    )
    assert await rows.fetchone() == (0,)


@contextlib.contextmanager
def intake_held(monkeypatch: pytest.MonkeyPatch) -> Iterator[asyncio.Event]:
    """A form's handler waits (before its change) until the event is set."""
    release = asyncio.Event()
    intake = Office.intake

    async def held(self: Office, *args: object, **kwargs: object) -> object:
        await release.wait()
        return await intake(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Office, "intake", held)
    try:
        yield release
    finally:
        release.set()


def polls_past(api: FakeBotApi, update_id: int) -> list[float]:
    """When Telegram was told it may forget `update_id` (a getUpdates offset past it)."""
    return [at for offset, at in api.offsets if offset > update_id]


async def test_telegram_forgets_a_form_only_once_its_store_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inbox stores a form without an fsync of its own; the getUpdates that confirms it
    to Telegram waits until it is on disk. Its handler's change (fsync'd) usually carries
    it there; a handler that takes longer than DURABLE_WITHIN does not hold the next
    updates: the inbox fsyncs the WAL itself, and only then polls past the form."""
    monkeypatch.setattr("ticketbot.inbox.DURABLE_WITHIN", 0.0)
    fsyncs: list[int] = []  # polls past the form already made, at each fsync of the inbox's
    async with Simulation(tmp_path) as sim:
        await sim.say(STAF, form(nik=nik(1)))  # a first update: names learnt, warm
        with intake_held(monkeypatch) as release:
            update_id = 0

            def wal_fsync(path: Path) -> None:
                fsyncs.append(len(polls_past(sim.api, update_id)))
                _fsync(path)

            monkeypatch.setattr("ticketbot.store.database._fsync", wal_fsync)
            update_id, _ = await sim.api.post(STAF.user_id, GROUP_ID, form(nik=nik(2)))
            await sim.api.wait_until(lambda: bool(polls_past(sim.api, update_id)))
            assert fsyncs == [0]  # on disk before Telegram was told it may forget
            async with sim.services.repo.db.conn.execute(
                "SELECT payload != '' FROM inbox WHERE update_id = ?", (update_id,)
            ) as cur:
                assert await cur.fetchone() == (1,)  # stored, its handler still waiting
            release.set()
            assert sim.inbox is not None
            await sim.inbox.runner.wait_handled(update_id)
        assert (await sim.services.repo.tickets.get_ticket(2)) is not None


async def test_a_forms_own_change_carries_its_store_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With time to wait, the getUpdates past a form comes once the form's ticket is
    committed (fsync'd, and the store with it), with no fsync of the inbox's own."""
    monkeypatch.setattr("ticketbot.inbox.DURABLE_WITHIN", 60.0)
    own: list[Path] = []
    durable: list[tuple[float, int]] = []  # when, and up to which commit
    stored: dict[int, int] = {}  # update id -> its store's commit
    async with Simulation(tmp_path) as sim:
        await sim.say(STAF, form(nik=nik(1)))
        monkeypatch.setattr("ticketbot.store.database._fsync", own.append)
        db, inbox = sim.services.repo.db, sim.services.repo.inbox
        made_durable, store_updates = db._made_durable, inbox.store_updates

        def durable_now(upto: int) -> None:
            durable.append((time.monotonic(), upto))
            made_durable(upto)

        async def store(updates: list[tuple[int, str]], *args: Any, **kwargs: Any) -> int:
            commit = await store_updates(updates, *args, **kwargs)
            stored.update({update_id: commit for update_id, _ in updates})
            return commit

        monkeypatch.setattr(db, "_made_durable", durable_now)
        monkeypatch.setattr(inbox, "store_updates", store)
        update_id, _ = await sim.api.post(STAF.user_id, GROUP_ID, form(nik=nik(2)))
        await sim.api.wait_until(lambda: bool(polls_past(sim.api, update_id)))
        told = polls_past(sim.api, update_id)[0]
        assert own == []
        assert any(at <= told and upto >= stored[update_id] for at, upto in durable)
        assert (await sim.services.repo.tickets.get_ticket(2)) is not None
