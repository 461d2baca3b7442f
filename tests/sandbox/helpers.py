"""Helpers and test accounts shared by the sandbox tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import httpx
from fastapi.testclient import TestClient

FIXTURE_CATALOGUE = Path(__file__).parent / "fixtures" / "procedures"
SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

AN_ID, AN_PHONE = "001090001234", "0912345678"
BINH_ID, BINH_PHONE = "079185005678", "0987654321"
CUONG_ID, CUONG_PHONE = "031200001111", "0903111222"
UNKNOWN_ID = "001090009999"  # well-formed, no such citizen

# client_ref of the conversation a test works in unless it says otherwise.
OWNER_REF = "conv.owner"


class FakeClock:
    """Callable like time.time; tests move it forward."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def latest_code(client: TestClient, phone: str) -> str:
    messages = client.get("/sandbox/sms", params={"phone": phone}).json()["messages"]
    return str(messages[0]["code"])


def request_code(
    client: TestClient, id_number: str = AN_ID, client_ref: str | None = OWNER_REF
) -> httpx.Response:
    """POST /v1/verifications; `client_ref=None` leaves the field out (the shared bucket)."""
    body: Dict[str, Any] = {"id_number": id_number}
    if client_ref is not None:
        body["client_ref"] = client_ref
    return client.post("/v1/verifications", json=body)


def start(
    client: TestClient, id_number: str = AN_ID, client_ref: str | None = OWNER_REF
) -> Dict[str, Any]:
    response = request_code(client, id_number, client_ref)
    assert response.status_code == 201, response.text
    body: Dict[str, Any] = response.json()
    return body


def confirm(client: TestClient, verification_id: str, code: str) -> Tuple[int, Dict[str, Any]]:
    response = client.post(f"/v1/verifications/{verification_id}/confirm", json={"code": code})
    return response.status_code, response.json()


def wrong(code: str) -> str:
    """A 6-digit code different from `code`."""
    return f"{(int(code) + 1) % 10**6:06d}"


def login(
    client: TestClient, id_number: str, phone: str, client_ref: str | None = OWNER_REF
) -> str:
    verification = start(client, id_number, client_ref)
    status, body = confirm(client, verification["verification_id"], latest_code(client, phone))
    assert status == 200, body
    return str(body["access_token"])
