"""The procedure as data (SPEC §1–§3): one table of steps, transitions, buttons and roles.

Pure code. A `Procedure` says for every state which SOP step it belongs to, whose turn it
is, the time standard and how its clock runs, what may be done next (the buttons, in
order), where it ranks in the queue, who is mentioned when it is overdue, and whether the
ticket is still open; for every transition who may do it and whether it ends with a reason
(from which list); for every button its code in the callback data and its label; for every
role what it may do besides pressing buttons. Deadlines, buttons, callback codes,
permissions, reason menus, reminders, `/antrian`, the report's steps and the stores all
read it; nothing else names a step.

`SOP_09` is the office's procedure. `State`, `Action` and `Role` name its vocabulary; a
procedure may use other names (they are plain strings underneath), and only the recap
machine's own moves (`send_to_dwh`) are named by the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property


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
    KADIS = "kadis"


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
    UNDELIVERED = "undelivered"  # the recap bounced for good: it goes out again (SPEC §4c)


class Clock(StrEnum):
    """What entering a state does to the step's SLA clock."""

    START = "start"  # a new step: its clock starts now
    KEEP = "keep"  # the same step goes on: its clock keeps running from where it started
    STOP = "stop"  # nobody in the office can act (waiting on the DWH, or closed)


class Unit(StrEnum):
    MINUTES = "minutes"  # work minutes inside work hours
    WORKDAYS = "workdays"  # the same time of day, that many working days later


class Refusal(StrEnum):
    """Why an action cannot happen; the words live in the templates."""

    NOT_ALLOWED = "not_allowed"  # the person's role may not do this
    WRONG_STATE = "wrong_state"  # somebody already moved the ticket on
    CLOSED = "closed"


@dataclass(frozen=True)
class Standard:
    """A time standard: `[sla] <setting>` in `unit`, `default` when the office sets none."""

    setting: str
    unit: Unit
    default: float


@dataclass(frozen=True)
class Step:
    state: str
    sop_step: int | None  # the SOP's step number; None once closed
    turn: frozenset[str]  # whose turn it is (roles) ...
    turn_opener: bool  # ... or the person who opened the ticket
    standard: Standard | None
    clock: Clock
    actions: tuple[str, ...]  # what may happen next, as buttons, in display order
    queue_rank: int | None  # order in /antrian; None: not listed (closed)
    escalate_to: frozenset[str] = frozenset()  # also mentioned once reminders escalate

    @property
    def is_open(self) -> bool:
        return self.queue_rank is not None


@dataclass(frozen=True)
class Transition:
    action: str
    source: str
    target: str
    roles: frozenset[str]  # empty: only the system (the recap sender) performs it
    opener_may: bool = False
    reasons: str | None = None  # ends only with a reason: preset ones from this list
    leaves_batch: bool = False  # the ticket travels in a later recap again
    keeps_reason: bool = False  # the reason is the ticket's (told to the resident)

    @property
    def needs_reason(self) -> bool:
        return self.reasons is not None


@dataclass(frozen=True)
class Button:
    """A card button: `code` is its letter in the callback data, `label` its words (a
    macro of templates/telegram/answers.txt, or the words themselves)."""

    action: str
    code: str
    label: str


@dataclass(frozen=True)
class ReasonList:
    """Preset reasons offered as buttons: `[reject] <key>` in the configuration."""

    key: str
    defaults: tuple[str, ...]


@dataclass(frozen=True)
class RoleRule:
    role: str
    presses: bool  # works the tickets: card buttons, and the full NIK and photo
    opens: bool  # may open tickets (/tiket)
    reports: bool  # may ask for the monthly report (/laporan)
    recaps: bool  # may send the recap now (/rekap kirim)
    listed: bool  # the configuration must have its list (`[roles] <role>`)
    required: bool  # ... naming at least one person


# Codes the callback data keeps for itself (not a procedure's buttons).
RESERVED_CODES = frozenset("nfDrx")


@dataclass(frozen=True)
class Procedure:
    steps: tuple[Step, ...]
    transitions: tuple[Transition, ...]
    buttons: tuple[Button, ...]
    roles: tuple[RoleRule, ...]
    reason_lists: tuple[ReasonList, ...] = ()
    # Its own words, before templates/telegram/labels.txt's: {kind: {name: words}}.
    words: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        states = {s.state for s in self.steps}
        codes = [b.code for b in self.buttons]
        lists = {r.key for r in self.reason_lists}
        buttons = {b.action for b in self.buttons}
        problems = [f"button code {c!r} is taken" for c in codes if c in RESERVED_CODES]
        problems += [f"button code {c!r} twice" for c in set(codes) if codes.count(c) > 1]
        problems += [f"button code {c!r} is not one letter" for c in codes if len(c) != 1]
        for t in self.transitions:
            problems += [f"{t.action}: unknown state {x}" for x in (t.source, t.target)
                         if x not in states]  # fmt: skip
            if t.reasons and t.reasons not in lists:
                problems.append(f"{t.action}: reason list {t.reasons} is not declared")
        for step in self.steps:
            problems += [f"{step.state}: {a} has no button" for a in step.actions
                         if a not in buttons]  # fmt: skip
        if problems:
            raise ValueError("; ".join(problems))

    # -- steps -----------------------------------------------------------------------------

    @cached_property
    def _steps(self) -> dict[str, Step]:
        return {s.state: s for s in self.steps}

    def step(self, state: str) -> Step:
        return self._steps[state]

    def row_actions(self, state: str) -> tuple[str, ...]:
        """A ticket's buttons on the summary of a batch that carries it: its step's actions
        but the DWH confirmation, which the summary's own button gives for the batch."""
        step = self.step(state)
        if not step.is_open:
            return ()
        return tuple(a for a in step.actions if a != Action.CONFIRM_DWH)

    @property
    def first_state(self) -> str:
        """Where a new ticket starts: the table's first step."""
        return self.steps[0].state

    @cached_property
    def open_states(self) -> tuple[str, ...]:
        return tuple(s.state for s in self.steps if s.is_open)

    @cached_property
    def closed_states(self) -> tuple[str, ...]:
        return tuple(s.state for s in self.steps if not s.is_open)

    @cached_property
    def queue_order(self) -> tuple[str, ...]:
        ranked = sorted((s for s in self.steps if s.is_open), key=lambda s: s.queue_rank or 0)
        return tuple(s.state for s in ranked)

    @cached_property
    def standards(self) -> tuple[Standard, ...]:
        found: dict[str, Standard] = {}
        for s in self.steps:
            if s.standard is not None:
                found.setdefault(s.standard.setting, s.standard)
        return tuple(found.values())

    @cached_property
    def timed_steps(self) -> tuple[tuple[int, Standard], ...]:
        """The SOP steps the report measures, each with its time standard, in order."""
        found: dict[int, Standard] = {}
        for s in self.steps:
            if s.standard is not None and s.sop_step is not None:
                found.setdefault(s.sop_step, s.standard)
        return tuple(sorted(found.items()))

    # -- transitions -----------------------------------------------------------------------

    def transition_for(self, action: str, source: str) -> Transition | None:
        for t in self.transitions:
            if t.action == action and t.source == source:
                return t
        return None

    def may_perform(
        self, action: str, source: str, roles: frozenset[str], *, is_opener: bool
    ) -> Transition | Refusal:
        """Decide whether somebody with `roles` may perform `action` on a ticket in
        `source`."""
        if not any(
            t.action == action and (roles & t.roles or (t.opener_may and is_opener))
            for t in self.transitions
        ):
            return Refusal.NOT_ALLOWED
        t = self.transition_for(action, source)
        if t is None:
            return Refusal.CLOSED if source not in self.open_states else Refusal.WRONG_STATE
        if roles & t.roles or (t.opener_may and is_opener):
            return t
        return Refusal.NOT_ALLOWED

    def reasons_key(self, action: str) -> str | None:
        """The reason list of an action (any of its transitions that ends with one)."""
        return next((t.reasons for t in self.transitions if t.action == action and t.reasons),
                    None)  # fmt: skip

    @cached_property
    def reasoned_actions(self) -> frozenset[str]:
        return frozenset(t.action for t in self.transitions if t.needs_reason)

    # -- buttons and roles -------------------------------------------------------------------

    @cached_property
    def _buttons(self) -> dict[str, Button]:
        return {b.action: b for b in self.buttons}

    def button(self, action: str) -> Button:
        return self._buttons[action]

    def action_of_code(self, code: str) -> str | None:
        return next((b.action for b in self.buttons if b.code == code), None)

    def role_names(self) -> tuple[str, ...]:
        return tuple(r.role for r in self.roles)

    def roles_that(self, what: str) -> frozenset[str]:
        """The roles whose rule says `what` ("presses", "opens", "reports", "recaps")."""
        return frozenset(r.role for r in self.roles if getattr(r, what))

    def may_view_nik(self, state: str, roles: frozenset[str]) -> bool:
        return state in self.open_states and bool(roles & self.roles_that("presses"))


# -- the office's procedure: SOP 09 ------------------------------------------------------------

KASI_STANDARD = Standard("kasi_minutes", Unit.MINUTES, 10)
ADB_STANDARD = Standard("adb_workdays", Unit.WORKDAYS, 1)
INFORM_STANDARD = Standard("inform_minutes", Unit.MINUTES, 5)
NOBODY: frozenset[str] = frozenset()
KASI, ADB = frozenset({Role.KASI}), frozenset({Role.ADB})
DESK = frozenset({Role.KASI, Role.ADB, Role.STAF})
# From the escalate_after-th reminder: the Kasi for the ADB's and the desk's steps, and the
# head of office for every step.
ABOVE_KASI = frozenset({Role.KADIS})
ABOVE_OTHERS = frozenset({Role.KASI, Role.KADIS})

SOP_09 = Procedure(
    steps=(
        Step(State.NEW, sop_step=3, turn=KASI, turn_opener=False, standard=KASI_STANDARD,
             clock=Clock.START, actions=(Action.VERIFY, Action.REJECT, Action.CANCEL),
             queue_rank=0, escalate_to=ABOVE_KASI),
        Step(State.VERIFIED, sop_step=4, turn=ADB, turn_opener=False, standard=ADB_STANDARD,
             clock=Clock.START,
             actions=(Action.SYNC_AT_KONSOLIDASI, Action.RETURN_TO_KASI, Action.CANCEL),
             queue_rank=1, escalate_to=ABOVE_OTHERS),
        # The ADB's working day runs from verification until the recap leaves: syncing
        # keeps its clock; the recap machine, not a person, moves it on.
        Step(State.SYNCED, sop_step=4, turn=NOBODY, turn_opener=False, standard=ADB_STANDARD,
             clock=Clock.KEEP, actions=(), queue_rank=2, escalate_to=ABOVE_OTHERS),
        # Waiting on the central DWH admin, outside the office: no clock runs.
        Step(State.SENT_TO_DWH, sop_step=4, turn=ADB, turn_opener=False, standard=None,
             clock=Clock.STOP, actions=(Action.CONFIRM_DWH, Action.RESYNC), queue_rank=3,
             escalate_to=ABOVE_OTHERS),
        Step(State.READY_TO_INFORM, sop_step=5, turn=NOBODY, turn_opener=True,
             standard=INFORM_STANDARD, clock=Clock.START, actions=(Action.INFORM,),
             queue_rank=4, escalate_to=ABOVE_OTHERS),
        Step(State.REJECTED, sop_step=5, turn=NOBODY, turn_opener=True,
             standard=INFORM_STANDARD, clock=Clock.START, actions=(Action.INFORM,),
             queue_rank=5, escalate_to=ABOVE_OTHERS),
        Step(State.DONE, sop_step=None, turn=NOBODY, turn_opener=False, standard=None,
             clock=Clock.STOP, actions=(), queue_rank=None),
        Step(State.CLOSED_REJECTED, sop_step=None, turn=NOBODY, turn_opener=False,
             standard=None, clock=Clock.STOP, actions=(), queue_rank=None),
        Step(State.CANCELLED, sop_step=None, turn=NOBODY, turn_opener=False, standard=None,
             clock=Clock.STOP, actions=(), queue_rank=None),
    ),
    transitions=(
        Transition(Action.VERIFY, State.NEW, State.VERIFIED, KASI),
        Transition(Action.REJECT, State.NEW, State.REJECTED, KASI, reasons="reasons",
                   keeps_reason=True),
        Transition(Action.CANCEL, State.NEW, State.CANCELLED, KASI, opener_may=True),
        Transition(Action.SYNC_AT_KONSOLIDASI, State.VERIFIED, State.SYNCED, ADB),
        # The exception paths (SPEC §2): part of the procedure, each with a recorded reason.
        Transition(Action.RETURN_TO_KASI, State.VERIFIED, State.NEW, ADB,
                   reasons="return_reasons"),
        Transition(Action.CANCEL, State.VERIFIED, State.CANCELLED, KASI,
                   reasons="cancel_reasons"),
        Transition(Action.RESYNC, State.SENT_TO_DWH, State.VERIFIED, ADB,
                   reasons="resync_reasons", leaves_batch=True),
        Transition(Action.SEND_TO_DWH, State.SYNCED, State.SENT_TO_DWH, NOBODY),
        # A permanent bounce of the recap (SPEC §4c): the DWH never got it.
        Transition(Action.UNDELIVERED, State.SENT_TO_DWH, State.SYNCED, NOBODY,
                   leaves_batch=True),
        Transition(Action.CONFIRM_DWH, State.SENT_TO_DWH, State.READY_TO_INFORM, ADB),
        Transition(Action.INFORM, State.READY_TO_INFORM, State.DONE, DESK),
        Transition(Action.INFORM, State.REJECTED, State.CLOSED_REJECTED, DESK),
    ),
    buttons=(
        Button(Action.VERIFY, "v", "button_verify"),
        Button(Action.REJECT, "t", "button_reject"),
        Button(Action.CANCEL, "b", "button_cancel"),
        Button(Action.SYNC_AT_KONSOLIDASI, "k", "button_sync"),
        Button(Action.RETURN_TO_KASI, "m", "button_return"),
        Button(Action.CONFIRM_DWH, "d", "button_dwh"),
        Button(Action.RESYNC, "u", "button_resync"),
        Button(Action.INFORM, "i", "button_inform"),
    ),
    roles=(
        RoleRule(Role.KASI, presses=True, opens=True, reports=True, recaps=True, listed=True,
                 required=True),
        RoleRule(Role.ADB, presses=True, opens=True, reports=True, recaps=True, listed=True,
                 required=True),
        RoleRule(Role.STAF, presses=True, opens=True, reports=False, recaps=False, listed=True,
                 required=False),
        # The head of office (or secretary): mentioned in escalations, may read the queue,
        # the status and the report; presses no card button and never sees a full NIK.
        RoleRule(Role.KADIS, presses=False, opens=False, reports=True, recaps=False,
                 listed=False, required=False),
    ),
    reason_lists=(
        ReasonList("reasons", (
            "NIK tidak ditemukan di database SIAK",
            "Data pemohon tidak sesuai dokumen",
            "Dokumen persyaratan belum lengkap",
            "Bukan masalah sinkronisasi DWH",
        )),
        ReasonList("return_reasons", (
            "Salinan KK tidak sesuai data SIAK",
            "NIK belum diverifikasi dengan dokumen",
            "Data perlu diperbaiki di loket",
        )),
        ReasonList("cancel_reasons", (
            "Permohonan dicabut pemohon",
            "Sudah ditangani di luar tiket ini",
            "Tiket salah input",
        )),
        ReasonList("resync_reasons", (
            "DWH masih belum membaca NIK",
            "Lembaga masih menolak NIK",
            "Konfirmasi admin DWH: sinkron gagal",
        )),
    ),
)  # fmt: skip
