"""`ticketbot run` as production runs it: a separate process, real logging, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import VALID_FORM
from ticketbot.emulator.botapi import FakeBotApi
from ticketbot.emulator.simulation import GROUP_ID, STAF

TOKEN = "654321:TEST-run-not-a-real-token-xyz"


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    server = FakeBotApi(token=TOKEN)
    await server.start()
    server.add_group(GROUP_ID)
    server.add_user(STAF.user_id, STAF.first_name, STAF.last_name)
    yield server
    await server.stop()


async def test_run_serves_then_stops_cleanly_on_sigterm(api: FakeBotApi, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[office]\nname = "Disdukcapil Kota Sibolga"\n'
        f'[telegram]\nbase_url = "{api.base_url}"\ngroup_id = {GROUP_ID}\n'
        f"[roles]\nkasi = [111111111]\nadb = [222222222]\nstaf = [{STAF.user_id}]\n"
        '[database]\npath = "office.sqlite3"\n'
        '[smtp]\nhost = "127.0.0.1"\nport = 9\nsecurity = "none"\nfrom = "x@example.go.id"\n'
        '[recap]\nto = ["admin-dwh@example.go.id"]\n'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ticketbot", "run", "--config", str(config), "--verbose",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TICKETBOT_TELEGRAM_TOKEN": TOKEN},
    )  # fmt: skip
    try:
        await api.wait_for_call("setMyCommands")
        await api.post(STAF.user_id, GROUP_ID, VALID_FORM)
        card = await api.wait_for_call("sendMessage")
        assert "Tiket #1" in str(card.params["text"])
        await api.wait_for_call("deleteMessage")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "ticketbot is running" in log and "ticketbot stopped" in log
    # DEBUG logging of a real run: never the token, never a full NIK or KK.
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    assert "1273014506850001" not in log and "1273010101090003" not in log
    assert (tmp_path / "office.sqlite3").exists()
