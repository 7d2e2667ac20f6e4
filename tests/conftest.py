"""Shared fixtures: the real application against the strict Bot API emulator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ticketbot.emulator.botapi import ApiCall
from ticketbot.emulator.simulation import Simulation

VALID_FORM = (
    "/tiket\n"
    "NIK: 1273014506850001\n"
    "KK: 1273010101090003\n"
    "Lembaga: BPJS Kesehatan\n"
    "HP: 0812-3456-7890\n"
    "Keterangan: NIK tidak terbaca di aplikasi P-Care"
)


def form(**fields: str) -> str:
    """VALID_FORM with some lines replaced (value "" drops the line)."""
    lines = VALID_FORM.splitlines()
    out = [lines[0]]
    names = {
        "nik": "NIK",
        "kk": "KK",
        "lembaga": "Lembaga",
        "hp": "HP",
        "keterangan": "Keterangan",
    }
    values = dict(line.split(": ", 1) for line in lines[1:])
    for key, label in names.items():
        value = fields.get(key, values[label])
        if value:
            out.append(f"{label}: {value}")
    return "\n".join(out)


def not_pings(calls: list[ApiCall]) -> list[ApiCall]:
    """Messages the bot sent, less its turn pings (SPEC §3 "Whose turn it is")."""
    return [c for c in calls if not str(c.params.get("text", "")).startswith("🔔")]


FULL_NUMBER = re.compile(r"(?<!\d)\d{16}(?!\d)")


def assert_no_full_numbers(sim: Simulation, *, allow_alerts: bool = True) -> None:
    """No 16-digit NIK or KK in anything the bot posted or edited into the group."""
    for call in sim.api.calls_of("sendMessage", "editMessageText"):
        if not str(call.params.get("chat_id", "")).startswith("-"):
            continue  # a private chat: a person's own refused form may come back there
        assert not FULL_NUMBER.search(str(call.params.get("text"))), call.params
        assert not FULL_NUMBER.search(str(call.params.get("reply_markup"))), call.params
    if not allow_alerts:
        for call in sim.api.calls_of("answerCallbackQuery"):
            assert not FULL_NUMBER.search(str(call.params.get("text"))), call.params


@pytest.fixture
async def sim(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Simulation]:
    settings = getattr(request, "param", {})
    async with Simulation(tmp_path, settings=settings) as simulation:
        yield simulation
        # Strictness is the point of the emulator: nothing Telegram would reject, and
        # every tap answered.
        assert simulation.api.errors == [], [
            (c.method, c.description) for c in simulation.api.errors
        ]
        assert simulation.api.unanswered_callbacks() == []
        assert_no_full_numbers(simulation)


def always_open_config(path: Path, base_url: str, smtp_port: int, smtp_extra: str = "") -> Path:
    """A config for a real `ticketbot run` subprocess: the simulated office's people, and
    every day a working day all day (that process runs on the real clock)."""
    from ticketbot.emulator.simulation import ADB, GROUP_ID, KASI, STAF

    path.write_text(
        '[office]\nname = "Disdukcapil Kota Sibolga"\n'
        f'[telegram]\nbase_url = "{base_url}"\ngroup_id = {GROUP_ID}\n'
        "group_messages_per_minute = 600\n"
        f"[roles]\nkasi = [{KASI.user_id}]\nadb = [{ADB.user_id}]\nstaf = [{STAF.user_id}]\n"
        '[database]\npath = "office.sqlite3"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n{smtp_extra}'
        'from = "Disdukcapil <disdukcapil@example.go.id>"\n'
        '[recap]\nto = ["admin-dwh@example.go.id"]\ntime = "23:59"\n'
        '[calendar]\nworkdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
        'work_hours = "00:00-23:59"\npublic_holidays = ""\n'
    )
    path.chmod(0o600)
    return path
