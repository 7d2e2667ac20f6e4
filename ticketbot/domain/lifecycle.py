"""The ticket lifecycle of SPEC §2 as data: states, transitions, who may do what. Pure code."""

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


OPEN_STATES: frozenset[State] = frozenset(
    {
        State.NEW,
        State.VERIFIED,
        State.SYNCED,
        State.SENT_TO_DWH,
        State.READY_TO_INFORM,
        State.REJECTED,
    }
)
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


@dataclass(frozen=True)
class Transition:
    action: Action
    source: State
    target: State
    roles: frozenset[Role]  # empty: only the system (the recap sender) performs it
    opener_may: bool = False


TRANSITIONS: tuple[Transition, ...] = (
    Transition(Action.VERIFY, State.NEW, State.VERIFIED, frozenset({Role.KASI})),
    Transition(Action.REJECT, State.NEW, State.REJECTED, frozenset({Role.KASI})),
    Transition(Action.CANCEL, State.NEW, State.CANCELLED, frozenset({Role.KASI}), opener_may=True),
    Transition(Action.SYNC_AT_KONSOLIDASI, State.VERIFIED, State.SYNCED, frozenset({Role.ADB})),
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


def responsible_roles(state: State) -> frozenset[Role]:
    """Whose turn it is: the people the card mentions."""
    return frozenset(role for t in TRANSITIONS if t.source == state for role in t.roles)


def buttons_for(state: State) -> tuple[Action, ...]:
    """The transition buttons of SPEC §3's table, in display order."""
    return {
        State.NEW: (Action.VERIFY, Action.REJECT, Action.CANCEL),
        State.VERIFIED: (Action.SYNC_AT_KONSOLIDASI,),
        State.SENT_TO_DWH: (Action.CONFIRM_DWH,),
        State.READY_TO_INFORM: (Action.INFORM,),
        State.REJECTED: (Action.INFORM,),
    }.get(state, ())
