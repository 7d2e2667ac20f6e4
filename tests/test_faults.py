"""Issue H: Telegram and the mail server misbehave; nothing is lost, every card ends current,
taps are answered in time, and SIGTERM ends the bot within 10 s in every state."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VALID_FORM, always_open_config, form
from ticketbot.emulator.botapi import FakeBotApi
from ticketbot.emulator.simulation import (
    ADB,
    GROUP_ID,
    KASI,
    STAF,
    STAF2,
    STRANGER,
    Simulation,
)
from ticketbot.records import delete_effect
from ticketbot.store.outbox import OutboxStore

TOKEN = "654321:TEST-faults-not-a-real-token-xy"


def cards_of(sim: Simulation, ticket_id: int) -> list[int]:
    head = f"📋 <b>Tiket #{ticket_id}</b> — "
    return [
        m.message_id for m in sim.api.visible(GROUP_ID)
        if m.from_id == sim.api.bot_id and (m.text or "").startswith(head)
    ]  # fmt: skip


def forget_injected(sim: Simulation) -> None:
    """Injected faults are not the bot's mistakes, and after an unknown outcome the search
    for a lost post asks about ids that hold nothing: drop both before the strict teardown."""
    sim.api.calls[:] = [
        c for c in sim.api.calls
        if not c.injected
        and not (c.method == "editMessageReplyMarkup" and "not found" in str(c.description))
    ]  # fmt: skip


async def test_5xx_on_a_card_post_is_retried_and_posts_one_card(sim: Simulation) -> None:
    sim.api.fail_next("sendMessage", 500)
    intake = await sim.say(STAF, VALID_FORM)
    assert len(cards_of(sim, 1)) == 1
    assert sim.message(intake).deleted
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.card_message_id == cards_of(sim, 1)[0]
    forget_injected(sim)


async def test_many_429s_delay_only_that_chat_and_lose_nothing(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)
    card = cards_of(sim, 1)[0]
    sim.api.fail_next("sendMessage", 429, retry_after=1, count=3)  # the card's re-post
    await sim.tap(KASI, card, "Verifikasi")
    assert "Diverifikasi" in (sim.message(card).plain or "")
    assert len([c for c in sim.api.calls if c.status == 429]) == 3
    forget_injected(sim)


async def test_a_card_post_answered_after_the_read_timeout_is_not_posted_twice(
    sim: Simulation,
) -> None:
    """Telegram shows the card but answers after 7 s: PTB gives up at 5 s. The outcome is
    unknown, so the worker looks for the card before posting again."""
    sim.api.delay_next("sendMessage", 7)
    intake = await sim.say(STAF, VALID_FORM)
    await sim.services.outbox.drained(timeout=40)
    assert len(cards_of(sim, 1)) == 1
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.card_message_id == cards_of(sim, 1)[0]
    assert sim.message(intake).deleted
    # The search answered "not modified" where the card was: that is how it was found.
    forget_injected(sim)
    # Found where its buttons were "not modified"; its text is then checked the same way.
    found = [c for c in sim.api.errors if c.method.startswith("editMessage")]
    assert [c.method for c in found] == ["editMessageReplyMarkup", "editMessageText"]
    assert all("not modified" in str(c.description) for c in found)
    for call in found:
        sim.api.calls.remove(call)


async def test_a_502_on_the_tap_answer_still_applies_the_step(sim: Simulation) -> None:
    await sim.say(STAF, VALID_FORM)
    card = cards_of(sim, 1)[0]
    sim.api.fail_next("answerCallbackQuery", 502)
    query = sim.button_data(card, "Verifikasi")
    update_id, query_id = await sim.api.press(KASI.user_id, GROUP_ID, card, query)
    await sim._handled(update_id)
    ticket = await sim.office.repo.tickets.get_ticket(1)
    assert ticket is not None and ticket.state == "verified"
    assert "Diverifikasi" in (sim.message(card).plain or "")
    # No "Maaf, terjadi kesalahan" after the 502: the step was applied.
    assert not any("kesalahan" in str(c.params.get("text")) for c in sim.api.calls)
    forget_injected(sim)
    sim.api._callbacks[query_id].answered = True  # Telegram lets it expire


async def test_a_500_on_delete_is_retried_until_the_intake_is_gone(sim: Simulation) -> None:
    sim.api.fail_next("deleteMessage", 500, count=2)
    intake = await sim.say(STAF, VALID_FORM)
    await sim.services.outbox.drained(timeout=30)
    assert sim.message(intake).deleted
    forget_injected(sim)


async def test_a_round_of_deletions_is_recorded_in_one_transaction_and_never_repeated(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deletion lane's bookkeeping for a round is one transaction; when the database
    refuses it (a full disk), the deletions are remembered, not sent again."""
    messages = [(await sim.api.post(STAF.user_id, GROUP_ID, f"pesan {i}"))[1] for i in range(5)]
    await sim.services.outbox.drained()
    outbox = sim.services.repo.outbox
    rounds: list[int] = []
    record = OutboxStore.deletes_done

    async def counted(self: OutboxStore, items: Any, notices: Any, now: Any) -> None:
        rounds.append(len(items))
        if len(rounds) == 1:
            raise sqlite3.OperationalError("database or disk is full")
        await record(self, items, notices, now)

    monkeypatch.setattr(OutboxStore, "deletes_done", counted)
    await outbox.enqueue([delete_effect(GROUP_ID, m) for m in messages])
    await sim.services.outbox.drained()
    assert all(sim.api.message(GROUP_ID, m).deleted for m in messages)
    deletions = [int(c.params["message_id"]) for c in sim.api.calls_of("deleteMessage")]
    assert sorted(deletions) == messages  # each once
    assert rounds == [5, 1, 1, 1, 1, 1]  # one round refused, then each remembered one
    rows = await sim.services.repo.db.conn.execute(
        "SELECT count(*) FROM outbox WHERE kind = 'delete' AND status = 'pending'"
    )
    assert await rows.fetchone() == (0,)


async def test_a_409_conflict_on_get_updates_is_survived(sim: Simulation) -> None:
    sim.api.fail_next("getUpdates", 409, "Conflict: terminated by other getUpdates request")
    await sim.say(STAF, VALID_FORM)
    assert len(cards_of(sim, 1)) == 1
    forget_injected(sim)


@pytest.mark.parametrize(
    "sim",
    # Telegram's group budget; the bot-wide one raised so the 1000 deletions finish soon.
    [{"telegram__group_messages_per_minute": 20, "telegram__messages_per_second": 200}],
    indirect=True,
)
async def test_a_flood_never_delays_a_tap_or_another_persons_card(sim: Simulation) -> None:
    await sim.say(STAF2, VALID_FORM)
    card = cards_of(sim, 1)[0]
    bad = form(hp="0631 21799")  # a landline: refused, and it carries the full NIK
    flood = [await sim.api.post(STAF.user_id, GROUP_ID, bad) for _ in range(1000)]
    for _ in range(30):
        await sim.api.post(STRANGER.user_id, GROUP_ID, "/id")
    # The tap is answered before any group message queued by the flood: its answer never
    # waits behind the group's budget (the seconds are in benchmarks/bench_telegram.py).
    pressed = len(sim.api.calls)
    _, query_id = await sim.api.press(
        KASI.user_id, GROUP_ID, card, sim.button_data(card, "Verifikasi")
    )
    answer = await sim.api.wait_for_call("answerCallbackQuery")
    assert answer.params["callback_query_id"] == query_id
    after = sim.api.calls[pressed:]
    # At most the flooder's prompt refusals, queued before the tap (three go at once, a
    # human pace); the rest of the flood waits its minute, the tap never does.
    assert len([c for c in after[: after.index(answer)] if c.method == "sendMessage"]) <= 3
    # Another person's intake, sent in the middle of the flood, is carded before the
    # flooder hears more than its first refusals (three go at once: a human pace).
    await sim.api.post(STAF2.user_id, GROUP_ID, form(lembaga="Bank"))
    await sim.api.wait_until(lambda: bool(cards_of(sim, 2)))
    sends = [str(c.params["text"]) for c in sim.api.calls_of("sendMessage")]
    card_2 = next(i for i, t in enumerate(sends) if "Tiket #2" in t)
    assert len([t for t in sends[:card_2] if "belum dibuat" in t]) <= 3
    # The refusals to the flooder are combined: a handful of replies, never a thousand.
    assert sim.inbox is not None
    await sim.inbox.runner.wait_handled(flood[-1][0], timeout=120)
    replies = [c for c in sim.api.calls_of("sendMessage") if "belum dibuat" in c.params["text"]]
    assert 3 <= len(replies) <= 6
    assert not any(c.params.get("text", "").startswith("ID chat") for c in sim.api.calls)
    # Every intake of the flood is deleted in the end (deletions pace apart from messages).
    await sim.api.wait_until(lambda: all(sim.message(m).deleted for _, m in flood), timeout=120)


# -- the real process: a mail server that never greets, a locked database, SIGTERM ------


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    server = FakeBotApi(token=TOKEN)
    await server.start()
    server.add_group(GROUP_ID)
    for p in (KASI, ADB, STAF):
        server.add_user(p.user_id, p.first_name, p.last_name)
    yield server
    await server.stop()


async def silent_smtp() -> tuple[asyncio.Server, int]:
    """Accepts connections and never says a word (no 220 greeting)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_stalled_mail_server_and_locked_database_never_hold_a_tap_or_sigterm(
    api: FakeBotApi, tmp_path: Path
) -> None:
    smtp, port = await silent_smtp()
    config = tmp_path / "config.toml"
    always_open_config(config, api.base_url, port, "timeout_seconds = 5\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticketbot", "run", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TICKETBOT_TELEGRAM_TOKEN": TOKEN},
    )  # fmt: skip
    try:
        await api.wait_for_call("setMyCommands", timeout=60)
        await api.post(STAF.user_id, GROUP_ID, VALID_FORM)
        card = (await api.wait_for_call("sendMessage")).result["message_id"]
        await api.press(KASI.user_id, GROUP_ID, card,
                        api.button_data(GROUP_ID, card, "Verifikasi"))  # fmt: skip
        card = (await api.wait_for_call("sendMessage", 2)).result["message_id"]  # re-posted
        await api.press(ADB.user_id, GROUP_ID, card,
                        api.button_data(GROUP_ID, card, "Konsolidasi"))  # fmt: skip
        await api.wait_for_call("editMessageText")
        # /rekap kirim against a mail server that never greets: answered all the same.
        await api.post(ADB.user_id, GROUP_ID, "/rekap kirim")
        reply = await api.wait_for_call("sendMessage", 3, timeout=60)
        assert "Rekap" in str(reply.params["text"])  # the SMTP step timed out; no hang
        # Another process holds the database's write lock for 30 s; a tap still gets its
        # answer within 2 s and takes effect once the lock is gone.
        await api.post(STAF.user_id, GROUP_ID, form(lembaga="Bank"))
        second = (await api.wait_for_call("sendMessage", 4)).result["message_id"]
        locker = sqlite3.connect(tmp_path / "office.sqlite3", isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        await api.press(KASI.user_id, GROUP_ID, second,
                        api.button_data(GROUP_ID, second, "Verifikasi"))  # fmt: skip
        # Answered while the lock still stands: it said "on its way" without the database.
        answer = await api.wait_for_call("answerCallbackQuery", 3)
        assert "Sedang diproses" in str(answer.params.get("text"))
        # SIGTERM while the database is still locked: the process ends by itself (its
        # watchdog bounds the stop; the bound is checked by waiting, not by a stopwatch).
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, stderr.decode()
        locker.execute("ROLLBACK")
        locker.close()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        smtp.close()


async def test_delivered_effects_and_handled_updates_are_pruned_after_a_week(
    sim: Simulation,
) -> None:
    from datetime import UTC, datetime, timedelta

    await sim.say(STAF, VALID_FORM)
    repo = sim.office.repo
    assert await repo.prune_delivered(datetime.now(UTC) - timedelta(days=7)) == (0, 0)
    effects, updates = await repo.prune_delivered(datetime.now(UTC) + timedelta(seconds=1))
    assert effects == 3  # the card, the Kasi's turn ping and the deletion of the intake
    assert updates == 0  # the newest update stays: it holds the offset
    assert await repo.outbox.pending_effects() == 0
    assert await repo.inbox.last_update_id() is not None


async def test_the_search_for_a_lost_post_is_paced_as_the_edits_it_is(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an unknown outcome (a 500 on the card's post) the search edits ids that may
    hold the post; Telegram counts every edit against the group, so the bot's pacer charges
    each one to the group's budget too, as it does the post."""
    pacer = sim.services.outbox.pacer
    charges: list[bool] = []
    acquire = pacer.acquire

    async def counted(chat_id: int | None, *, charged: bool) -> None:
        if chat_id == GROUP_ID:
            charges.append(charged)
        await acquire(chat_id, charged=charged)

    monkeypatch.setattr(pacer, "acquire", counted)
    sim.api.fail_next("sendMessage", 500)
    await sim.say(STAF, VALID_FORM)
    await sim.services.outbox.drained()
    searched = [c for c in sim.api.calls if c.method == "editMessageReplyMarkup"]
    posted = [c for c in sim.api.calls if c.method == "sendMessage" and not c.injected]
    assert searched  # it did search
    assert charges.count(True) == len(searched) + len(posted) + 1  # + the post that failed
    forget_injected(sim)
