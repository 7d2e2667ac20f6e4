"""The Bot API transport (telegram_http.py) through python-telegram-bot's own Bot, against
the strict fake over real HTTP: what arrives, uploads, and the errors PTB expects."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.helpers import get_env_proxy_for_url
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from yarl import URL

from ticketbot import telegram_http
from ticketbot.emulator.botapi import FakeBotApi, Upload
from ticketbot.telegram_http import AiohttpRequest

GROUP = -1001


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    server = FakeBotApi()
    await server.start()
    server.add_group(GROUP)
    yield server
    await server.stop()


def bot_for(base_url: str, token: str, **timeouts: float) -> Bot:
    return Bot(token, base_url=base_url, request=AiohttpRequest(8, **timeouts))


async def test_a_call_arrives_as_telegram_reads_it_and_its_answer_is_parsed(
    api: FakeBotApi,
) -> None:
    bot = bot_for(api.base_url, api.token)
    async with bot:
        keyboard = InlineKeyboardMarkup(
            [[InlineKeyboardButton("✅ Verifikasi", callback_data="v:1")]]
        )
        sent = await bot.send_message(
            GROUP, "📋 <b>Tiket #1</b> — a &amp; b", parse_mode="HTML", reply_markup=keyboard,
            disable_notification=True,
        )  # fmt: skip
        assert sent.text == "📋 Tiket #1 — a & b" and sent.chat_id == GROUP
        assert sent.reply_markup == keyboard
        [call] = api.calls_of("sendMessage")
        assert call.params["chat_id"] == str(GROUP)  # as a form would carry it
        assert call.params["reply_markup"] == keyboard.to_dict()
        assert call.params["disable_notification"] is True
        assert await bot.delete_message(GROUP, sent.message_id) is True


async def test_telegram_refusals_are_ptb_errors(api: FakeBotApi) -> None:
    bot = bot_for(api.base_url, api.token)
    async with bot:
        with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
            await bot.send_message(GROUP, " ")
        api.fail_next("sendMessage", 429, retry_after=7)
        with pytest.raises(RetryAfter) as limited:
            await bot.send_message(GROUP, "x")
        retry = limited.value.retry_after
        assert (retry.total_seconds() if isinstance(retry, timedelta) else retry) == 7


async def test_an_upload_goes_as_multipart(api: FakeBotApi) -> None:
    bot = bot_for(api.base_url, api.token)
    async with bot:
        await bot.send_document(GROUP, InputFile(b"PK\x03\x04 data", filename="laporan.xlsx"),
                                caption="Laporan")  # fmt: skip
        [call] = api.calls_of("sendDocument")
        upload = call.params["document"]
        assert isinstance(upload, Upload)
        assert (upload.filename, upload.data) == ("laporan.xlsx", b"PK\x03\x04 data")
        assert call.params["caption"] == "Laporan"


async def test_a_late_answer_is_timed_out_and_no_server_a_network_error(
    api: FakeBotApi,
) -> None:
    bot = bot_for(api.base_url, api.token, read_timeout=0.3)
    async with bot:
        api.delay_next("sendMessage", 3)
        with pytest.raises(TimedOut):
            await bot.send_message(GROUP, "lambat")
    with socket.socket() as free:  # a port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    nobody = bot_for(f"http://127.0.0.1:{port}/bot", api.token, connect_timeout=2)
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1/", "POST")
    with pytest.raises(NetworkError):
        await nobody.initialize()  # getMe


async def test_a_proxy_from_the_environment_carries_the_calls_and_is_looked_up_once(
    api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY is honoured, as python-telegram-bot's httpx did; it is read once per
    host, not on every call (aiohttp's trust_env reads it, and ~/.netrc, in a thread each
    time)."""
    relayed: list[str] = []

    async def relay(request: web.Request) -> web.Response:
        relayed.append(request.path.rsplit("/", 1)[-1])
        async with aiohttp.ClientSession() as session, session.request(
            request.method, str(request.url), data=await request.read(),
            headers={"Content-Type": request.content_type},
        ) as answer:  # fmt: skip
            return web.Response(status=answer.status, body=await answer.read(),
                                content_type="application/json")  # fmt: skip

    proxy = web.Application()
    proxy.router.add_route("*", "/{tail:.*}", relay)
    runner = web.AppRunner(proxy)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    lookups: list[str] = []

    def counted(url: URL) -> tuple[URL, aiohttp.BasicAuth | None]:
        lookups.append(str(url))
        return get_env_proxy_for_url(url)

    monkeypatch.setattr(telegram_http, "get_env_proxy_for_url", counted)
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    try:
        bot = bot_for(api.base_url, api.token)
        async with bot:  # getMe
            for _ in range(3):
                await bot.send_message(GROUP, "lewat proxy")
        assert relayed == ["getMe", "sendMessage", "sendMessage", "sendMessage"]
        assert len(api.calls_of("sendMessage")) == 3
        assert len(lookups) == 1
    finally:
        await runner.cleanup()
