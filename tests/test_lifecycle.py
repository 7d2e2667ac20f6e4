"""The ticket state machine (pure)."""

from __future__ import annotations

import pytest

from ticketbot import callback_data as cb
from ticketbot.callback_data import Menu, encode, parse
from ticketbot.domain.lifecycle import SOP_09, Action, Refusal, Role, State, Transition

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
    decision = SOP_09.may_perform(action, source, roles, is_opener=False)
    assert isinstance(decision, Transition) and decision.target == target


def test_wrong_roles_are_refused() -> None:
    assert (
        SOP_09.may_perform(Action.VERIFY, State.NEW, STAF, is_opener=True) == Refusal.NOT_ALLOWED
    )
    assert (
        SOP_09.may_perform(Action.VERIFY, State.NEW, ADB, is_opener=False) == Refusal.NOT_ALLOWED
    )
    assert (
        SOP_09.may_perform(Action.SYNC_AT_KONSOLIDASI, State.VERIFIED, KASI, is_opener=False)
        == Refusal.NOT_ALLOWED
    )
    assert (
        SOP_09.may_perform(Action.CANCEL, State.NEW, STAF, is_opener=False) == Refusal.NOT_ALLOWED
    )
    assert isinstance(
        SOP_09.may_perform(Action.CANCEL, State.NEW, STAF, is_opener=True), Transition
    )
    # Nobody presses "send to DWH": only the recap sender does it.
    for roles in (KASI, ADB, STAF):
        assert (
            SOP_09.may_perform(Action.SEND_TO_DWH, State.SYNCED, roles, is_opener=True)
            == Refusal.NOT_ALLOWED
        )


def test_stale_and_closed() -> None:
    assert (
        SOP_09.may_perform(Action.VERIFY, State.VERIFIED, KASI, is_opener=False)
        == Refusal.WRONG_STATE
    )
    assert (
        SOP_09.may_perform(Action.VERIFY, State.CANCELLED, KASI, is_opener=False) == Refusal.CLOSED
    )


def test_every_state_is_reachable_and_closed_states_are_final() -> None:
    reachable = {State.NEW}
    for _ in SOP_09.transitions:
        reachable |= {t.target for t in SOP_09.transitions if t.source in reachable}
    assert reachable == set(State)
    for t in SOP_09.transitions:
        assert t.source in SOP_09.open_states


def test_nik_view_only_for_staff_on_open_tickets() -> None:
    assert SOP_09.may_view_nik(State.NEW, STAF)
    assert not SOP_09.may_view_nik(State.NEW, frozenset())
    assert not SOP_09.may_view_nik(State.DONE, KASI)


@pytest.mark.parametrize(
    "data",
    ["", "1:v", "1:v:0", "1:v:01", "2:v:1", "1:r:1", "1:v:1:2", "1:v:1234567890",
     "1:v:1 ", "'; DROP TABLE tickets; --", "1:v:1' OR '1'='1", "x" * 64, "1:n:-1",
     "1:r:1:123", "1:r:1:t0:1", "1:x:1:t1:2", "1:v:1:t1", "1:r:1:t1"],
)  # fmt: skip
def test_callback_data_is_parsed_strictly(data: str) -> None:
    assert parse(data) is None


def test_callback_data_round_trip() -> None:
    codes = [b.code for b in SOP_09.buttons] + [cb.VIEW_NIK, cb.VIEW_PHOTO, cb.CONFIRM_BATCH]
    for code in codes:
        data = encode(code, 999999999)
        assert len(data.encode()) <= 64
        assert parse(data) == cb.ButtonPress(code, 999999999)
    menu = Menu("t", 999999)
    for data, index in ((encode(cb.REASON, 999999999, menu, 99), 99),
                        (encode(cb.BACK, 999999999, menu), None)):  # fmt: skip
        assert len(data.encode()) <= 64
        parsed = parse(data)
        assert parsed is not None and (parsed.menu, parsed.index) == (menu, index)


def test_a_code_the_table_does_not_know_is_no_action() -> None:
    assert parse("1:z:1") == cb.ButtonPress("z", 1)
    assert SOP_09.action_of_code("z") is None


def test_the_table_refuses_a_broken_procedure() -> None:
    with pytest.raises(ValueError, match="button code 'n' is taken"):
        SOP_09.__class__(SOP_09.steps, SOP_09.transitions,
                         (*SOP_09.buttons[:-1], SOP_09.buttons[-1].__class__("inform", "n", "x")),
                         SOP_09.roles, SOP_09.reason_lists)  # fmt: skip
