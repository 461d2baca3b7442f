"""Helpers and test accounts shared by the sandbox tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

from fastapi.testclient import TestClient

FIXTURE_CATALOGUE = Path(__file__).parent / "fixtures" / "procedures"
SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

AN_ID, AN_PHONE = "001090001234", "0912345678"
BINH_ID, BINH_PHONE = "079185005678", "0987654321"
CUONG_ID, CUONG_PHONE = "031200001111", "0903111222"


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


def start(client: TestClient, id_number: str = AN_ID) -> Dict[str, Any]:
    response = client.post("/v1/verifications", json={"id_number": id_number})
    assert response.status_code == 201, response.text
    body: Dict[str, Any] = response.json()
    return body


def confirm(client: TestClient, verification_id: str, code: str) -> Tuple[int, Dict[str, Any]]:
    response = client.post(f"/v1/verifications/{verification_id}/confirm", json={"code": code})
    return response.status_code, response.json()


def wrong(code: str) -> str:
    """A 6-digit code different from `code`."""
    return f"{(int(code) + 1) % 10**6:06d}"


def login(client: TestClient, id_number: str, phone: str) -> str:
    verification = start(client, id_number)
    status, body = confirm(client, verification["verification_id"], latest_code(client, phone))
    assert status == 200, body
    return str(body["access_token"])
