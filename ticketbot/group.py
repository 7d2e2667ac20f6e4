"""What the group must show, queued in the durable outbox (outbox.py delivers it).

Handlers and jobs say *what* should appear (a card re-rendered, a reply, a notice, a
message deleted); nothing here calls Telegram, so a crash can lose none of it.
"""

from __future__ import annotations

from telegram import Message

from ticketbot.domain.privacy import carries_full_number
from ticketbot.recap import NewsKind, RecapNews
from ticketbot.records import Effect, card_effect, delete_effect, send_effect
from ticketbot.services import Services


def reply(s: Services, message: Message, text: str, key: str, *, refusal: bool = False) -> Effect:
    """A reply to a person's message, once per `key` (the update that asked). A refusal
    (a form turned down) is combined with that person's other refusals."""
    person = message.from_user.id if refusal and message.from_user else None
    return send_effect(message.chat_id, text, key, reply_to=message.message_id,
                       person_id=person)  # fmt: skip


def removal(s: Services, message: Message) -> list[Effect]:
    """Delete a person's message that carries a full NIK/KK (SPEC §3)."""
    text = message.text or message.caption or ""
    if s.config.delete_intake and carries_full_number(text):
        return [delete_effect(message.chat_id, message.message_id)]
    return []


def notice(s: Services, text: str, key: str) -> Effect:
    """A notice to the group, once per `key`."""
    return send_effect(s.office.group_id, text, key)


async def show_cards(s: Services, ticket_ids: list[int]) -> None:
    await s.repo.outbox.enqueue([card_effect(i) for i in ticket_ids])


async def announce(s: Services, news: list[RecapNews]) -> None:
    """Tell the group what the recap desk did (a sent batch's cards and summary were queued
    with the batch itself): late and failed recaps, once each."""
    effects = []
    for item in news:
        if item.kind == NewsKind.SENT:
            continue
        name = "late" if item.kind == NewsKind.LATE else "failed"
        text = s.texts.render(f"telegram/recap_{name}.html", batch=item.batch)
        effects.append(notice(s, text, f"recap-{name}:{item.batch.id}:{item.batch.attempts}"))
    await s.repo.outbox.enqueue(effects)
