"""The fake Bot API must reject what Telegram rejects (SPEC §6), over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ticketbot.emulator.botapi import FakeBotApi
from ticketbot.emulator.entities import EntityError, parse_html, parse_markdown_v2

GROUP = -1001


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    server = FakeBotApi(clock=Clock())
    await server.start()
    server.add_group(GROUP)
    server.add_user(7, "Sari")
    yield server
    await server.stop()


async def call(api: FakeBotApi, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    data = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in params.items()}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{api.base_url}{api.token}/{method}", data=data)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "text",
    ["<script>x</script>", "a & b", "1 < 2", "2 > 1", "<b>open", "<b>x</i>", "&nbsp;",
     '<a href="javascript:alert(1)">x</a>', '<span class="x">y</span>'],
)  # fmt: skip
async def test_invalid_html_is_rejected(api: FakeBotApi, text: str) -> None:
    status, body = await call(api, "sendMessage", chat_id=GROUP, text=text, parse_mode="HTML")
    assert status == 400 and "can't parse entities" in body["description"]


@pytest.mark.parametrize(
    "text",
    ["&lt;script&gt; &amp; &quot;", "<b>bold</b> <i>x</i> <code>1</code>", "&#39;&#x27;",
     '<a href="tg://user?id=5">Kasi</a>', "<blockquote>q</blockquote>"],
)  # fmt: skip
async def test_valid_html_is_accepted(api: FakeBotApi, text: str) -> None:
    status, _ = await call(api, "sendMessage", chat_id=GROUP, text=text, parse_mode="HTML")
    assert status == 200


def test_markdown_v2_rules() -> None:
    assert parse_markdown_v2(r"*tebal* _miring_ \. \- \!") == "tebal miring . - !"
    assert parse_markdown_v2("[tautan](https://example.org)") == "tautan"
    for bad in ("a.b", "1-2", "*open", "x_y", "(a)", "wow!"):
        with pytest.raises(EntityError):
            parse_markdown_v2(bad)
    assert parse_html("&lt;b&gt;") == "<b>"


async def test_text_limits(api: FakeBotApi) -> None:
    ok, _ = await call(api, "sendMessage", chat_id=GROUP, text="x" * 4096)
    assert ok == 200
    status, body = await call(api, "sendMessage", chat_id=GROUP, text="x" * 4097)
    assert (status, body["description"]) == (400, "Bad Request: message is too long")
    # The limit counts the text after entity parsing, in UTF-16 code units.
    ok, _ = await call(api, "sendMessage", chat_id=GROUP, text="<b>" + "x" * 4096 + "</b>",
                       parse_mode="HTML")  # fmt: skip
    assert ok == 200
    status, _ = await call(api, "sendMessage", chat_id=GROUP, text="😀" * 2049)
    assert status == 400
    status, body = await call(api, "sendMessage", chat_id=GROUP, text="   ")
    assert body["description"] == "Bad Request: message text is empty"


async def test_callback_data_over_64_bytes(api: FakeBotApi) -> None:
    def markup(data: str) -> dict[str, Any]:
        return {"inline_keyboard": [[{"text": "x", "callback_data": data}]]}

    ok, _ = await call(api, "sendMessage", chat_id=GROUP, text="t", reply_markup=markup("é" * 32))
    assert ok == 200
    status, body = await call(api, "sendMessage", chat_id=GROUP, text="t",
                              reply_markup=markup("é" * 32 + "x"))  # fmt: skip
    assert (status, body["description"]) == (400, "Bad Request: BUTTON_DATA_INVALID")


async def test_edit_that_changes_nothing(api: FakeBotApi) -> None:
    _, sent = await call(api, "sendMessage", chat_id=GROUP, text="<b>a</b>", parse_mode="HTML")
    mid = sent["result"]["message_id"]
    status, body = await call(api, "editMessageText", chat_id=GROUP, message_id=mid,
                              text="<b>a</b>", parse_mode="HTML")  # fmt: skip
    assert status == 400 and "message is not modified" in body["description"]
    status, _ = await call(api, "editMessageText", chat_id=GROUP, message_id=mid, text="b")
    assert status == 200
    status, body = await call(api, "editMessageText", chat_id=GROUP, message_id=999, text="b")
    assert body["description"] == "Bad Request: message to edit not found"


async def test_callback_answered_twice_or_late(api: FakeBotApi) -> None:
    markup = {"inline_keyboard": [[{"text": "x", "callback_data": "1:v:1"}]]}
    _, sent = await call(api, "sendMessage", chat_id=GROUP, text="t", reply_markup=markup)
    mid = sent["result"]["message_id"]
    _, first = await api.press(7, GROUP, mid, "1:v:1")
    assert (await call(api, "answerCallbackQuery", callback_query_id=first))[0] == 200
    status, body = await call(api, "answerCallbackQuery", callback_query_id=first)
    assert status == 400 and "query is too old" in body["description"]
    _, late = await api.press(7, GROUP, mid, "1:v:1")
    api.clock.t += 15.5  # type: ignore[attr-defined]
    status, _ = await call(api, "answerCallbackQuery", callback_query_id=late)
    assert status == 400
    with pytest.raises(AssertionError):
        await api.press(7, GROUP, mid, "1:x:1")  # no such button on the message


async def test_reply_to_missing_message(api: FakeBotApi) -> None:
    status, body = await call(api, "sendMessage", chat_id=GROUP, text="t",
                              reply_parameters={"message_id": 77})  # fmt: skip
    assert body["description"] == "Bad Request: message to be replied not found"
    status, _ = await call(api, "sendMessage", chat_id=GROUP, text="t",
                           reply_parameters={"message_id": 77,
                                             "allow_sending_without_reply": True})  # fmt: skip
    assert status == 200


async def test_injected_429_and_5xx(api: FakeBotApi) -> None:
    api.fail_next("sendMessage", 429, retry_after=3)
    api.fail_next("sendMessage", 502)
    status, body = await call(api, "sendMessage", chat_id=GROUP, text="t")
    assert (status, body["parameters"]) == (429, {"retry_after": 3})
    status, _ = await call(api, "sendMessage", chat_id=GROUP, text="t")
    assert status == 502
    assert (await call(api, "sendMessage", chat_id=GROUP, text="t"))[0] == 200
    assert api.errors == []  # injected faults are not the bot's mistakes


async def test_group_rate_limit(api: FakeBotApi) -> None:
    api.group_limit = (3, 60)
    for _ in range(3):
        assert (await call(api, "sendMessage", chat_id=GROUP, text="t"))[0] == 200
    status, body = await call(api, "sendMessage", chat_id=GROUP, text="t")
    assert status == 429 and body["parameters"]["retry_after"] == 60
    api.clock.t += 60  # type: ignore[attr-defined]
    assert (await call(api, "sendMessage", chat_id=GROUP, text="t"))[0] == 200


async def test_unknown_method_and_bad_token(api: FakeBotApi) -> None:
    assert (await call(api, "sendTelepathy", chat_id=GROUP))[0] == 404
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{api.base_url}1:wrong/getMe")
    assert response.status_code == 401
