"""Local fakes for the channel tests: a Sanic server for our blueprints, a fake Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Sanic


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_channel(
    channel: InputChannel, on_new_message: Callable[[UserMessage], Awaitable[Any]]
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the channel's blueprint in a real Sanic server (as Rasa mounts it) on a free port."""
    # Several apps in one process: test mode keeps Sanic's start-up code rewrite repeatable
    # (what sanic-testing does, which is not installed here).
    Sanic.test_mode = True
    app = Sanic(f"channel-test-{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.blueprint(channel.blueprint(on_new_message), url_prefix=f"/webhooks/{channel.name()}")
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


@dataclass
class RecordingRasa:
    """A stand-in for Rasa's ``on_new_message``: records messages, answers via the channel."""

    reply: Callable[[UserMessage], list[dict[str, Any]]] = lambda message: []
    messages: list[UserMessage] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        for item in self.reply(message):
            await message.output_channel.send_response(message.sender_id, dict(item))

    @property
    def texts(self) -> list[str | None]:
        return [m.text for m in self.messages]


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]


class FakeTelegramApi:
    """Enough of the Telegram Bot API for python-telegram-bot's ``Bot``, on a real port."""

    token = "123456:TEST-token"

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.failures: dict[str, list[int]] = {}
        self.delays: dict[str, list[float]] = {}
        self.updates: list[dict[str, Any]] = []
        self._next_message_id = 1
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def sent_texts(self) -> list[str]:
        return [str(call.params["text"]) for call in self.calls_to("sendMessage")]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.base_url = f"http://127.0.0.1:{port}/bot"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            text = str(value)
            try:
                params[key] = json.loads(text) if key in ("reply_markup",) else text
            except ValueError:
                params[key] = text
        self.calls.append(ApiCall(method, params))
        delays = self.delays.get(method)
        if delays:
            await asyncio.sleep(delays.pop(0))
        failures = self.failures.get(method)
        if failures:
            status = failures.pop(0)
            return web.json_response(
                {"ok": False, "error_code": status, "description": "Internal Server Error"},
                status=status,
            )
        return web.json_response({"ok": True, "result": await self._result(method, params)})

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method in ("sendMessage", "sendPhoto", "sendDocument"):
            self._next_message_id += 1
            chat_id = int(params["chat_id"])
            return {
                "message_id": self._next_message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": params.get("text", ""),
            }
        if method == "getUpdates":
            if self.updates:
                pending, self.updates = self.updates, []
                return pending
            await asyncio.sleep(0.05)
            return []
        if method == "getMe":
            return {"id": 123456, "is_bot": True, "first_name": "Test", "username": "test_bot"}
        return True


def telegram_message_update(
    update_id: int,
    text: str | None = "xin chào",
    chat_id: int = 111,
    language_code: str = "vi",
    **extra: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private"},
        "from": {
            "id": chat_id,
            "is_bot": False,
            "first_name": "Citizen",
            "language_code": language_code,
        },
        **extra,
    }
    if text is not None:
        message["text"] = text
    return {"update_id": update_id, "message": message}


def telegram_callback_update(update_id: int, data: str, chat_id: int = 111) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": "Citizen", "language_code": "vi"}
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cq{update_id}",
            "from": user,
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": 900 + update_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": "…",
            },
        },
    }
