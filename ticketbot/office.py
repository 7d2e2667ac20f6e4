"""The office's procedure as a service: intake, button presses, card views, queries.

No Telegram import: handlers translate updates into these calls and the results back into
Bot API calls. Buttons are described neutrally (label + callback data or URL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from ticketbot import callback_data as cb
from ticketbot.callback_data import ButtonPress, Press
from ticketbot.clock import Clock, now_utc
from ticketbot.config import Config
from ticketbot.domain.calendar import deadline
from ticketbot.domain.lifecycle import (
    TRANSITIONS,
    Action,
    Refusal,
    Role,
    State,
    Transition,
    may_perform,
    may_view_nik,
)
from ticketbot.domain.privacy import (
    ascii_digits,
    carries_full_number,
    clean_text,
    clip_utf16,
    redact_numbers,
    strip_separators,
)
from ticketbot.domain.validation import region_warnings, validate_form
from ticketbot.repository import Actor, Batch, Event, Repository, Ticket
from ticketbot.texts import Texts, fit_message

# Not transitions, but recorded: the Kasi opened or closed the reason menu of "Tolak".
REJECT_MENU, REJECT_BACK = "reject_menu", "reject_back"
# Every ticket button and the action it asks for (VIEW_NIK and CONFIRM_BATCH are not
# transitions of the pressed ticket and are handled before this table is read).
PRESS_ACTIONS = {
    Press.VERIFY: Action.VERIFY,
    Press.REJECT_MENU: Action.REJECT,
    Press.REJECT_REASON: Action.REJECT,
    Press.REJECT_BACK: Action.REJECT,
    Press.CANCEL: Action.CANCEL,
    Press.SYNC: Action.SYNC_AT_KONSOLIDASI,
    Press.CONFIRM_DWH: Action.CONFIRM_DWH,
    Press.INFORM: Action.INFORM,
}
TURN_ROLES = {State.NEW: Role.KASI, State.VERIFIED: Role.ADB, State.SENT_TO_DWH: Role.ADB}
QUEUE_ORDER = (State.NEW, State.VERIFIED, State.SYNCED, State.SENT_TO_DWH,
               State.READY_TO_INFORM, State.REJECTED)  # fmt: skip
REASON_LIMIT = 200
TICKET_REF = re.compile(r"^#?\s*(\d{1,9})$")


@dataclass(frozen=True)
class Button:
    label: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class CardView:
    text: str
    buttons: tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class IntakeOutcome:
    """Exactly one of: `ticket` (created), `duplicate`, or `reply` text for the staff."""

    reply: str | None = None
    ticket: Ticket | None = None
    duplicate: Ticket | None = None


@dataclass(frozen=True)
class PressOutcome:
    answer: str
    alert: bool = False
    refresh: tuple[int, ...] = ()  # tickets whose cards must be re-rendered
    delete_source: bool = False  # the person's message carried a full NIK/KK
    refresh_batch: int | None = None  # a recap summary to re-render


@dataclass(frozen=True)
class QueueRow:
    t: Ticket
    deadline: datetime | None
    overdue: bool
    overdue_minutes: float


@dataclass(frozen=True)
class Person:
    user_id: int
    name: str


@dataclass
class Office:
    config: Config
    repo: Repository
    texts: Texts
    clock: Clock = field(default=now_utc)
    _names: dict[int, str] = field(default_factory=dict)
    group_id: int = 0  # the configured group, or the supergroup Telegram moved it to

    def __post_init__(self) -> None:
        self.group_id = self.group_id or self.config.telegram.group_id

    async def find_group(self) -> int:
        """At start-up: follow a supergroup upgrade recorded while the config still names
        the old id."""
        moved_from = await self.repo.setting("group_id_was")
        moved_to = await self.repo.setting("group_id")
        if moved_to and moved_from == str(self.config.telegram.group_id):
            self.group_id = int(moved_to)
        return self.group_id

    async def move_group(self, old_id: int, new_id: int) -> bool:
        """Telegram upgraded our group to a supergroup; False if it is not our group."""
        if old_id != self.group_id or new_id == old_id:
            return False
        await self.repo.move_group(old_id, new_id)
        self.group_id = new_id
        return True

    async def remember(self, actor: Actor) -> None:
        """Store a staff member's display name once per change (cards mention by name)."""
        if actor.user_id is None or self._names.get(actor.user_id) == actor.name:
            return
        await self.repo.remember_person(actor.user_id, actor.name, self.clock())
        self._names[actor.user_id] = actor.name

    # -- intake -------------------------------------------------------------------------

    async def intake(
        self, form_text: str, actor: Actor, chat_id: int, photo_file_id: str | None = None
    ) -> IntakeOutcome:
        if not form_text.strip():
            return IntakeOutcome(reply=self.texts.render(
                "telegram/intake_form.html", lembaga=list(self.config.lembaga.names)
            ))  # fmt: skip
        result = validate_form(form_text, self.config.lembaga)
        if result.form is None:
            return IntakeOutcome(reply=self.texts.render(
                "telegram/intake_errors.html", errors=result.errors, warnings=result.warnings
            ))  # fmt: skip
        ticket, created = await self.repo.open_ticket(
            result.form, actor, chat_id, self.clock(), photo_file_id
        )
        if not created:
            return IntakeOutcome(
                reply=self.texts.render(
                    "telegram/intake_duplicate.html",
                    t=ticket,
                    state_label=self.texts.label("states", ticket.state),
                ),
                duplicate=ticket,
            )
        return IntakeOutcome(ticket=ticket)

    # -- the card -----------------------------------------------------------------------

    async def card(self, ticket: Ticket) -> CardView:
        events = await self.repo.events_for(ticket.id)
        choosing = ticket.state == State.NEW and _reject_menu_open(events)
        due = self.due(ticket)
        now = self.clock()
        left = self.config.calendar.work_minutes_between(now, due) if due else 0.0
        text = self.texts.render(
            "telegram/card.html",
            t=ticket,
            state_label=self.texts.label("states", ticket.state),
            warnings=region_warnings(ticket.nik, "NIK") + region_warnings(ticket.kk, "KK"),
            history=[
                {
                    "at": e.at,
                    "label": self.texts.label("actions", e.action),
                    "actor_name": e.actor_name,
                }
                for e in events
                if e.to_state is not None
            ],
            deadline=due,
            step=self.texts.label("steps", ticket.state),
            left_minutes=max(left, 0),
            overdue_minutes=-left if due and left < 0 else 0,
            waiting_dwh=ticket.state == State.SENT_TO_DWH,
            turn=await self.turn(ticket),
            choosing_reason=choosing,
        )
        return CardView(text, self._buttons(ticket, choosing))

    async def turn(self, ticket: Ticket) -> list[Person]:
        """Who the card mentions: the role whose step it is, or the opener to inform."""
        role = TURN_ROLES.get(ticket.state)
        if role is not None:
            ids = sorted(self.config.roles[role])
        elif ticket.state in (State.READY_TO_INFORM, State.REJECTED):
            ids = [ticket.opened_by]
        else:
            return []
        names = await self.repo.names_of(ids)
        title = self.texts.label("roles", role or "")
        return [Person(i, names.get(i, title)) for i in ids]

    def _buttons(self, t: Ticket, choosing: bool) -> tuple[tuple[Button, ...], ...]:
        a = self.texts.answer
        nik = Button(a("button_nik"), cb.encode(Press.VIEW_NIK, t.id))
        if choosing:
            reasons = tuple(
                (Button(a("button_reason", n=i + 1, reason=r)[:60],
                        cb.encode(Press.REJECT_REASON, t.id, i)),)
                for i, r in enumerate(self.config.reject_reasons)
            )  # fmt: skip
            return (*reasons, (Button(a("button_back"), cb.encode(Press.REJECT_BACK, t.id)),))
        if t.state == State.NEW:
            return (
                (Button(a("button_verify"), cb.encode(Press.VERIFY, t.id)),
                 Button(a("button_reject"), cb.encode(Press.REJECT_MENU, t.id))),
                (Button(a("button_cancel"), cb.encode(Press.CANCEL, t.id)), nik),
            )  # fmt: skip
        if t.state == State.VERIFIED:
            return ((Button(a("button_sync"), cb.encode(Press.SYNC, t.id)),), (nik,))
        if t.state == State.SYNCED:
            return ((nik,),)
        if t.state == State.SENT_TO_DWH:
            return ((Button(a("button_dwh"), cb.encode(Press.CONFIRM_DWH, t.id)),), (nik,))
        if t.state in (State.READY_TO_INFORM, State.REJECTED):
            return (
                (Button(a("button_whatsapp"), url=self.whatsapp_url(t)),
                 Button(a("button_inform"), cb.encode(Press.INFORM, t.id))),
                (nik,),
            )  # fmt: skip
        return ()

    def whatsapp_url(self, t: Ticket) -> str:
        """wa.me link with a prefilled message; it names the ticket, never the NIK or KK."""
        if t.state == State.REJECTED:
            message = self.texts.answer(
                "whatsapp_rejected", ticket_id=t.id, office=self.config.office.name,
                reason=t.reject_reason or "",
            )  # fmt: skip
        else:
            message = self.texts.answer(
                "whatsapp_done", ticket_id=t.id, office=self.config.office.name, lembaga=t.lembaga
            )
        # Stored text is checked at the door; this guards records older than that check.
        return f"https://wa.me/{t.phone.lstrip('+')}?text={quote(redact_numbers(message))}"

    # -- button presses -----------------------------------------------------------------

    async def press(
        self, press: ButtonPress | None, actor: Actor, chat_id: int, message_id: int | None
    ) -> PressOutcome:
        """Everything a tap can do. Button data is untrusted: the ticket, the card it was
        pressed on, the presser's role and the current state are all re-checked here."""
        invalid = PressOutcome(self.texts.answer("invalid"))
        if press is None:
            return invalid
        if press.press == Press.CONFIRM_BATCH:
            return await self._confirm_batch(press.target_id, actor, chat_id, message_id)
        ticket = await self.repo.get_ticket(press.target_id)
        if ticket is None or (ticket.chat_id, ticket.card_message_id) != (chat_id, message_id):
            return invalid
        assert actor.user_id is not None
        roles = self.config.roles_of(actor.user_id)
        is_opener = actor.user_id == ticket.opened_by
        if press.press == Press.VIEW_NIK:
            return await self._view_nik(ticket, actor, roles)
        action = PRESS_ACTIONS[press.press]
        decision = may_perform(action, ticket.state, roles, is_opener=is_opener)
        if not isinstance(decision, Transition):
            return await self._refusal(ticket, action, decision)
        if press.press in (Press.REJECT_MENU, Press.REJECT_BACK):
            kind = REJECT_MENU if press.press == Press.REJECT_MENU else REJECT_BACK
            await self.repo.record_event(ticket.id, actor, kind, self.clock())
            name = "choose_reason" if kind == REJECT_MENU else "back"
            return PressOutcome(self.texts.answer(name, ticket_id=ticket.id), refresh=(ticket.id,))
        detail = None
        if press.press == Press.REJECT_REASON:
            assert press.index is not None
            if press.index >= len(self.config.reject_reasons):
                return invalid
            detail = self.config.reject_reasons[press.index]
        return await self._apply(ticket, decision, actor, detail)

    async def _confirm_batch(
        self, batch_id: int, actor: Actor, chat_id: int, message_id: int | None
    ) -> PressOutcome:
        """The summary's "DWH" button: the central admin confirmed the whole batch."""
        batch = await self.repo.get_batch(batch_id)
        if batch is None or chat_id != self.group_id or batch.summary_message_id != message_id:
            return PressOutcome(self.texts.answer("invalid"))
        assert actor.user_id is not None
        roles = self.config.roles_of(actor.user_id)
        confirmed = []
        for ticket in await self.repo.batch_tickets(batch.id):
            decision = may_perform(Action.CONFIRM_DWH, ticket.state, roles, is_opener=False)
            if decision == Refusal.NOT_ALLOWED:
                return PressOutcome(self._not_allowed(Action.CONFIRM_DWH))
            if isinstance(decision, Transition):
                outcome = await self.repo.apply(ticket.id, decision, actor, self.clock(), None)
                if outcome.applied:
                    confirmed.append(ticket.id)
        return PressOutcome(
            self.texts.answer("batch_confirmed", count=len(confirmed)),
            refresh=tuple(confirmed),
            refresh_batch=batch.id,
        )

    async def batch_summary(self, batch: Batch) -> CardView:
        tickets = await self.repo.batch_tickets(batch.id)
        waiting = sum(t.state == State.SENT_TO_DWH for t in tickets)
        adb = await self.repo.names_of(self.config.roles[Role.ADB])
        text = self.texts.render_fitting(
            "telegram/recap_summary.html", tickets, batch=batch, total=len(tickets),
            waiting=waiting,
            turn=[Person(i, adb.get(i, self.texts.label("roles", Role.ADB)))
                  for i in sorted(self.config.roles[Role.ADB])],
        )  # fmt: skip
        if not waiting:
            return CardView(text, ())
        button = Button(
            self.texts.answer("button_batch_dwh", count=waiting),
            cb.encode(Press.CONFIRM_BATCH, batch.id),
        )
        return CardView(text, ((button,),))

    async def _apply(
        self, ticket: Ticket, transition: Transition, actor: Actor, detail: str | None
    ) -> PressOutcome:
        outcome = await self.repo.apply(ticket.id, transition, actor, self.clock(), detail)
        if not outcome.applied:
            return PressOutcome(self._already(outcome.ticket, outcome.last_event))
        return PressOutcome(
            self.texts.answer(
                "done",
                ticket_id=ticket.id,
                action_label=_sentence_case(self.texts.label("actions", transition.action)),
            ),
            refresh=(ticket.id,),
        )

    async def _view_nik(
        self, ticket: Ticket, actor: Actor, roles: frozenset[Role]
    ) -> PressOutcome:
        if not may_view_nik(ticket.state, roles):
            if roles:
                return PressOutcome(self.texts.answer(
                    "closed", ticket_id=ticket.id,
                    state_label=self.texts.label("states", ticket.state),
                ))  # fmt: skip
            return PressOutcome(self.texts.answer("not_allowed", roles=[""], opener=False))
        await self.repo.record_event(ticket.id, actor, Action.VIEW_NIK, self.clock())
        return PressOutcome(
            self.texts.answer("nik", ticket_id=ticket.id, nik=ticket.nik, kk=ticket.kk),
            alert=True,
        )

    async def _refusal(self, ticket: Ticket, action: Action, refusal: Refusal) -> PressOutcome:
        if refusal == Refusal.NOT_ALLOWED:
            return PressOutcome(self._not_allowed(action))
        if refusal == Refusal.CLOSED:
            return PressOutcome(self.texts.answer(
                "closed", ticket_id=ticket.id,
                state_label=self.texts.label("states", ticket.state),
            ))  # fmt: skip
        return PressOutcome(self._already(ticket, await self.repo.last_transition(ticket.id)))

    def _not_allowed(self, action: Action) -> str:
        """'Tombol ini hanya untuk …': the roles (and the opener) that may do `action`."""
        transitions = [t for t in TRANSITIONS if t.action == action]
        roles = sorted({r for t in transitions for r in t.roles}, key=list(Role).index)
        opener = any(t.opener_may for t in transitions)
        return self.texts.answer("not_allowed", roles=[r.value for r in roles], opener=opener)

    def _already(self, ticket: Ticket, last: Event | None) -> str:
        return self.texts.answer(
            "already",
            ticket_id=ticket.id,
            state_label=self.texts.label("states", ticket.state),
            actor=last.actor_name if last else "-",
            at=self.texts.when(last.at) if last else "-",
        )

    # -- a free-text rejection reason, by replying to the card ------------------------

    async def reply_to_card(
        self, chat_id: int, card_message_id: int, actor: Actor, text: str
    ) -> PressOutcome | None:
        """A reply to a card whose reason menu is open rejects the ticket with that text."""
        ticket = await self.repo.ticket_by_card(chat_id, card_message_id)
        if ticket is None or ticket.state != State.NEW:
            return None
        if not _reject_menu_open(await self.repo.events_for(ticket.id)):
            return None
        assert actor.user_id is not None
        decision = may_perform(
            Action.REJECT, ticket.state, self.config.roles_of(actor.user_id), is_opener=False
        )
        if not isinstance(decision, Transition):
            return None
        reason = clean_text(text)
        if carries_full_number(reason):
            # Never stored, and the message is removed from the group.
            text = self.texts.render("telegram/reason_has_number.html")
            return PressOutcome(text, delete_source=True)
        if not reason:
            return None
        return await self._apply(ticket, decision, actor, clip_utf16(reason, REASON_LIMIT))

    # -- /status and /antrian -------------------------------------------------------------

    async def status(self, query: str) -> str:
        """`/status #N` or `/status <NIK>`: the ticket and its whole history, masked."""
        query = query.strip()
        ref = TICKET_REF.match(query)
        digits = ascii_digits(strip_separators(query))
        if ref:
            ticket = await self.repo.get_ticket(int(ref[1]))
            if ticket is None:
                return self.texts.render("telegram/status_help.html", ticket_id=ref[1])
            return await self._status_of(ticket)
        if len(digits) == 16 and digits.isascii() and digits.isdigit():
            tickets = await self.repo.tickets_by_nik(digits)
            if not tickets:
                return self.texts.render("telegram/status_help.html", nik=digits)
            if len(tickets) == 1:
                return await self._status_of(tickets[0])
            return self.texts.render_fitting(
                "telegram/status_list.html", list(reversed(tickets)), nik=digits
            )
        return self.texts.render("telegram/status_help.html")

    async def _status_of(self, ticket: Ticket) -> str:
        events = await self.repo.events_for(ticket.id)
        due = self.due(ticket)
        items = [
            {"at": e.at, "label": self.texts.label("actions", e.action),
             "actor_name": e.actor_name, "detail": e.detail}
            for e in events
        ]  # fmt: skip
        return self.texts.render_fitting(
            "telegram/status.html", items, t=ticket,
            state_label=self.texts.label("states", ticket.state),
            deadline=due, step=self.texts.label("steps", ticket.state),
            overdue=due is not None and due < self.clock(),
        )  # fmt: skip

    def due(self, ticket: Ticket) -> datetime | None:
        return deadline(ticket.state, ticket.step_since, self.config.calendar, self.config.sla)

    async def queue(self) -> str:
        """`/antrian`: open tickets by step, overdue first, with deadlines."""
        now = self.clock()
        rows = []
        for t in await self.repo.open_tickets():
            due = self.due(t)
            late = -self.config.calendar.work_minutes_between(now, due) if due else 0.0
            rows.append(QueueRow(t, due, due is not None and due < now, max(late, 0.0)))
        groups: list[tuple[str, list[QueueRow]]] = []
        for state in QUEUE_ORDER:
            in_step = [r for r in rows if r.t.state == state]
            in_step.sort(key=lambda r: (not r.overdue, r.deadline or now, r.t.id))
            if in_step:
                groups.append((self.texts.label("queue", state), in_step))
        # Steps with overdue tickets first, then the order of the SOP.
        groups.sort(key=lambda g: not any(r.overdue for r in g[1]))

        def render(shown: int) -> str:
            kept, left = [], shown
            for title, in_step in groups:
                if left > 0:
                    kept.append({"title": title, "rows": in_step[:left]})
                left -= len(in_step)
            return self.texts.render(
                "telegram/antrian.html", groups=kept, total=len(rows),
                overdue_count=sum(r.overdue for r in rows), hidden=len(rows) - shown,
            )  # fmt: skip

        return fit_message(render, len(rows))

    async def newly_overdue(self, already: set[tuple[int, datetime]]) -> list[Ticket]:
        """Open tickets whose step deadline has passed and whose card has not yet said so."""
        now = self.clock()
        found = []
        for t in await self.repo.open_tickets():
            due = self.due(t)
            if due is not None and due < now and (t.id, due) not in already:
                already.add((t.id, due))
                found.append(t)
        return found


def _reject_menu_open(events: list[Event]) -> bool:
    for e in reversed(events):
        if e.action == REJECT_MENU:
            return True
        if e.action == REJECT_BACK or e.to_state is not None:
            return False
    return False


def _sentence_case(label: str) -> str:
    """'Diverifikasi' -> 'diverifikasi', keeping proper nouns like Konsolidasi and DWH."""
    return label[:1].lower() + label[1:]
