"""A local Bot API server over real HTTP, as strict as Telegram (SPEC §6).

Used by the tests and by `ticketbot demo`. It keeps the group's messages, plays people
(posting, replying, pressing buttons) by queueing updates for getUpdates, records every
call, and rejects what Telegram rejects: bad HTML/MarkdownV2 entities, texts over 4096
characters, callback_data over 64 bytes, edits that change nothing, callback queries
answered twice or after 15 s, replies to missing messages. It can also answer 429 with
retry_after and 5xx on demand, and enforce a per-group rate limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from ticketbot.emulator.entities import EntityError, plain_text, utf16_len

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # Telegram: photos up to 10 MB,
MAX_PHOTO_SIDES = 10_000  # width + height at most 10 000, ratio at most 20
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # documents up to 50 MB (bots, cloud Bot API)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_MARKUP_BYTES = 10_240
MAX_CALLBACK_DATA = 64
MAX_ANSWER_TEXT = 200
CALLBACK_ANSWER_WINDOW = 15.0
# Calls charged to a group's message budget (group_limit).
CHARGED = frozenset({"sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto",
                     "sendDocument", "copyMessage", "forwardMessage"})  # fmt: skip
COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
JSON_FIELDS = {"reply_markup", "reply_parameters", "commands", "scope", "link_preview_options",
               "entities", "allowed_updates"}  # fmt: skip


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        description: str,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass(frozen=True)
class Upload:
    """A file sent with the call (multipart/form-data)."""

    filename: str
    content_type: str
    data: bytes


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG; None when the bytes are neither."""
    if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(b"\xff\xd8"):
        at = 2
        while at + 9 < len(data) and data[at] == 0xFF:
            marker, length = data[at + 1], int.from_bytes(data[at + 2 : at + 4], "big")
            if 0xC0 <= marker <= 0xC3:
                height = int.from_bytes(data[at + 5 : at + 7], "big")
                return int.from_bytes(data[at + 7 : at + 9], "big"), height
            at += 2 + length
    return None


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    status: int = 200
    description: str | None = None
    injected: bool = False
    result: Any = None
    at: float = field(default_factory=time.monotonic)  # when Telegram received it


@dataclass
class StoredMessage:
    chat_id: int
    message_id: int
    from_id: int
    date: int
    text: str | None = None  # as sent (HTML source for the bot's messages)
    plain: str | None = None  # after entity parsing: what people see
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    photo_file_id: str | None = None
    reply_to: int | None = None
    deleted: bool = False
    edits: int = 0
    protected: bool = False  # protect_content: no forwarding, no saving
    upload: Upload | None = None  # the photo or document as uploaded
    photo_size: tuple[int, int] = (1280, 960)
    media_group_id: str | None = None  # one album's photos share it
    document_file_id: str | None = None  # a document sent again by its file id


@dataclass
class Fault:
    method: str
    status: int
    description: str
    retry_after: int | None = None


@dataclass
class CallbackRecord:
    created: float
    user_id: int
    answered: bool = False


@dataclass
class FakeBotApi:
    token: str = "123456:TEST-fake-bot-api-not-a-real-token"
    bot_id: int = 123456789
    bot_username: str = "sibolga_tiket_bot"
    clock: Callable[[], float] = time.monotonic
    can_delete: bool = True
    # (messages, seconds) per group chat, counted over every chat-bound call; None: off.
    group_limit: tuple[int, float] | None = None
    calls: list[ApiCall] = field(default_factory=list)
    messages: dict[tuple[int, int], StoredMessage] = field(default_factory=dict)
    commands: list[dict[str, str]] = field(default_factory=list)
    started: set[int] = field(default_factory=set)  # users who opened a private chat

    def __post_init__(self) -> None:
        # (method, condition, action): run once, right after Telegram has done the call and
        # before the bot gets the answer (a crash there is the hard case).
        self._hooks: list[tuple[str, Callable[[ApiCall], bool], Callable[[ApiCall], None]]] = []
        self._delays: list[tuple[str, float]] = []
        self._chats: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self.last_update_id = 0
        # Each getUpdates offset as received (getUpdates calls are not in `calls`): from
        # then on Telegram has forgotten every update below it.
        self.offsets: list[tuple[int, float]] = []
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._query_ids = itertools.count(1)
        self._callbacks: dict[str, CallbackRecord] = {}
        self._faults: list[Fault] = []
        self._sent_at: dict[int, deque[float]] = {}
        self._changed: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self._photo_ids = itertools.count(1)
        self.base_url = ""
        self._releasing = False
        self._allowed: list[str] = []
        self._migrated: dict[int, int] = {}

    # -- server lifecycle --------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server: Any = site._server
        bound = server.sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{bound}/bot"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def release_polls(self, releasing: bool = True) -> None:
        """While releasing, getUpdates answers at once: a stopping bot need not wait out
        its long poll."""
        assert self._changed is not None
        async with self._changed:
            self._releasing = releasing
            self._changed.notify_all()

    # -- the world: chats and people ---------------------------------------------------

    @property
    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Tiket Disdukcapil",
                "username": self.bot_username}  # fmt: skip

    def add_group(self, chat_id: int, title: str = "Layanan Disdukcapil") -> None:
        self._chats[chat_id] = {"id": chat_id, "type": "supergroup", "title": title}

    def add_user(self, user_id: int, first_name: str, last_name: str | None = None) -> None:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        self._users[user_id] = user
        self._chats.setdefault(user_id, {"id": user_id, "type": "private",
                                         "first_name": first_name})  # fmt: skip

    async def migrate_group(self, old_id: int, new_id: int) -> None:
        """Telegram upgrades a group to a supergroup: a new chat id, the history kept (here
        with the same message ids), the old id refused from now on, and a service message
        in each chat."""
        self._chats[new_id] = {**self._chats[old_id], "id": new_id, "type": "supergroup"}
        self._migrated[old_id] = new_id
        for (chat, message_id), m in list(self.messages.items()):
            if chat == old_id:
                self.messages[(new_id, message_id)] = replace(m, chat_id=new_id)
        self._message_ids[new_id] = self._message_ids.setdefault(old_id, itertools.count(1))
        sender = self._users[next(iter(self._users))]
        for chat, key, value in ((old_id, "migrate_to_chat_id", new_id),
                                 (new_id, "migrate_from_chat_id", old_id)):  # fmt: skip
            await self._push({"message": {
                "message_id": self._new_message_id(chat), "from": sender,
                "chat": self._chats[chat] if chat == new_id else {**self._chats[old_id],
                                                                  "type": "group"},
                "date": int(time.time()), key: value,
            }})  # fmt: skip

    def _new_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def message(self, chat_id: int, message_id: int) -> StoredMessage:
        return self.messages[(chat_id, message_id)]

    def visible(self, chat_id: int) -> list[StoredMessage]:
        """The chat as people see it now, oldest first."""
        return [m for (c, _), m in sorted(self.messages.items()) if c == chat_id and not m.deleted]

    def _message_dict(self, m: StoredMessage) -> dict[str, Any]:
        sender = self.bot_user if m.from_id == self.bot_id else self._users[m.from_id]
        out: dict[str, Any] = {
            "message_id": m.message_id, "from": sender, "chat": self._chats[m.chat_id],
            "date": m.date,
        }  # fmt: skip
        source = m.text if m.from_id != self.bot_id else m.plain
        if m.photo_file_id:
            width, height = m.photo_size
            out["photo"] = [{"file_id": m.photo_file_id, "file_unique_id": m.photo_file_id[-8:],
                             "width": width, "height": height}]  # fmt: skip
            if source:
                out["caption"] = source
                out["caption_entities"] = _command_entities(source)
        elif m.document_file_id is not None:
            out["document"] = {"file_id": m.document_file_id,
                               "file_unique_id": m.document_file_id[-8:]}  # fmt: skip
            if source:
                out["caption"] = source
        elif m.upload is not None:
            out["document"] = {"file_id": f"BQAC{m.message_id:08d}", "file_unique_id":
                               f"doc{m.message_id}", "file_name": m.upload.filename,
                               "mime_type": m.upload.content_type,
                               "file_size": len(m.upload.data)}  # fmt: skip
            if source:
                out["caption"] = source
                out["caption_entities"] = _command_entities(source)
        elif source is not None:
            out["text"] = source
            entities = _command_entities(source) if m.from_id != self.bot_id else []
            if entities:
                out["entities"] = entities
        if m.media_group_id:
            out["media_group_id"] = m.media_group_id
        if m.reply_markup:
            out["reply_markup"] = m.reply_markup
        if m.reply_to is not None and (m.chat_id, m.reply_to) in self.messages:
            out["reply_to_message"] = self._message_dict(self.messages[(m.chat_id, m.reply_to)])
        if m.edits:
            out["edit_date"] = m.date
        return out

    async def _push(self, update: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self.last_update_id = update_id
        update["update_id"] = update_id
        assert self._changed is not None, "start() the server first"
        async with self._changed:
            self._updates.append(update)
            self._changed.notify_all()
        return update_id

    @property
    def next_update_id(self) -> int:
        return self.last_update_id + 1

    async def post(
        self,
        user_id: int,
        chat_id: int,
        text: str,
        *,
        photo: bool = False,
        reply_to: int | None = None,
        document: str | None = None,
        album: str | None = None,
    ) -> tuple[int, int]:
        """A person sends a message (or a photo, or a file named `document`, with `text` as
        caption, in the album `album`); returns (update_id, message_id)."""
        m = StoredMessage(
            chat_id=chat_id, message_id=self._new_message_id(chat_id), from_id=user_id,
            date=int(time.time()), text=text or None, plain=text or None, reply_to=reply_to,
            photo_file_id=f"AgACAgUAAxkBAAI{next(self._photo_ids):08d}" if photo else None,
            upload=Upload(document, "application/pdf", b"%PDF-1.4 scan") if document else None,
            media_group_id=album,
        )  # fmt: skip
        self.messages[(chat_id, m.message_id)] = m
        if chat_id == user_id:
            self.started.add(user_id)  # a private chat with the bot is open from now on
        update_id = await self._push({"message": self._message_dict(m)})
        return update_id, m.message_id

    async def edit_by_person(self, chat_id: int, message_id: int, text: str) -> int:
        """The sender edits their message (text, or a photo's caption); returns update_id."""
        m = self.messages[(chat_id, message_id)]
        assert m.from_id != self.bot_id, "people edit their own messages"
        assert not m.deleted, "a deleted message cannot be edited"
        m.text = m.plain = text
        m.edits += 1
        return await self._push({"edited_message": self._message_dict(m)})

    async def press(
        self, user_id: int, chat_id: int, message_id: int, data: str, *, forged: bool = False
    ) -> tuple[int, str]:
        """A person taps an inline button; returns (update_id, callback_query_id).

        A real client can only send the data of a button that is on the message; pass
        forged=True to send arbitrary data, as a modified client could."""
        m = self.messages[(chat_id, message_id)]
        if not forged:
            buttons = [b for row in (m.reply_markup or {}).get("inline_keyboard", []) for b in row]
            if m.deleted or data not in [b.get("callback_data") for b in buttons]:
                raise AssertionError(f"no button with data {data!r} on message {message_id}")
        query_id = f"{next(self._query_ids)}{user_id}"
        self._callbacks[query_id] = CallbackRecord(self.clock(), user_id)
        update = {"callback_query": {
            "id": query_id, "from": self._users[user_id], "message": self._message_dict(m),
            "chat_instance": str(abs(chat_id)), "data": data,
        }}  # fmt: skip
        return await self._push(update), query_id

    def button_data(self, chat_id: int, message_id: int, label_part: str) -> str:
        """The callback_data of the button whose label contains `label_part`."""
        m = self.messages[(chat_id, message_id)]
        for row in (m.reply_markup or {}).get("inline_keyboard", []):
            for b in row:
                if label_part in b["text"] and "callback_data" in b:
                    return str(b["callback_data"])
        raise AssertionError(f"no button labelled {label_part!r} on message {message_id}")

    def fail_next(
        self,
        method: str,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
    ) -> None:
        """The next `count` calls of `method` fail (429 needs retry_after)."""
        text = description or {429: f"Too Many Requests: retry after {retry_after}",
                               500: "Internal Server Error",
                               502: "Bad Gateway"}.get(status, "Bad Request")  # fmt: skip
        self._faults.extend(Fault(method, status, text, retry_after) for _ in range(count))

    def when(
        self,
        method: str,
        action: Callable[[ApiCall], None],
        condition: Callable[[ApiCall], bool] = lambda _: True,
    ) -> None:
        """Once `method` has been done (and `condition` holds), run `action` before the bot
        gets the answer: e.g. kill -9 the bot right after Telegram posted its card."""
        self._hooks.append((method, condition, action))

    def delay_next(self, method: str, seconds: float) -> None:
        """The next call of `method` is done at once but answered `seconds` later (a slow
        Telegram: the bot's read timeout may give up before the answer)."""
        self._delays.append((method, seconds))

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        """Wait until `condition` holds; it is checked after every call the bot makes (for a
        bot in another process: what it did is only seen here)."""
        assert self._changed is not None
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(condition)

    async def wait_for_call(self, method: str, count: int = 1, timeout: float = 20) -> ApiCall:
        """Wait until `method` has succeeded `count` times (for a bot in another process)."""
        assert self._changed is not None
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.calls_of(method)) >= count)
        return self.calls_of(method)[count - 1]

    # -- inspection ------------------------------------------------------------------------

    def calls_of(self, *methods: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method in methods and c.status == 200]

    @property
    def errors(self) -> list[ApiCall]:
        """Calls Telegram would have rejected (injected faults excluded). Asking getChat
        about a group that became a supergroup is how a bot learns its new id: an answer,
        not a mistake."""
        return [c for c in self.calls if c.status != 200 and not c.injected
                and not (c.method == "getChat" and "upgraded" in str(c.description))]  # fmt: skip

    def unanswered_callbacks(self) -> list[str]:
        return [q for q, r in self._callbacks.items() if not r.answered]

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        if request.match_info["token"] != self.token:
            call = ApiCall(method, params, 401, "Unauthorized")
            self.calls.append(call)
            return _error_response(call.status, "Unauthorized")
        call = ApiCall(method, params)
        fault = next((f for f in self._faults if f.method == method), None)
        if fault is not None:
            self._faults.remove(fault)
            call.status, call.description, call.injected = fault.status, fault.description, True
            self.calls.append(call)
            return _error_response(fault.status, fault.description, fault.retry_after)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            call.status, call.description = 404, "Not Found"
            self.calls.append(call)
            return _error_response(404, "Not Found")
        if method != "getUpdates":
            self.calls.append(call)
        try:
            self._check_rate(method, params)
            result = await handler(params)
        except ApiError as error:
            call.status, call.description = error.status, error.description
            if method == "getUpdates":
                self.calls.append(call)
            return _error_response(
                error.status, error.description, error.retry_after, error.migrate_to_chat_id
            )
        call.result = result
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()
        for hook in [h for h in self._hooks if h[0] == method and h[1](call)]:
            self._hooks.remove(hook)
            hook[2](call)
        delay = next((d for d in self._delays if d[0] == method), None)
        if delay is not None:
            self._delays.remove(delay)
            await asyncio.sleep(delay[1])
        return web.json_response({"ok": True, "result": result})

    def _check_rate(self, method: str, params: dict[str, Any]) -> None:
        """Telegram's group limit is on messages: what is posted or edited. Deletions and
        callback answers are not charged."""
        if self.group_limit is None or method not in CHARGED:
            return
        chat_id = params.get("chat_id")
        if chat_id is None or int(chat_id) >= 0:
            return
        limit, period = self.group_limit
        now = self.clock()
        window = self._sent_at.setdefault(int(chat_id), deque())
        while window and window[0] <= now - period:
            window.popleft()
        if len(window) >= limit:
            retry = max(1, math.ceil(window[0] + period - now))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry)
        window.append(now)

    def _chat(self, params: dict[str, Any]) -> int:
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, TypeError, ValueError):
            raise bad_request("chat_id is empty") from None
        if chat_id in self._migrated:
            raise ApiError(
                400, "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=self._migrated[chat_id],
            )  # fmt: skip
        if chat_id not in self._chats:
            raise bad_request("chat not found")
        return chat_id

    def _bot_message(self, params: dict[str, Any], *, action: str) -> StoredMessage:
        chat_id = self._chat(params)
        try:
            m = self.messages[(chat_id, int(params["message_id"]))]
        except (KeyError, TypeError, ValueError):
            raise bad_request(f"message to {action} not found") from None
        if m.deleted:
            raise bad_request(f"message to {action} not found")
        if m.from_id != self.bot_id and action == "edit":
            raise bad_request("message can't be edited")
        return m

    def _text(self, params: dict[str, Any], key: str = "text", limit: int = MAX_TEXT) -> str:
        text = params.get(key)
        if not isinstance(text, str) or not text.strip():
            raise bad_request("message text is empty")
        try:
            plain = plain_text(text, params.get("parse_mode"))
        except EntityError as error:
            raise bad_request(str(error)) from None
        if not plain.strip():
            raise bad_request("message text is empty")
        if utf16_len(plain) > limit:
            raise bad_request("message is too long")
        return plain

    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}  # fmt: skip

    async def _api_getChat(self, params: dict[str, Any]) -> Any:
        """As Telegram: a group upgraded to a supergroup answers 400 with its new id."""
        return {**self._chats[self._chat(params)], "accent_color_id": 0, "max_reaction_count": 11}

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_setMyCommands(self, params: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("commands must be a list of at most 100 commands")
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands = list(commands)
        return True

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        assert self._changed is not None
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed = [str(a) for a in allowed]  # Telegram remembers the last list
        async with self._changed:
            if offset:
                self.offsets.append((offset, time.monotonic()))
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._deliverable() and timeout > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._changed.wait_for(self._poll_answerable)
            return self._deliverable()[:limit]

    def _deliverable(self) -> list[dict[str, Any]]:
        """Pending updates; Telegram never delivers kinds outside allowed_updates."""
        if self._allowed:
            self._updates = [
                u for u in self._updates if any(k in self._allowed for k in u if k != "update_id")
            ]
        return self._updates

    def _poll_answerable(self) -> bool:
        return bool(self._deliverable()) or self._releasing

    def _check_markup(self, params: dict[str, Any]) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if not isinstance(rows, list):
            raise bad_request("can't parse reply keyboard markup JSON object")
        # Telegram: at most 100 buttons, and about 10 KB of keyboard JSON (tginfo's limits).
        too_big = len(json.dumps(markup, ensure_ascii=False).encode()) > MAX_MARKUP_BYTES
        if sum(len(r) for r in rows) > 100 or too_big:
            raise bad_request("reply markup is too long")
        for row in rows:
            for b in row:
                if not str(b.get("text", "")).strip():
                    raise bad_request("text buttons are unallowed in the inline keyboard")
                kinds = [k for k in ("callback_data", "url") if k in b]
                if len(kinds) != 1:
                    raise bad_request('can\'t find field "callback_data" or "url"')
                if (
                    "callback_data" in b
                    and not 1 <= len(str(b["callback_data"]).encode()) <= MAX_CALLBACK_DATA
                ):
                    raise bad_request("BUTTON_DATA_INVALID")
                if "url" in b:
                    url = urlparse(str(b["url"]))
                    if url.scheme not in ("http", "https", "tg") or not (url.netloc or url.path):
                        raise bad_request("BUTTON_URL_INVALID")
        return markup

    def _check_reply(self, params: dict[str, Any], chat_id: int) -> int | None:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply"),
            }
        if not reply:
            return None
        target = self.messages.get((chat_id, int(reply["message_id"])))
        if target is None or target.deleted:
            if reply.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return target.message_id

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat(params)
        if chat_id > 0 and chat_id not in self.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        plain = self._text(params)
        markup = self._check_markup(params)
        reply_to = self._check_reply(params, chat_id)
        m = StoredMessage(
            chat_id=chat_id, message_id=self._new_message_id(chat_id), from_id=self.bot_id,
            date=int(time.time()), text=params["text"], plain=plain,
            parse_mode=params.get("parse_mode"), reply_markup=markup, reply_to=reply_to,
        )  # fmt: skip
        self.messages[(chat_id, m.message_id)] = m
        return self._message_dict(m)

    async def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        m = self._bot_message(params, action="edit")
        plain = self._text(params)
        markup = self._check_markup(params)
        if (params["text"], params.get("parse_mode"), markup) == (m.text, m.parse_mode,
                                                                  m.reply_markup):  # fmt: skip
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        m.text, m.plain, m.parse_mode, m.reply_markup = (
            params["text"],
            plain,
            params.get("parse_mode"),
            markup,
        )
        m.edits += 1
        return self._message_dict(m)

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        m = self._bot_message(params, action="edit")
        markup = self._check_markup(params)
        if markup == m.reply_markup:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        m.reply_markup = markup
        m.edits += 1
        return self._message_dict(m)

    async def _api_deleteMessage(self, params: dict[str, Any]) -> Any:
        m = self._bot_message(params, action="delete")
        if not self.can_delete and m.from_id != self.bot_id:
            raise bad_request("message can't be deleted")
        m.deleted = True
        return True

    async def _api_sendPhoto(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat(params)
        if chat_id > 0 and chat_id not in self.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        photo = params.get("photo")
        upload, size = None, (1280, 960)
        if isinstance(photo, Upload):
            if len(photo.data) > MAX_PHOTO_BYTES:
                raise bad_request("PHOTO_SAVE_FILE_INVALID")
            found = image_size(photo.data)
            if found is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
            width, height = found
            if width + height > MAX_PHOTO_SIDES or max(width, height) > 20 * min(width, height):
                raise bad_request("PHOTO_INVALID_DIMENSIONS")
            upload, size, photo = photo, found, f"AgAC{next(self._photo_ids):012d}"
        elif not isinstance(photo, str) or not photo.startswith("AgAC"):
            raise bad_request("wrong file identifier/HTTP URL specified")
        return self._store_file(chat_id, params, photo_file_id=photo, upload=upload,
                                photo_size=size)  # fmt: skip

    async def _api_sendDocument(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat(params)
        if chat_id > 0 and chat_id not in self.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        document = params.get("document")
        if isinstance(document, str):
            # A file Telegram already has (a person's scan): sent again by its file id.
            if not document.startswith("BQAC"):
                raise bad_request("wrong file identifier/HTTP URL specified")
            return self._store_file(chat_id, params, document_file_id=document)
        if not isinstance(document, Upload):
            raise bad_request("there is no document in the request")
        if not document.data:
            raise bad_request("file must be non-empty")
        if len(document.data) > MAX_DOCUMENT_BYTES:
            raise ApiError(413, "Request Entity Too Large")
        return self._store_file(chat_id, params, upload=document)

    def _store_file(
        self,
        chat_id: int,
        params: dict[str, Any],
        *,
        photo_file_id: str | None = None,
        upload: Upload | None = None,
        photo_size: tuple[int, int] = (1280, 960),
        document_file_id: str | None = None,
    ) -> dict[str, Any]:
        caption = params.get("caption") or ""
        plain = self._text(params, "caption", MAX_CAPTION) if caption else None
        reply_to = self._check_reply(params, chat_id)
        m = StoredMessage(
            chat_id=chat_id, message_id=self._new_message_id(chat_id), from_id=self.bot_id,
            date=int(time.time()), text=caption or None, plain=plain,
            parse_mode=params.get("parse_mode"), photo_file_id=photo_file_id,
            reply_to=reply_to, protected=bool(params.get("protect_content")), upload=upload,
            photo_size=photo_size, document_file_id=document_file_id,
        )  # fmt: skip
        self.messages[(chat_id, m.message_id)] = m
        return self._message_dict(m)

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        record = self._callbacks.get(str(params.get("callback_query_id")))
        invalid = "query is too old and response timeout expired or query ID is invalid"
        if record is None or record.answered:
            raise bad_request(invalid)
        if self.clock() - record.created > CALLBACK_ANSWER_WINDOW:
            record.answered = True
            raise bad_request(invalid)
        text = params.get("text") or ""
        if len(text) > MAX_ANSWER_TEXT:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answered = True
        return True


def _command_entities(text: str) -> list[dict[str, Any]]:
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]),
         "length": utf16_len(m.group())}
        for m in COMMAND.finditer(text)
    ]  # fmt: skip


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Bot API parameters arrive as query, form or JSON; complex values are JSON strings."""
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            # Telegram reads a JSON body's numbers as it reads a form's: kept here in the
            # form's shape (text), so a call looks the same whichever way it came.
            for key, value in (await request.json()).items():
                plain = isinstance(value, int | float) and not isinstance(value, bool)
                params[key] = str(value) if plain and key not in JSON_FIELDS else value
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = value
                elif isinstance(value, web.FileField):
                    params[key] = Upload(value.filename, value.content_type, value.file.read())
    for key in JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            try:
                params[key] = json.loads(params[key])
            except json.JSONDecodeError:
                params[key] = None
    for key in ("disable_notification", "show_alert", "drop_pending_updates", "protect_content"):
        if isinstance(params.get(key), str):
            params[key] = params[key] == "true"
    return params


def _error_response(
    status: int,
    description: str,
    retry_after: int | None = None,
    migrate_to_chat_id: int | None = None,
) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    if migrate_to_chat_id is not None:
        body["parameters"] = {"migrate_to_chat_id": migrate_to_chat_id}
    return web.json_response(body, status=status)
