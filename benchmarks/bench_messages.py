"""Benchmark: what one ticket costs the group's budget (Telegram: 20 messages a minute in a
group, sends and edits alike; deletions are outside it). Prints a table, asserts nothing.

    .venv/bin/python benchmarks/bench_messages.py

The happy path through the real bot and the strict Bot API fake (Simulation): intake,
Verifikasi, Konsolidasi, `/rekap kirim`, DWH, Diinformasikan; one ticket alone, and 20 that
go together (one recap, confirmed by the summary's DWH button); with the group pings, and
with `reminders.private_pings` for people who have a private chat with the bot.
A batch of more than five is carried by its summary (the desk informs from its rows).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import form
from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF, Simulation
from ticketbot.records import CARDS_FOLLOW_UP_TO

COUNTED = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto",
           "sendDocument")  # fmt: skip


def group_messages(sim: Simulation) -> int:
    return sum(1 for c in sim.api.calls_of(*COUNTED) if int(c.params["chat_id"]) == GROUP_ID)


async def happy_path(count: int, *, private: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = {"reminders__private_pings": private}
        async with Simulation(Path(tmp), settings=settings) as sim:
            if private:
                for person in (KASI, ADB, STAF):
                    await sim.say(person, "/start", chat_id=person.user_id)
            before = group_messages(sim)
            cards = []
            for i in range(count):
                await sim.say(STAF, form(nik=f"127301450685{i + 1:04d}"))
                cards.append(sim.last_bot_message().message_id)
            for card in cards:
                await sim.tap(KASI, card, "Verifikasi")
            for card in cards:
                await sim.tap(ADB, card, "Konsolidasi")
            await sim.say(ADB, "/rekap kirim")
            if count == 1:
                await sim.tap(ADB, cards[0], "DWH")
            else:
                [batch] = await sim.services.repo.batches.batches("sent")
                assert batch.summary_message_id is not None
                await sim.tap(ADB, batch.summary_message_id, "DWH")
                await sim.services.outbox.drained()  # the summary now has the desk's rows
            if count <= CARDS_FOLLOW_UP_TO:
                for card in cards:
                    await sim.tap(STAF, card, "Diinformasikan")
            else:  # the summary carries the batch: the desk informs from its rows (and
                # from the cards of any that did not fit on it)
                assert batch.summary_message_id is not None
                rows = str(sim.api.message(GROUP_ID, batch.summary_message_id).reply_markup)
                for ticket_id, card in enumerate(cards, 1):
                    if f"#{ticket_id} 📣" in rows:
                        await sim.tap(STAF, batch.summary_message_id, f"#{ticket_id} 📣")
                    else:
                        await sim.tap(STAF, card, "Diinformasikan")
            await sim.services.outbox.drained()
            states = {t.state for t in await sim.services.repo.batches.batch_tickets(1)}
            assert states == {"done"}, states
            return (group_messages(sim) - before) / count


async def main() -> None:
    print("group messages per ticket (sends + edits), happy path")
    print(f"{'':28}{'alone':>8}{'20 together':>14}")
    for private in (False, True):
        alone = await happy_path(1, private=private)
        together = await happy_path(20, private=private)
        label = "private pings" if private else "group pings"
        print(f"{label:28}{alone:>8.2f}{together:>14.2f}")


if __name__ == "__main__":
    asyncio.run(main())
