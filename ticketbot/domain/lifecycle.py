"""The SOP as data (SPEC §1, §2): states, the table of steps, transitions, who may do what.

Pure code. `STEPS` says for every state which SOP step it belongs to, whose turn it is, the
time standard and how its clock runs, what may be done next (the buttons, in order), where it
ranks in the queue, and whether the ticket is still open. Deadlines, buttons, the turn, the
queue, the open-ticket index and the repository's clock rules all read it. Adding a step to
the SOP: a `State`, its row in `STEPS`, its `TRANSITIONS`, its words in
`templates/telegram/labels.txt` (and a migration if the open states change).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    NEW = "new"
    VERIFIED = "verified"
    SYNCED = "synced"
    SENT_TO_DWH = "sent_to_dwh"
    READY_TO_INFORM = "ready_to_inform"
    DONE = "done"
    REJECTED = "rejected"
    CLOSED_REJECTED = "closed_rejected"
    CANCELLED = "cancelled"


class Role(StrEnum):
    KASI = "kasi"
    ADB = "adb"
    STAF = "staf"


STAFF_ROLES: frozenset[Role] = frozenset(Role)


class Action(StrEnum):
    OPEN = "open"
    VERIFY = "verify"
    REJECT = "reject"
    CANCEL = "cancel"
    SYNC_AT_KONSOLIDASI = "sync_at_konsolidasi"
    SEND_TO_DWH = "send_to_dwh"
    CONFIRM_DWH = "confirm_dwh"
    INFORM = "inform"
    VIEW_NIK = "view_nik"
    VIEW_PHOTO = "view_photo"
    RETURN_TO_KASI = "return_to_kasi"  # "Kembalikan": the ADB sends it back, with a reason
    RESYNC = "resync"  # "Ulang": the DWH still cannot read it; sync again, with a reason


class Clock(StrEnum):
    """What entering a state does to the step's SLA clock."""

    START = "start"  # a new step: its clock starts now
    KEEP = "keep"  # the same step goes on: its clock keeps running from where it started
    STOP = "stop"  # nobody in the office can act (waiting on the DWH, or closed)


class Unit(StrEnum):
    MINUTES = "minutes"  # work minutes inside work hours
    WORKDAYS = "workdays"  # the same time of day, that many working days later


@dataclass(frozen=True)
class Standard:
    """A time standard of the SOP: its amount is `Sla.<setting>` in `unit`."""

    setting: str
    unit: Unit


@dataclass(frozen=True)
class Step:
    state: State
    sop_step: int | None  # the SOP's step number (1-5); None once closed
    turn: frozenset[Role]  # whose turn it is (roles) ...
    turn_opener: bool  # ... or the person who opened the ticket
    standard: Standard | None
    clock: Clock
    actions: tuple[Action, ...]  # what may happen next, as buttons, in display order
    queue_rank: int | None  # order in /antrian; None: not listed (closed)

    @property
    def is_open(self) -> bool:
        return self.queue_rank is not None


KASI_STANDARD = Standard("kasi_minutes", Unit.MINUTES)
ADB_STANDARD = Standard("adb_workdays", Unit.WORKDAYS)
INFORM_STANDARD = Standard("inform_minutes", Unit.MINUTES)
NOBODY: frozenset[Role] = frozenset()

KASI, ADB = frozenset({Role.KASI}), frozenset({Role.ADB})
STEPS: dict[State, Step] = {
    s.state: s
    for s in (
        Step(State.NEW, sop_step=3, turn=KASI, turn_opener=False, standard=KASI_STANDARD,
             clock=Clock.START, actions=(Action.VERIFY, Action.REJECT, Action.CANCEL),
             queue_rank=0),
        Step(State.VERIFIED, sop_step=4, turn=ADB, turn_opener=False, standard=ADB_STANDARD,
             clock=Clock.START,
             actions=(Action.SYNC_AT_KONSOLIDASI, Action.RETURN_TO_KASI, Action.CANCEL),
             queue_rank=1),
        # The ADB's working day runs from verification until the recap leaves: syncing
        # keeps its clock; the recap machine, not a person, moves it on.
        Step(State.SYNCED, sop_step=4, turn=NOBODY, turn_opener=False, standard=ADB_STANDARD,
             clock=Clock.KEEP, actions=(), queue_rank=2),
        # Waiting on the central DWH admin, outside the office: no clock runs.
        Step(State.SENT_TO_DWH, sop_step=4, turn=ADB, turn_opener=False, standard=None,
             clock=Clock.STOP, actions=(Action.CONFIRM_DWH, Action.RESYNC), queue_rank=3),
        Step(State.READY_TO_INFORM, sop_step=5, turn=NOBODY, turn_opener=True,
             standard=INFORM_STANDARD, clock=Clock.START, actions=(Action.INFORM,),
             queue_rank=4),
        Step(State.REJECTED, sop_step=5, turn=NOBODY, turn_opener=True,
             standard=INFORM_STANDARD, clock=Clock.START, actions=(Action.INFORM,),
             queue_rank=5),
        Step(State.DONE, sop_step=None, turn=NOBODY, turn_opener=False, standard=None,
             clock=Clock.STOP, actions=(), queue_rank=None),
        Step(State.CLOSED_REJECTED, sop_step=None, turn=NOBODY, turn_opener=False,
             standard=None, clock=Clock.STOP, actions=(), queue_rank=None),
        Step(State.CANCELLED, sop_step=None, turn=NOBODY, turn_opener=False, standard=None,
             clock=Clock.STOP, actions=(), queue_rank=None),
    )
}  # fmt: skip

OPEN_STATES: frozenset[State] = frozenset(s.state for s in STEPS.values() if s.is_open)
QUEUE_ORDER: tuple[State, ...] = tuple(
    s.state for s in sorted(STEPS.values(), key=lambda s: s.queue_rank or 0) if s.is_open
)


@dataclass(frozen=True)
class Transition:
    action: Action
    source: State
    target: State
    roles: frozenset[Role]  # empty: only the system (the recap sender) performs it
    opener_may: bool = False
    needs_reason: bool = False  # ends only with a recorded reason (a preset or typed one)
    leaves_batch: bool = False  # the ticket travels in a later recap again


TRANSITIONS: tuple[Transition, ...] = (
    Transition(Action.VERIFY, State.NEW, State.VERIFIED, frozenset({Role.KASI})),
    Transition(
        Action.REJECT, State.NEW, State.REJECTED, frozenset({Role.KASI}), needs_reason=True
    ),
    Transition(Action.CANCEL, State.NEW, State.CANCELLED, frozenset({Role.KASI}), opener_may=True),
    Transition(Action.SYNC_AT_KONSOLIDASI, State.VERIFIED, State.SYNCED, frozenset({Role.ADB})),
    # The exception paths (SPEC §2): part of the procedure, each with a recorded reason.
    Transition(
        Action.RETURN_TO_KASI, State.VERIFIED, State.NEW, frozenset({Role.ADB}), needs_reason=True
    ),
    Transition(
        Action.CANCEL, State.VERIFIED, State.CANCELLED, frozenset({Role.KASI}), needs_reason=True
    ),
    Transition(
        Action.RESYNC,
        State.SENT_TO_DWH,
        State.VERIFIED,
        frozenset({Role.ADB}),
        needs_reason=True,
        leaves_batch=True,
    ),
    Transition(Action.SEND_TO_DWH, State.SYNCED, State.SENT_TO_DWH, frozenset()),
    Transition(
        Action.CONFIRM_DWH, State.SENT_TO_DWH, State.READY_TO_INFORM, frozenset({Role.ADB})
    ),
    Transition(Action.INFORM, State.READY_TO_INFORM, State.DONE, STAFF_ROLES),
    Transition(Action.INFORM, State.REJECTED, State.CLOSED_REJECTED, STAFF_ROLES),
)


class Refusal(StrEnum):
    """Why an action cannot happen; the words live in the templates."""

    NOT_ALLOWED = "not_allowed"  # the person's role may not do this
    WRONG_STATE = "wrong_state"  # somebody already moved the ticket on
    CLOSED = "closed"


def transition_for(action: Action, source: State) -> Transition | None:
    for t in TRANSITIONS:
        if t.action == action and t.source == source:
            return t
    return None


def may_perform(
    action: Action, source: State, roles: frozenset[Role], *, is_opener: bool
) -> Transition | Refusal:
    """Decide whether somebody with `roles` may perform `action` on a ticket in `source`."""
    if action == Action.VIEW_NIK:
        raise ValueError("view_nik is not a transition; use may_view_nik()")
    if not any(
        t.action == action and (roles & t.roles or (t.opener_may and is_opener))
        for t in TRANSITIONS
    ):
        return Refusal.NOT_ALLOWED
    t = transition_for(action, source)
    if t is None:
        return Refusal.CLOSED if source not in OPEN_STATES else Refusal.WRONG_STATE
    if roles & t.roles or (t.opener_may and is_opener):
        return t
    return Refusal.NOT_ALLOWED


def may_view_nik(source: State, roles: frozenset[Role]) -> bool:
    return source in OPEN_STATES and bool(roles & STAFF_ROLES)
