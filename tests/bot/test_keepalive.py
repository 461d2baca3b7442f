"""Rasa's calls to the action server reuse one connection, and survive the server going away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from bot.keepalive import IDLE_SECONDS, install_kept_connections
from tests.ports import free_port


@pytest.fixture(autouse=True)
def kept() -> Iterator[None]:
    original = EndpointConfig.session
    install_kept_connections()
    yield
    EndpointConfig.session = original  # type: ignore[method-assign]


class Server:
    """A stand-in action server that counts the TCP connections it is given."""

    def __init__(self) -> None:
        self.connections: set[int] = set()
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def webhook(self, request: web.Request) -> web.Response:
        self.connections.add(id(request.transport))
        return web.json_response({"events": [], "responses": []})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhook", self.webhook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_one_connection_serves_a_messages_actions() -> None:
    server = Server()
    await server.start()
    try:
        endpoint = EndpointConfig(f"http://127.0.0.1:{server.port}/webhook")
        for _ in range(5):
            assert await endpoint.request(json={"next_action": "x"}) == {
                "events": [],
                "responses": [],
            }
        assert len(server.connections) == 1
    finally:
        await server.stop()


async def test_the_action_server_restarting_costs_no_request() -> None:
    server = Server()
    await server.start()
    endpoint = EndpointConfig(f"http://127.0.0.1:{server.port}/webhook")
    await endpoint.request(json={})
    await server.stop()
    await server.start()  # same port, the kept connection is dead
    try:
        await asyncio.sleep(0.1)
        assert await endpoint.request(json={}) == {"events": [], "responses": []}
        await asyncio.sleep(IDLE_SECONDS + 0.5)  # idle: dropped before the server would
        assert await endpoint.request(json={}) == {"events": [], "responses": []}
    finally:
        await server.stop()
