"""python-telegram-bot's Bot API requests over aiohttp.

python-telegram-bot's own transport (httpx, httpcore, anyio) cost ~1 ms of CPU per call on
our 2-core machine, most of ticketbot's CPU per update; aiohttp (the demo's server, already
a dependency) takes ~0.15 ms for the same call with a JSON body (measured against the same
fake Bot API, 400 calls each). Bodies go as JSON, as Telegram accepts; uploads (the monthly
report's chart and file) as multipart. Timeouts and transport errors become PTB's
`TimedOut` and `NetworkError`, so its error handling (and ours) is unchanged.

A proxy from the environment (HTTPS_PROXY & co.) is looked up once per host, not per call:
aiohttp's `trust_env` reads the environment and ~/.netrc in a worker thread on every request
(two thread hops and a file opened per Bot API call, a third of a tap's CPU). Telegram needs
no netrc credentials: the token is in the URL.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from urllib.parse import urlsplit

import aiohttp
import certifi
from aiohttp.helpers import get_env_proxy_for_url
from telegram._utils.defaultvalue import DefaultValue  # as PTB's own HTTPXRequest does
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a connection pool of `connection_pool_size`; PTB's default
    timeouts (5 s to connect, read and write, 1 s to wait for a pooled connection). aiohttp
    has no write timeout of its own: writing counts against the read timeout's socket."""

    def __init__(
        self,
        connection_pool_size: int = 256,
        *,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None
        # The body of the last answer: for the getUpdates request, what Telegram sent, which
        # the inbox stores as it came (inbox.raw_updates) instead of serialising it again.
        self.last_body = b""
        # (scheme, host) -> the proxy and its credentials from the environment, or None
        self._proxies: dict[tuple[str, str], tuple[URL, aiohttp.BasicAuth | None] | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # As httpx did: certifi's CA bundle (a server without the system's CA
            # certificates still reaches Telegram) and a proxy from HTTPS_PROXY & co.
            context = ssl.create_default_context(cafile=certifi.where())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ssl=context),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = (
            self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        )
        pool = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        # aiohttp's `connect` covers taking a pooled connection and opening a new one.
        wait = None if connect is None or pool is None else connect + pool
        timeout = aiohttp.ClientTimeout(total=None, connect=wait, sock_read=read)
        data: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] = {}
        if request_data is not None and request_data.contains_files:
            form = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():
                form.add_field(name, value)
            for name, (filename, content, mime) in request_data.multipart_data.items():
                form.add_field(name, content, filename=filename, content_type=mime)
            data = form
        elif request_data is not None:
            data = json.dumps(request_data.parameters).encode()
            headers["Content-Type"] = "application/json"
        proxy, proxy_auth = await self._proxy_for(url) or (None, None)
        try:
            async with session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                body = await response.read()
                self.last_body = body
                return response.status, body
        except TimeoutError as error:  # aiohttp's timeouts are asyncio's (TimeoutError)
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error

    async def _proxy_for(self, url: str) -> tuple[URL, aiohttp.BasicAuth | None] | None:
        """The environment's proxy for this URL's scheme and host, read once (in a thread:
        it may read ~/.netrc for the proxy's credentials)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._proxies:
            try:
                self._proxies[key] = await asyncio.to_thread(get_env_proxy_for_url, URL(url))
            except LookupError:  # none set, or this host bypasses it (NO_PROXY)
                self._proxies[key] = None
        return self._proxies[key]


__all__ = ["AiohttpRequest"]
