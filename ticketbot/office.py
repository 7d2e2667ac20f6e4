"""Decide: the office's procedure as a service. Intake, button presses, queries.

No Telegram and no wording here: every call returns typed facts or outcomes, which
views.py turns into words and buttons. Button data is untrusted input: the ticket, the card
it was pressed on, the presser's role and the current state are all re-checked here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import holidays

from ticketbot import callback_data as cb
from ticketbot.callback_data import ButtonPress
from ticketbot.clock import Clock, now_utc
from ticketbot.config import Config
from ticketbot.domain.calendar import deadline
from ticketbot.domain.lifecycle import Action, Refusal, State, Transition
from ticketbot.domain.privacy import (
    ascii_digits,
    carries_personal_number,
    clean_text,
    clip_utf16,
    strip_separators,
)
from ticketbot.domain.validation import validate_form
from ticketbot.records import (
    Actor,
    Batch,
    Effect,
    Event,
    Ticket,
    answer_effect,
    card_effect,
    delete_effect,
    ping_effect,
    summary_effect,
)
from ticketbot.store import Stores
from ticketbot.store.rows import Deadline

REASON_LIMIT = 200  # UTF-16 units
TICKET_REF = re.compile(r"^#?\s*(\d{1,9})$")


@dataclass(frozen=True)
class Person:
    """Somebody whose turn it is; `name` None when the bot has not seen them yet."""

    user_id: int
    name: str | None
    role: str  # a Role, or "opener"


# -- intake outcomes ---------------------------------------------------------------------


@dataclass(frozen=True)
class FormRequested:
    """`/tiket` alone: answer with the form to fill in."""


@dataclass(frozen=True)
class FormRefused:
    errors: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Opened:
    ticket: Ticket


@dataclass(frozen=True)
class Duplicate:
    ticket: Ticket  # the open ticket for the same NIK and lembaga


IntakeOutcome = FormRequested | FormRefused | Opened | Duplicate


# -- press outcomes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    ticket: Ticket
    action: str


@dataclass(frozen=True)
class ReasonMenu:
    ticket: Ticket
    opened: bool  # False: closed again ("Kembali")
    action: str = Action.REJECT


@dataclass(frozen=True)
class AnswerApplied:
    mail_id: int
    moved: tuple[int, ...] | None  # None: applied before


@dataclass(frozen=True)
class BatchConfirmed:
    batch_id: int
    confirmed: tuple[int, ...]


@dataclass(frozen=True)
class NikShown:
    ticket: Ticket


@dataclass(frozen=True)
class PhotoShown:
    """The presser may see the intake photo: it goes to their private chat (recorded)."""

    ticket: Ticket
    user_id: int


@dataclass(frozen=True)
class Refused:
    ticket: Ticket
    refusal: Refusal
    action: str | None  # None: not even a role of the office
    last: Event | None = None  # who moved the ticket on, for WRONG_STATE


@dataclass(frozen=True)
class ReasonHasNumber:
    """A free-text reason carrying a full NIK/KK: never stored; its message is deleted."""


@dataclass(frozen=True)
class Invalid:
    """Button data that is not ours, stale, or forged."""


PressOutcome = (
    Applied
    | ReasonMenu
    | BatchConfirmed
    | AnswerApplied
    | NikShown
    | PhotoShown
    | Refused
    | ReasonHasNumber
    | Invalid
)


# -- facts for views -----------------------------------------------------------------------


@dataclass(frozen=True)
class CardFacts:
    ticket: Ticket
    events: list[Event]
    turn: list[Person]
    due: datetime | None
    left_minutes: float  # work minutes to the deadline; negative once overdue
    menu: str | None  # the action whose reasons are shown on the card
    dwh_workdays: float | None  # how long it has waited on the central DWH admin
    earlier: list[Ticket] = field(default_factory=list)  # rejected/cancelled before
    earlier_reasons: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchFacts:
    batch: Batch
    tickets: list[Ticket]
    waiting: int  # still waiting for the DWH confirmation
    turn: list[Person]


@dataclass(frozen=True)
class TicketStatus:
    ticket: Ticket
    events: list[Event]
    due: datetime | None
    overdue: bool


@dataclass(frozen=True)
class TicketsOfNik:
    nik: str
    tickets: list[Ticket]


@dataclass(frozen=True)
class StatusQuery:
    """Nothing found (or nothing asked): what was looked for."""

    ticket_id: str | None = None
    nik: str | None = None


StatusOutcome = TicketStatus | TicketsOfNik | StatusQuery


# -- facts of a reminder round (reminders.py) ------------------------------------------


@dataclass(frozen=True)
class Overdue:
    ticket: Ticket
    due: datetime
    late_minutes: float
    round: int  # which reminder this is for this deadline (1 = the first)


@dataclass(frozen=True)
class Unconfirmed:
    batch: Batch
    waiting: int  # tickets still waiting for the DWH's confirmation
    age_workdays: float
    round: int


@dataclass
class Reminder:
    people: list[Person]
    escalated_to: list[Person] = field(default_factory=list)
    overdue: list[Overdue] = field(default_factory=list)
    unconfirmed: list[Unconfirmed] = field(default_factory=list)


QUEUE_SHOWN = 45  # /antrian rows read at most: one Telegram message never holds more


@dataclass(frozen=True)
class QueueRow:
    t: Ticket
    deadline: datetime | None
    overdue: bool
    overdue_minutes: float
    dwh_workdays: float | None = None


@dataclass(frozen=True)
class QueueFacts:
    by_step: list[tuple[str, list[QueueRow]]]  # steps with overdue tickets first
    total: int
    overdue: int


def deadline_of(config: Config) -> Deadline:
    """The deadline of the step a ticket enters, by the office's calendar and standards
    (stored with every transition)."""
    procedure, calendar, sla = config.procedure, config.calendar, config.sla

    def rule(state: str, since: datetime | None) -> datetime | None:
        return deadline(procedure.step(state).standard, since, calendar, sla)

    return rule


@dataclass
class Office:
    config: Config
    repo: Stores
    clock: Clock = field(default=now_utc)
    _names: dict[int, str] = field(default_factory=dict)
    group_id: int = 0  # the configured group, or the supergroup Telegram moved it to

    def __post_init__(self) -> None:
        self.group_id = self.group_id or self.config.telegram.group_id
        self.procedure = self.config.procedure

    def deadline_rule(self) -> str:
        """What the stored deadlines were computed with: the calendar, the standards and the
        holidays package (a new release can add a year's cuti bersama)."""
        text = f"{self.config.calendar!r}|{self.config.sla!r}|{holidays.__version__}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    async def remember(self, actor: Actor) -> None:
        """Store a staff member's display name once per change (cards mention by name)."""
        if actor.user_id is None or self._names.get(actor.user_id) == actor.name:
            return
        await self.repo.people.remember_person(actor.user_id, actor.name, self.clock())
        self._names[actor.user_id] = actor.name

    # -- the group -----------------------------------------------------------------------

    async def find_group(self) -> int:
        """At start-up: follow a supergroup upgrade recorded while the config still names
        the old id."""
        moved_from = await self.repo.db.setting("group_id_was")
        moved_to = await self.repo.db.setting("group_id")
        if moved_to and moved_from == str(self.config.telegram.group_id):
            self.group_id = int(moved_to)
        return self.group_id

    async def move_group(self, old_id: int, new_id: int) -> bool:
        """Telegram upgraded our group to a supergroup; False if it is not our group."""
        if old_id != self.group_id or new_id == old_id:
            return False
        await self.repo.people.move_group(old_id, new_id)
        self.group_id = new_id
        return True

    # -- intake -------------------------------------------------------------------------

    async def intake(
        self,
        form_text: str,
        actor: Actor,
        chat_id: int,
        photo_file_id: str | None = None,
        *,
        document: bool = False,
        message_id: int | None = None,
        remove_message: bool = False,
    ) -> IntakeOutcome:
        """A new ticket commits its card (and the deletion of the intake message that
        carried the full NIK/KK) in the same transaction. The same intake message seen
        again (a replayed update) is the same ticket."""
        if not form_text.strip():
            return FormRequested()
        result = validate_form(form_text, self.config.lembaga)
        if result.form is None:
            return FormRefused(result.errors, result.warnings)

        def effects(ticket_id: int) -> list[Effect]:
            implied = [card_effect(ticket_id), ping_effect(ticket_id)]
            if remove_message and message_id is not None:
                implied.append(delete_effect(chat_id, message_id))
            return implied

        ticket, created = await self.repo.tickets.open_ticket(
            result.form, actor, chat_id, self.clock(), photo_file_id, document=document,
            intake_message_id=message_id, effects=effects,
        )  # fmt: skip
        return Duplicate(ticket) if created is False else Opened(ticket)

    # -- what a card shows ------------------------------------------------------------------

    async def card_facts(self, ticket: Ticket) -> CardFacts:
        events = await self.repo.events.events_for(ticket.id)
        due = self.due(ticket)
        left = self.config.calendar.work_minutes_between(self.clock(), due) if due else 0.0
        earlier = await self.repo.tickets.closed_before(ticket)
        return CardFacts(
            ticket=ticket,
            events=events,
            turn=await self.turn(ticket),
            due=due,
            left_minutes=left,
            menu=self.open_menu(ticket),
            dwh_workdays=self.dwh_workdays(ticket),
            earlier=earlier,
            earlier_reasons={
                t.id: await self.repo.events.closing_reason(t.id) or "" for t in earlier
            },
        )

    async def turn(self, ticket: Ticket) -> list[Person]:
        """Whose turn it is, from the table of steps: the step's roles, or the opener."""
        step = self.procedure.step(ticket.state)
        roles = self.config.roles
        pairs = [(i, str(r)) for r in sorted(step.turn) for i in sorted(roles.get(r, ()))]
        if step.turn_opener:
            pairs.append((ticket.opened_by, "opener"))
        names = await self.repo.people.names_of(i for i, _ in pairs)
        return [Person(i, names.get(i), role) for i, role in pairs]

    async def people_of(self, roles: Iterable[str]) -> list[Person]:
        """Everyone in these roles, named as the bot last saw them."""
        order = self.procedure.role_names()
        ranked = sorted(roles, key=lambda r: order.index(r) if r in order else len(order))
        pairs = [(i, r) for r in ranked for i in sorted(self.config.roles.get(r, ()))]
        names = await self.repo.people.names_of(i for i, _ in pairs)
        return [Person(i, names.get(i), r) for i, r in pairs]

    def open_menu(self, ticket: Ticket) -> str | None:
        """The action whose reasons the card shows, if it can still happen."""
        action = ticket.menu_action
        if action is None or self.procedure.transition_for(action, ticket.state) is None:
            return None
        return action

    def dwh_workdays(self, ticket: Ticket) -> float | None:
        """Working days a ticket has waited on the central DWH admin (None: it is not)."""
        if ticket.state != State.SENT_TO_DWH:
            return None
        cal = self.config.calendar
        return cal.work_minutes_between(ticket.state_since, self.clock()) / cal.day_minutes

    def due(self, ticket: Ticket) -> datetime | None:
        standard = self.procedure.step(ticket.state).standard
        return deadline(standard, ticket.step_since, self.config.calendar, self.config.sla)

    async def batch_facts(self, batch: Batch) -> BatchFacts:
        tickets = await self.repo.batches.batch_tickets(batch.id)
        return BatchFacts(
            batch=batch,
            tickets=tickets,
            waiting=sum(t.state == State.SENT_TO_DWH for t in tickets),
            turn=await self.people_of(self.procedure.step(State.SENT_TO_DWH).turn),
        )

    # -- button presses -----------------------------------------------------------------

    async def press(
        self, press: ButtonPress | None, actor: Actor, chat_id: int, message_id: int | None
    ) -> PressOutcome:
        """Everything a tap can do."""
        if press is None:
            return Invalid()
        if press.code == cb.CONFIRM_BATCH:
            return await self._confirm_batch(press.target_id, actor, chat_id, message_id)
        if press.code == cb.APPLY_ANSWER:
            return await self._apply_answer(press.target_id, actor, chat_id, message_id)
        ticket = await self.repo.tickets.get_ticket(press.target_id)
        lost = ticket is not None and ticket.card_message_id is None
        if lost and ticket is not None and chat_id == ticket.chat_id and message_id is not None:
            # The card is in the group but its post's answer was lost (a crash, a timeout):
            # the tap says where it is.
            await self.repo.tickets.set_card_message(ticket.id, message_id)
            ticket = await self.repo.tickets.get_ticket(ticket.id)
        if ticket is None or ticket.chat_id != chat_id or message_id is None:
            return Invalid()
        assert actor.user_id is not None
        roles = self.config.roles_of(actor.user_id)
        if (
            ticket.card_message_id != message_id
            and not await self._being_posted(ticket, message_id)
            and not await self._on_summary(ticket, message_id)
        ):
            if not await self.repo.outbox.replaced_card(chat_id, message_id, ticket.id):
                return Invalid()
            # The card it was, re-posted since at a hand-off (its deletion may still be on
            # its way): a button there acts for nobody; its presser hears what happened, or
            # that it is not theirs.
            action = self.procedure.action_of_code(press.code)
            if (
                action is not None
                and self.procedure.may_perform(
                    action, ticket.state, roles, is_opener=actor.user_id == ticket.opened_by
                )
                == Refusal.NOT_ALLOWED
            ):
                return await self._refused(ticket, action, Refusal.NOT_ALLOWED)
            return await self._refused(ticket, action or Action.VIEW_NIK, Refusal.WRONG_STATE)
        if press.code in (cb.VIEW_NIK, cb.VIEW_PHOTO):
            return await self._view_nik(ticket, actor, roles, photo=press.code == cb.VIEW_PHOTO)
        if press.menu is not None:
            # A reason or "back" belongs to the menu that showed it: the same action, and the
            # same opening of it, still open on the card.
            action = self.procedure.action_of_code(press.menu.code)
            menu = self.open_menu(ticket)
            if action is None or action != menu or press.menu.round != ticket.menu_round:
                return Invalid()
        else:
            action = self.procedure.action_of_code(press.code)
            if action is None:
                return Invalid()
        decision = self.procedure.may_perform(
            action, ticket.state, roles, is_opener=actor.user_id == ticket.opened_by
        )
        if not isinstance(decision, Transition):
            return await self._refused(ticket, action, decision)
        if press.code == cb.BACK:
            card = [card_effect(ticket.id, touched=True)]
            await self.repo.tickets.close_menu(ticket.id, ticket.menu_round, card)
            return ReasonMenu(ticket, False, action)
        if press.code == cb.REASON:
            reasons = self.config.reasons_of(decision)
            assert press.index is not None
            if not decision.needs_reason or press.index >= len(reasons):
                return Invalid()
            return await self._apply(ticket, decision, actor, reasons[press.index])
        if decision.needs_reason:
            # The action ends with a reason: its menu opens on the card.
            if not await self.repo.tickets.open_menu(ticket, action, [card_effect(ticket.id)]):
                return await self._refused(ticket, action, Refusal.WRONG_STATE)
            return ReasonMenu(ticket, True, action)
        return await self._apply(ticket, decision, actor, None)

    async def carried_batch(self, ticket: Ticket) -> Batch | None:
        """The ticket's batch, when its summary carries its tickets' buttons."""
        if ticket.batch_id is None:
            return None
        batch = await self.repo.batches.get_batch(ticket.batch_id)
        return batch if batch is not None and batch.carried else None

    async def _on_summary(self, ticket: Ticket, message_id: int) -> bool:
        """A tap on the ticket's row of the summary that carries its batch: as on its card."""
        batch = await self.carried_batch(ticket)
        return batch is not None and batch.summary_message_id == message_id

    async def _summary_follows(self, ticket: Ticket, transition: Transition) -> list[Effect]:
        """The summary that carries the ticket's batch is edited when the ticket leaves the
        batch, or when no other ticket keeps buttons there; not at each tap (one group
        message per ticket is what carrying saves). A stale row still answers who did it.
        Asked inside the move's transaction: two taps at once cannot both think the other
        keeps the summary's buttons."""
        batch = await self.carried_batch(ticket)
        if batch is None:
            return []
        if not transition.leaves_batch:
            others = await self.repo.batches.batch_tickets(batch.id)
            if any(t.id != ticket.id and self.procedure.row_actions(t.state) for t in others):
                return []
        return [summary_effect(batch.id)]

    async def _being_posted(self, ticket: Ticket, message_id: int) -> bool:
        """A tap on the card a hand-off has just re-posted: before the post is recorded (its
        intent is: the search for a lost post would start there), or recorded since the
        ticket was read."""
        if await self.repo.outbox.posting_card(ticket.chat_id, ticket.id, message_id):
            return True
        now = await self.repo.tickets.get_ticket(ticket.id)
        return now is not None and now.card_message_id == message_id

    async def _confirm_batch(
        self, batch_id: int, actor: Actor, chat_id: int, message_id: int | None
    ) -> PressOutcome:
        """The summary's "DWH" button: the central admin confirmed the whole batch."""
        batch = await self.repo.batches.get_batch(batch_id)
        lost = batch is not None and batch.summary_message_id is None
        if lost and batch is not None and chat_id == self.group_id and message_id is not None:
            # Its post's answer was lost: the tap says where it is.
            await self.repo.batches.set_batch_summary(batch.id, message_id)
            batch = await self.repo.batches.get_batch(batch.id)
        if batch is None or chat_id != self.group_id or batch.summary_message_id != message_id:
            return Invalid()
        assert actor.user_id is not None
        roles = self.config.roles_of(actor.user_id)
        moves = []
        for ticket in await self.repo.batches.batch_tickets(batch.id):
            decision = self.procedure.may_perform(
                Action.CONFIRM_DWH, ticket.state, roles, is_opener=False
            )
            if decision == Refusal.NOT_ALLOWED:
                return Refused(ticket, Refusal.NOT_ALLOWED, Action.CONFIRM_DWH)
            if isinstance(decision, Transition):
                moves.append((ticket.id, decision))
        # All at once: the desk hears of the whole batch in one ping.
        confirmed = await self.repo.tickets.apply_each(
            moves, actor, self.clock(), lambda t: [card_effect(t), ping_effect(t)]
        )
        await self.repo.outbox.enqueue([summary_effect(batch.id)], self.clock())
        return BatchConfirmed(batch.id, tuple(confirmed))

    async def _apply_answer(
        self, mail_id: int, actor: Actor, chat_id: int, message_id: int | None
    ) -> PressOutcome:
        """ "Terapkan" under a DWH admin's answer: its proposal, by whoever may press "DWH"."""
        mail = await self.repo.mails.get(mail_id)
        if (
            mail is None
            or mail.proposal is None
            or chat_id != self.group_id
            or message_id is None
            or mail.group_message_id not in (None, message_id)
        ):
            return Invalid()  # fmt: skip
        assert actor.user_id is not None
        roles = self.config.roles_of(actor.user_id)
        if (
            self.procedure.may_perform(
                Action.CONFIRM_DWH, State.SENT_TO_DWH, roles, is_opener=False
            )
            == Refusal.NOT_ALLOWED
        ):
            tickets = await self.repo.batches.batch_tickets(mail.batch_id or 0)
            ticket = tickets[0] if tickets else None
            if ticket is None:
                return Invalid()
            return Refused(ticket, Refusal.NOT_ALLOWED, Action.CONFIRM_DWH)
        confirm = self.procedure.transition_for(Action.CONFIRM_DWH, State.SENT_TO_DWH)
        resync = self.procedure.transition_for(Action.RESYNC, State.SENT_TO_DWH)
        assert confirm is not None
        assert resync is not None
        batch = [summary_effect(mail.batch_id)] if mail.batch_id else []
        moved = await self.repo.mails.apply(
            mail, actor, confirm, resync, self.clock(),
            # The answer loses its button, the cards and pings follow, the summary counts.
            lambda moved: [answer_effect(mail.id), *batch,
                           *(e for t in moved for e in (card_effect(t), ping_effect(t)))],
        )  # fmt: skip
        return AnswerApplied(mail.id, tuple(moved) if moved is not None else None)

    async def _apply(
        self, ticket: Ticket, transition: Transition, actor: Actor, detail: str | None
    ) -> PressOutcome:
        # The transition and what it implies in the group commit together: the card, and a
        # ping to whoever's turn it now is (Telegram does not notify on edits).
        implied = [card_effect(ticket.id), ping_effect(ticket.id)]
        outcome = await self.repo.tickets.apply(
            ticket.id, transition, actor, self.clock(), detail, implied,
            follow=lambda: self._summary_follows(ticket, transition),
        )  # fmt: skip
        if not outcome.applied:
            return Refused(
                outcome.ticket, Refusal.WRONG_STATE, transition.action, outcome.last_event
            )
        return Applied(outcome.ticket, transition.action)

    async def _view_nik(
        self, ticket: Ticket, actor: Actor, roles: frozenset[str], *, photo: bool = False
    ) -> PressOutcome:
        """The full NIK/KK (a pop-up) or the intake photo (a private message), to office
        staff only, while the ticket is open; every view is recorded."""
        if not self.procedure.may_view_nik(ticket.state, roles):
            if roles:
                return Refused(ticket, Refusal.CLOSED, Action.VIEW_NIK)
            return Refused(ticket, Refusal.NOT_ALLOWED, None)
        if photo and ticket.photo_file_id is None:
            return Invalid()
        assert actor.user_id is not None
        kind = Action.VIEW_PHOTO if photo else Action.VIEW_NIK
        await self.repo.events.record_event(ticket.id, actor, kind, self.clock())
        return PhotoShown(ticket, actor.user_id) if photo else NikShown(ticket)

    async def _refused(self, ticket: Ticket, action: str, refusal: Refusal) -> Refused:
        last = None
        if refusal == Refusal.WRONG_STATE:
            last = await self.repo.events.last_transition(ticket.id)
        return Refused(ticket, refusal, action, last)

    # -- a free-text rejection reason, by replying to the card ------------------------

    async def reply_to_card(
        self, chat_id: int, card_message_id: int, actor: Actor, text: str
    ) -> PressOutcome | None:
        """A reply to a card whose reasons are shown ends that action with the reply as
        its reason ("Tolak", "Kembalikan", "Batal", "Ulang")."""
        ticket = await self.repo.tickets.ticket_by_card(chat_id, card_message_id)
        if ticket is None:
            return None
        menu = self.open_menu(ticket)
        if menu is None:
            return None
        assert actor.user_id is not None
        decision = self.procedure.may_perform(
            menu, ticket.state, self.config.roles_of(actor.user_id),
            is_opener=actor.user_id == ticket.opened_by,
        )  # fmt: skip
        if not isinstance(decision, Transition):
            return None
        reason = clean_text(text)
        if carries_personal_number(reason):
            return ReasonHasNumber()
        if not reason:
            return None
        return await self._apply(ticket, decision, actor, clip_utf16(reason, REASON_LIMIT))

    # -- /status and /antrian -------------------------------------------------------------

    async def status(self, query: str) -> StatusOutcome:
        """`/status #N` or `/status <NIK>`: the ticket and its whole history."""
        query = query.strip()
        ref = TICKET_REF.match(query)
        digits = ascii_digits(strip_separators(query))
        if ref:
            ticket = await self.repo.tickets.get_ticket(int(ref[1]))
            return await self.ticket_status(ticket) if ticket else StatusQuery(ticket_id=ref[1])
        if len(digits) == 16 and digits.isascii() and digits.isdigit():
            tickets = await self.repo.tickets.tickets_by_nik(digits)
            if not tickets:
                return StatusQuery(nik=digits)
            if len(tickets) == 1:
                return await self.ticket_status(tickets[0])
            return TicketsOfNik(digits, tickets)
        return StatusQuery()

    async def ticket_status(self, ticket: Ticket) -> TicketStatus:
        due = self.due(ticket)
        return TicketStatus(
            ticket,
            await self.repo.events.events_for(ticket.id),
            due,
            due is not None and due < self.clock(),
        )

    async def queue(self) -> QueueFacts:
        """`/antrian`: open tickets by step (the table's queue order), overdue first; reads
        the counts, then only as many tickets as one message can show."""
        now = self.clock()
        counts = await self.repo.tickets.queue_counts(now)
        # Steps with overdue tickets first, then the order of the SOP.
        queue = self.procedure.queue_order
        order = sorted(queue, key=lambda state: not counts.get(state, (0, 0))[1])
        by_step, room = [], QUEUE_SHOWN
        for state in order:
            rows = []
            wanted = min(room, counts.get(state, (0, 0))[0])
            for t in await self.repo.tickets.queue_tickets(state, wanted) if wanted else []:
                due = self.due(t)
                late = -self.config.calendar.work_minutes_between(now, due) if due else 0.0
                rows.append(QueueRow(t, due, due is not None and due < now, max(late, 0.0),
                                     self.dwh_workdays(t)))  # fmt: skip
            room -= len(rows)
            by_step.append((state, rows))
        total = sum(n for n, _ in counts.values())
        return QueueFacts(by_step, total, sum(late for _, late in counts.values()))

    async def newly_overdue(self) -> list[int]:
        """Open tickets whose step deadline has passed and whose card has not yet said so:
        their cards are queued for a re-render, once (remembered in the database)."""
        return await self.repo.tickets.newly_overdue(
            self.clock(), lambda ids: [card_effect(i) for i in ids]
        )
