"""The fault switch (sandbox mode only): an API made slow, failing or malformed, and back."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sandbox.identity import create_identity_app
from sandbox.portal import create_portal_app
from sandbox.settings import Settings

DOSSIER = "/v1/dossiers/000.00.10.H26-261110-0001"


def switch(client: TestClient, mode: str, **more: Any) -> dict[str, Any]:
    response = client.post("/sandbox/faults", json={"mode": mode, **more})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("api", ["identity", "portal"])
def test_error_mode_answers_500_on_every_route_until_switched_off(
    api: str, identity: TestClient, portal: TestClient
) -> None:
    client = identity if api == "identity" else portal
    path = "/v1/tokens/introspect" if api == "identity" else DOSSIER
    method = "POST" if api == "identity" else "GET"
    body = {"json": {"token": "x"}} if api == "identity" else {}
    healthy = client.request(method, path, **body).status_code
    assert healthy < 500

    switch(client, "error")
    for route in (path, "/health", "/no/such/route"):
        failed = client.request(method if route == path else "GET", route, **body)
        assert failed.status_code == 500
        assert failed.json()["error"] == "fault_injected"
    assert client.get("/sandbox/faults").json() == {
        "mode": "error",
        "delay_seconds": 10.0,
        "requests": 3,  # the switch's own routes are not counted, nor faulted
    }

    switch(client, "off")
    assert client.request(method, path, **body).status_code == healthy


def test_malformed_mode_answers_200_with_json_cut_short(portal: TestClient) -> None:
    switch(portal, "malformed")
    response = portal.get("/v1/procedures", params={"q": "ho chieu"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(ValueError):
        response.json()


async def test_slow_mode_delays_the_answer_then_answers_normally(settings: Settings) -> None:
    app = create_portal_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://portal"
    ) as client:
        await client.post("/sandbox/faults", json={"mode": "slow", "delay_seconds": 0.3})
        started = time.monotonic()
        answer = await client.get(DOSSIER)
        assert time.monotonic() - started >= 0.3
        assert answer.status_code == 200 and answer.json()["code"] in DOSSIER

        with pytest.raises(asyncio.TimeoutError):  # what a client with a deadline sees
            await asyncio.wait_for(client.get(DOSSIER), timeout=0.1)

        await client.post("/sandbox/faults", json={"mode": "off"})
        started = time.monotonic()
        await client.get(DOSSIER)
        assert time.monotonic() - started < 0.2


def test_each_api_has_its_own_switch(identity: TestClient, portal: TestClient) -> None:
    switch(portal, "error")
    assert identity.get("/health").status_code == 200
    assert identity.get("/sandbox/faults").json()["mode"] == "off"


def test_setting_the_switch_resets_the_request_count(portal: TestClient) -> None:
    switch(portal, "error")
    portal.get(DOSSIER)
    assert portal.get("/sandbox/faults").json()["requests"] == 1
    assert switch(portal, "error")["requests"] == 0


@pytest.mark.parametrize(
    "body", [{"mode": "down"}, {"mode": "slow", "delay_seconds": -1}, {"delay_seconds": 1}]
)
def test_bad_switch_requests_are_refused(portal: TestClient, body: dict[str, Any]) -> None:
    response = portal.post("/sandbox/faults", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("factory", [create_identity_app, create_portal_app])
def test_no_switch_outside_sandbox_mode(settings: Settings, factory: Any) -> None:
    app: FastAPI = factory(replace(settings, sandbox_mode=False))
    client = TestClient(app)
    assert client.post("/sandbox/faults", json={"mode": "error"}).status_code == 404
    assert client.get("/health").status_code == 200
    assert "/sandbox/faults" not in client.get("/openapi.json").json()["paths"]
