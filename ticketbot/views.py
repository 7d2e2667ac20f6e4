"""Present: the office's facts and outcomes as the words and buttons people see.

No decision is taken here and nothing is stored; the office decides (office.py) and
telegram_io delivers. Buttons are described neutrally (label + callback data or URL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

from ticketbot import callback_data as cb
from ticketbot.config import Config
from ticketbot.domain.lifecycle import Action, Refusal, State
from ticketbot.domain.mail import Verdict
from ticketbot.domain.privacy import redact_numbers
from ticketbot.domain.validation import region_warnings
from ticketbot.office import (
    AnswerApplied,
    Applied,
    BatchConfirmed,
    BatchFacts,
    CardFacts,
    Duplicate,
    FormRefused,
    FormRequested,
    IntakeOutcome,
    Invalid,
    NikShown,
    Person,
    PhotoShown,
    PressOutcome,
    QueueFacts,
    ReasonHasNumber,
    ReasonMenu,
    Refused,
    Reminder,
    StatusOutcome,
    StatusQuery,
    TicketsOfNik,
    TicketStatus,
)
from ticketbot.records import Batch, Event, Ticket
from ticketbot.search import STATE_WORDS, Found, NotUnderstood, shown_terms
from ticketbot.store.mails import StoredMail
from ticketbot.texts import Texts, fit_message

BUTTON_LABEL_LIMIT = 60
# Telegram refuses a keyboard of more than 100 buttons, or of more than about 10 KB of JSON.
SUMMARY_BUTTONS = 100
SUMMARY_KEYBOARD_BYTES = 9_000


@dataclass(frozen=True)
class Button:
    label: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class CardView:
    text: str
    buttons: tuple[tuple[Button, ...], ...]


@dataclass
class Views:
    config: Config
    texts: Texts

    def __post_init__(self) -> None:
        self.procedure = self.config.procedure

    # -- the card -----------------------------------------------------------------------

    def card(self, facts: CardFacts, mention: frozenset[int] | None = None) -> CardView:
        """The card; posted anew at a hand-off, its "Giliran" links notify `mention` (the
        people whose turn it now is and who get no private ping); None: everyone linked."""
        t = facts.ticket
        overdue = facts.due is not None and facts.left_minutes < 0
        text = self.texts.render(
            "telegram/card.html",
            t=t,
            state_label=self.texts.label("states", t.state),
            warnings=region_warnings(t.nik, "NIK") + region_warnings(t.kk, "KK"),
            history=[
                {
                    "at": e.at,
                    "label": self.texts.label("actions", e.action),
                    "actor_name": e.actor_name,
                    # A rejection's reason has its own line on the card.
                    "reason": e.detail
                    if e.action in self.procedure.reasoned_actions and e.action != Action.REJECT
                    else None,
                }
                for e in facts.events
                if e.to_state is not None
            ],
            earlier=[
                {"id": old.id, "state": old.state, "reason": facts.earlier_reasons.get(old.id)}
                for old in facts.earlier
            ],
            deadline=facts.due,
            step=self.texts.label("steps", t.state),
            left_minutes=max(facts.left_minutes, 0),
            overdue_minutes=-facts.left_minutes if overdue else 0,
            waiting_dwh=t.state == State.SENT_TO_DWH,
            dwh_workdays=facts.dwh_workdays,
            turn=self.turn(facts.turn),
            mention=mention,
            choosing_reason=facts.menu is not None,
            told_to_resident=self.told_to_resident(facts.menu),
            menu=self.texts.label("reasons_of", facts.menu) if facts.menu else "",
        )
        return CardView(text, self.buttons(t, menu=facts.menu))

    def buttons(self, t: Ticket, *, menu: str | None = None) -> tuple[tuple[Button, ...], ...]:
        """The step's actions from the procedure's table, two to a row, then "NIK"; or the
        reasons of the action whose menu is open (they belong to that opening of it)."""
        a = self.texts.answer
        nik = Button(a("button_nik"), cb.encode(cb.VIEW_NIK, t.id))
        transition = self.procedure.transition_for(menu, t.state) if menu else None
        if menu is not None and transition is not None:
            opened = cb.Menu(self.procedure.button(menu).code, t.menu_round)
            reasons = tuple(
                (Button(a("button_reason", n=i + 1, reason=r)[:BUTTON_LABEL_LIMIT],
                        cb.encode(cb.REASON, t.id, opened, i)),)
                for i, r in enumerate(self.config.reasons_of(transition))
            )  # fmt: skip
            return (*reasons, (Button(a("button_back"), cb.encode(cb.BACK, t.id, opened)),))
        step = self.procedure.step(t.state)
        if not step.is_open:
            return ()
        offered = self.action_buttons(t, step.actions, a("button_whatsapp"), lambda w: w)
        rows = [tuple(offered[i : i + 2]) for i in range(0, len(offered), 2)]
        if rows and len(rows[-1]) == 1 and len(rows) > 1:
            rows[-1] = (*rows[-1], nik)
        else:
            rows.append((nik,))
        if t.photo_file_id:
            photo = Button(a("button_photo"), cb.encode(cb.VIEW_PHOTO, t.id))
            if len(rows[-1]) < 2:
                rows[-1] = (*rows[-1], photo)
            else:
                rows.append((photo,))
        return tuple(rows)

    def action_buttons(
        self, t: Ticket, actions: tuple[str, ...], whatsapp: str, label: Callable[[str], str]
    ) -> list[Button]:
        """The buttons of these actions of the ticket, `label` putting each one's words on
        it (the card's as they are, a summary's row numbered): Diinformasikan with the
        WhatsApp link before it, for the resident is told by WhatsApp first."""
        offered: list[Button] = []
        for action in actions:
            if action == Action.INFORM:
                offered.append(Button(label(whatsapp), url=self.whatsapp_url(t)))
            button = self.procedure.button(action)
            offered.append(
                Button(label(self.label_of(button.label)), cb.encode(button.code, t.id))
            )
        return offered

    def label_of(self, label: str) -> str:
        """A button's words: a macro of answers.txt, or the words the table gives."""
        return self.texts.answer(label) if self.texts.has_answer(label) else label

    def told_to_resident(self, action: str | None) -> bool:
        """The reason of `action` is the ticket's, and goes into the resident's WhatsApp."""
        return any(
            tr.keeps_reason for tr in self.config.procedure.transitions if tr.action == action
        )

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

    def batch_summary(self, facts: BatchFacts) -> CardView:
        rows: list[tuple[Button, ...]] = []
        if facts.waiting:
            rows.append((Button(
                self.texts.answer("button_batch_dwh", count=facts.waiting),
                cb.encode(cb.CONFIRM_BATCH, facts.batch.id),
            ),))  # fmt: skip
        carried = self.summary_rows(facts) if facts.batch.carried else []
        shown = _targets(carried)
        text = self.texts.render_fitting(
            "telegram/recap_summary.html", facts.tickets, batch=facts.batch,
            total=len(facts.tickets), waiting=facts.waiting, turn=self.turn(facts.turn),
            informing=sum(t.state == State.READY_TO_INFORM and t.id in shown
                          for t in facts.tickets),
        )  # fmt: skip
        return CardView(text, (*rows, *carried))

    def carries(self, facts: BatchFacts, ticket_id: int) -> bool:
        """Whether the batch's summary shows this ticket with its buttons: its card need not
        be edited for the batch's steps."""
        return facts.batch.carried and ticket_id in _targets(self.summary_rows(facts))

    def summary_rows(self, facts: BatchFacts) -> list[tuple[Button, ...]]:
        """The buttons of the tickets a summary carries, each labelled with its number: a
        ticket's WhatsApp beside its Diinformasikan; lone buttons (Ulang) two to a row. As
        many tickets, in order, as Telegram takes on one message (100 buttons, about 10 KB
        of keyboard); the cards of the rest are edited as for a small batch."""
        a = self.texts.answer
        rows: list[tuple[Button, ...]] = []
        size, count = 0, 1  # the batch's own button
        for t in facts.tickets:

            def numbered(words: str, ticket_id: int = t.id) -> str:
                return a("button_row", ticket_id=ticket_id, label=words)

            row = self.action_buttons(
                t, self.procedure.row_actions(t.state), a("button_whatsapp_short"), numbered
            )
            # Each button's words and link or data, and ~40 bytes of JSON keys around them.
            size += sum(len(json.dumps([b.label, b.url or b.data])) + 40 for b in row)
            count += len(row)
            if size > SUMMARY_KEYBOARD_BYTES or count > SUMMARY_BUTTONS:
                break
            if len(row) == 1 and rows and len(rows[-1]) == 1:
                rows[-1] = (*rows[-1], row[0])
            elif row:
                rows.append(tuple(row))
        return rows

    def mail_answer(self, mail: StoredMail, batch: Batch | None) -> CardView:
        """A mail from the DWH side, as a reply to its batch's summary; "Terapkan" while a
        trusted answer's proposal waits."""
        sent = mail.shown.get("date")
        text = self.texts.render(
            "telegram/mail.html", shown=mail.shown, verdict=mail.verdict,
            proposal=mail.proposal, applied_at=mail.applied_at, applied_by=mail.applied_by,
            batch_day=self.texts.day(batch.due_date) if batch else "?",
            sent_at=datetime.fromisoformat(sent) if sent else None,
            moved=batch is not None and batch.undelivered is not None,
        )  # fmt: skip
        if mail.verdict != Verdict.REPLY or not mail.proposal or mail.applied_at is not None:
            return CardView(text, ())
        button = Button(self.texts.answer("button_apply"), cb.encode(cb.APPLY_ANSWER, mail.id))
        return CardView(text, ((button,),))

    # -- answers --------------------------------------------------------------------------

    def intake_reply(
        self, outcome: IntakeOutcome, *, sent_back: bool = False, deleted: bool = False
    ) -> str | None:
        """The reply to an intake message; None when the card itself is the answer."""
        if isinstance(outcome, FormRequested):
            return self.texts.render(
                "telegram/intake_form.html", lembaga=list(self.config.lembaga.names)
            )
        if isinstance(outcome, FormRefused):
            return self.texts.render(
                "telegram/intake_errors.html", errors=outcome.errors, warnings=outcome.warnings,
                sent_back=sent_back, deleted=deleted,
            )  # fmt: skip
        if isinstance(outcome, Duplicate):
            return self.texts.render(
                "telegram/intake_duplicate.html", t=outcome.ticket,
                state_label=self.texts.label("states", outcome.ticket.state),
            )  # fmt: skip
        return None

    def form_back(self, outcome: FormRefused, form: str) -> str:
        """A refused form, back in its sender's private chat: the problems, then the form as
        typed, to copy, fix and send again."""
        return self.texts.render(
            "telegram/form_back.html", errors=outcome.errors, form=form.strip()
        )

    def answer(self, outcome: PressOutcome) -> tuple[str, bool]:
        """The words of a tap's answer (callback answer or reply), and whether it is an
        alert."""
        a = self.texts.answer
        match outcome:
            case Applied(ticket=t, action=action):
                label = _sentence_case(self.texts.label("actions", action))
                return a("done", ticket_id=t.id, action_label=label), False
            case ReasonMenu(ticket=t, opened=opened, action=action):
                what = self.texts.label("reasons_of", action)
                return a("choose_reason" if opened else "back", ticket_id=t.id, what=what), False
            case BatchConfirmed(confirmed=confirmed):
                return a("batch_confirmed", count=len(confirmed)), False
            case AnswerApplied(moved=moved):
                return (a("answer_applied", count=len(moved)) if moved is not None
                        else a("answer_already")), False  # fmt: skip
            case NikShown(ticket=t):
                return a("nik", ticket_id=t.id, nik=t.nik, kk=t.kk), True
            case PhotoShown(ticket=t):
                return a("photo_sent", ticket_id=t.id), False
            case Refused():
                return self._refusal(outcome), False
            case ReasonHasNumber():
                return self.texts.render("telegram/reason_has_number.html"), False
            case Invalid():
                return a("invalid"), False
        raise TypeError(f"no words for {outcome!r}")

    def _refusal(self, refused: Refused) -> str:
        a, t = self.texts.answer, refused.ticket
        if refused.refusal == Refusal.NOT_ALLOWED:
            return self.not_allowed(refused.action, t.state)
        if refused.refusal == Refusal.CLOSED:
            return a("closed", ticket_id=t.id, state_label=self.texts.label("states", t.state))
        return self.already(t, refused.last)

    def not_allowed(self, action: str | None, state: str | None = None) -> str:
        """'Tombol ini hanya untuk …': the roles (and the opener) that may do `action` (in
        `state`, where it can happen there)."""
        if action is None:
            return self.texts.answer("not_allowed", roles=[""], opener=False)
        transitions = [t for t in self.procedure.transitions if t.action == action]
        here = [t for t in transitions if t.source == state]
        transitions = here or transitions
        order = self.procedure.role_names()
        roles = sorted({r for t in transitions for r in t.roles}, key=order.index)
        opener = any(t.opener_may for t in transitions)
        return self.texts.answer("not_allowed", roles=[str(r) for r in roles], opener=opener)

    def already(self, ticket: Ticket, last: Event | None) -> str:
        return self.texts.answer(
            "already",
            ticket_id=ticket.id,
            state_label=self.texts.label("states", ticket.state),
            actor=last.actor_name if last else "-",
            at=self.texts.when(last.at) if last else "-",
        )

    # -- /status and /antrian ---------------------------------------------------------------

    def status(self, outcome: StatusOutcome) -> str:
        match outcome:
            case TicketStatus():
                return self._status_of(outcome)
            case TicketsOfNik(nik=nik, tickets=tickets):
                return self.texts.render_fitting(
                    "telegram/status_list.html", list(reversed(tickets)), nik=nik
                )
            case StatusQuery(ticket_id=ticket_id, nik=nik):
                if ticket_id is not None:
                    return self.texts.render("telegram/status_help.html", ticket_id=ticket_id)
                if nik is not None:
                    return self.texts.render("telegram/status_help.html", nik=nik)
        return self.texts.render("telegram/status_help.html")

    def _status_of(self, status: TicketStatus) -> str:
        t = status.ticket
        items = [
            {"at": e.at, "label": self.texts.label("actions", e.action),
             "actor_name": e.actor_name, "detail": e.detail}
            for e in status.events
        ]  # fmt: skip
        return self.texts.render_fitting(
            "telegram/status.html", items, t=t,
            state_label=self.texts.label("states", t.state),
            deadline=status.due, step=self.texts.label("steps", t.state),
            overdue=status.overdue,
        )  # fmt: skip

    def search(self, outcome: Found | NotUnderstood | None) -> CardView:
        """`/cari`: a page of masked rows with ◀/▶, or how to search (None: `/cari` alone)."""
        if not isinstance(outcome, Found):
            problem = outcome.problem if outcome is not None else None
            text = self.texts.render(
                "telegram/search.html", help=True, problem=problem, state_words=list(STATE_WORDS)
            )
            return CardView(text, ())
        text = self.texts.render(
            "telegram/search.html", help=False, problem=None, terms=shown_terms(outcome.terms),
            total=outcome.total, tickets=outcome.tickets, page=outcome.page,
            pages=outcome.pages, many=outcome.many,
        )  # fmt: skip
        turn = [(outcome.page - 1, "◀"), (outcome.page + 1, "▶")]
        buttons = tuple(
            Button(label, cb.encode(cb.SEARCH_PAGE, outcome.search_id, index=page))
            for page, label in turn
            if 0 <= page < outcome.pages
        )
        return CardView(text, (buttons,) if buttons else ())

    def queue(self, facts: QueueFacts) -> str:
        """`/antrian`: open tickets by step, overdue first, rendered to fit one message."""
        groups = [
            (self.texts.label("queue", state), rows) for state, rows in facts.by_step if rows
        ]

        def render(shown: int) -> str:
            kept, left = [], shown
            for title, in_step in groups:
                if left > 0:
                    kept.append({"title": title, "rows": in_step[:left]})
                left -= len(in_step)
            hidden = facts.total - sum(len(g["rows"]) for g in kept)
            return self.texts.render(
                "telegram/antrian.html", groups=kept, total=facts.total,
                overdue_count=facts.overdue, hidden=hidden,
            )  # fmt: skip

        # The office read only what one message can show; the counts are of all.
        return fit_message(render, sum(len(rows) for _, rows in groups))

    def ping(self, tickets: list[Ticket], people: list[Person]) -> str:
        """The turn ping: the people by clickable mention, the tickets, the step."""
        return self.texts.render(
            "telegram/ping.html", people=self.turn(people), tickets=tickets,
            step=self.texts.label("queue", tickets[0].state),
        )  # fmt: skip

    def private_ping(self, tickets: list[Ticket]) -> CardView:
        """A turn ping sent privately: no mention needed (a private message notifies), a
        button to the card where the group is a supergroup (t.me/c links need one)."""
        text = self.texts.render(
            "telegram/private_ping.html", tickets=tickets,
            step=self.texts.label("queue", tickets[0].state),
        )  # fmt: skip
        first = tickets[0]
        chat = str(first.chat_id)
        if not chat.startswith("-100") or first.card_message_id is None:
            return CardView(text, ())
        url = f"https://t.me/c/{chat[4:]}/{first.card_message_id}"
        return CardView(text, ((Button(self.texts.answer("button_open_card"), url=url),),))

    def reminder(self, reminder: Reminder) -> str:
        """One reminder round for one audience."""
        items = [
            {"ticket": o.ticket, "step": self.texts.label("queue", o.ticket.state),
             "late": o.late_minutes}
            for o in reminder.overdue
        ]  # fmt: skip
        return self.texts.render_fitting(
            "telegram/reminder.html", items, people=self.turn(reminder.people),
            escalated=self.turn(reminder.escalated_to), unconfirmed=reminder.unconfirmed,
        )  # fmt: skip

    def morning(
        self, queue: QueueFacts, unconfirmed: list[tuple[Batch, int, float]], today: date
    ) -> str:
        steps = [
            {"title": self.texts.label("queue", state), "count": len(rows),
             "overdue": sum(r.overdue for r in rows)}
            for state, rows in queue.by_step if rows
        ]  # fmt: skip
        return self.texts.render(
            "telegram/morning.html", steps=steps, total=queue.total, overdue=queue.overdue,
            unconfirmed=unconfirmed, today=today,
        )  # fmt: skip

    def turn(self, people: list[Person]) -> list[Person]:
        """Whose turn it is, each named (by the role's title when the bot never saw them)."""
        return [Person(p.user_id, p.name or self.texts.label("roles", p.role), p.role)
                for p in people]  # fmt: skip


def _targets(rows: list[tuple[Button, ...]]) -> set[int]:
    """The tickets whose buttons these are."""
    presses = (cb.parse(b.data) for row in rows for b in row if b.data)
    return {p.target_id for p in presses if p is not None}


def _sentence_case(label: str) -> str:
    """'Diverifikasi' -> 'diverifikasi', keeping proper nouns like Konsolidasi and DWH."""
    return label[:1].lower() + label[1:]
