"""The ticket state machine (pure)."""

from __future__ import annotations

import pytest

from ticketbot.callback_data import Press, encode, parse
from ticketbot.domain.lifecycle import (
    OPEN_STATES,
    TRANSITIONS,
    Action,
    Refusal,
    Role,
    State,
    Transition,
    may_perform,
    may_view_nik,
)

KASI, ADB, STAF = frozenset({Role.KASI}), frozenset({Role.ADB}), frozenset({Role.STAF})


@pytest.mark.parametrize(
    ("action", "source", "roles", "target"),
    [
        (Action.VERIFY, State.NEW, KASI, State.VERIFIED),
        (Action.REJECT, State.NEW, KASI, State.REJECTED),
        (Action.CANCEL, State.NEW, KASI, State.CANCELLED),
        (Action.SYNC_AT_KONSOLIDASI, State.VERIFIED, ADB, State.SYNCED),
        (Action.CONFIRM_DWH, State.SENT_TO_DWH, ADB, State.READY_TO_INFORM),
        (Action.INFORM, State.READY_TO_INFORM, STAF, State.DONE),
        (Action.INFORM, State.READY_TO_INFORM, ADB, State.DONE),
        (Action.INFORM, State.REJECTED, KASI, State.CLOSED_REJECTED),
    ],
)
def test_allowed_transitions(
    action: Action, source: State, roles: frozenset[Role], target: State
) -> None:
    decision = may_perform(action, source, roles, is_opener=False)
    assert isinstance(decision, Transition) and decision.target == target


def test_wrong_roles_are_refused() -> None:
    assert may_perform(Action.VERIFY, State.NEW, STAF, is_opener=True) == Refusal.NOT_ALLOWED
    assert may_perform(Action.VERIFY, State.NEW, ADB, is_opener=False) == Refusal.NOT_ALLOWED
    assert (
        may_perform(Action.SYNC_AT_KONSOLIDASI, State.VERIFIED, KASI, is_opener=False)
        == Refusal.NOT_ALLOWED
    )
    assert may_perform(Action.CANCEL, State.NEW, STAF, is_opener=False) == Refusal.NOT_ALLOWED
    assert isinstance(may_perform(Action.CANCEL, State.NEW, STAF, is_opener=True), Transition)
    # Nobody presses "send to DWH": only the recap sender does it.
    for roles in (KASI, ADB, STAF):
        assert (
            may_perform(Action.SEND_TO_DWH, State.SYNCED, roles, is_opener=True)
            == Refusal.NOT_ALLOWED
        )


def test_stale_and_closed() -> None:
    assert may_perform(Action.VERIFY, State.VERIFIED, KASI, is_opener=False) == Refusal.WRONG_STATE
    assert may_perform(Action.VERIFY, State.CANCELLED, KASI, is_opener=False) == Refusal.CLOSED


def test_every_state_is_reachable_and_closed_states_are_final() -> None:
    reachable = {State.NEW}
    for _ in TRANSITIONS:
        reachable |= {t.target for t in TRANSITIONS if t.source in reachable}
    assert reachable == set(State)
    for t in TRANSITIONS:
        assert t.source in OPEN_STATES


def test_nik_view_only_for_staff_on_open_tickets() -> None:
    assert may_view_nik(State.NEW, STAF)
    assert not may_view_nik(State.NEW, frozenset())
    assert not may_view_nik(State.DONE, KASI)


@pytest.mark.parametrize(
    "data",
    ["", "1:v", "1:v:0", "1:v:01", "2:v:1", "1:z:1", "1:r:1", "1:v:1:2", "1:v:1234567890",
     "1:v:1 ", "'; DROP TABLE tickets; --", "1:v:1' OR '1'='1", "x" * 64, "1:n:-1",
     "1:r:1:123"],
)  # fmt: skip
def test_callback_data_is_parsed_strictly(data: str) -> None:
    assert parse(data) is None


def test_callback_data_round_trip() -> None:
    for press in Press:
        index = 3 if press == Press.REJECT_REASON else None
        data = encode(press, 999999999, index)
        assert len(data.encode()) <= 64
        parsed = parse(data)
        assert parsed is not None and (parsed.press, parsed.target_id, parsed.index) == (
            press,
            999999999,
            index,
        )
