"""Identity sandbox: one-time codes, attempts, lockout, rate limit, tokens, SMS outbox, logs."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sandbox.common import make_engine
from sandbox.identity import create_identity_app
from sandbox.identity.models import Citizen
from sandbox.identity.seed import SEED_CITIZENS, seed_identity
from sandbox.settings import Settings
from sandbox.tokens import AUDIENCE, ISSUER
from tests.sandbox.helpers import (
    AN_ID,
    AN_PHONE,
    BINH_ID,
    BINH_PHONE,
    SECRET,
    FakeClock,
    confirm,
    latest_code,
    login,
    start,
    wrong,
)


def test_health(identity: TestClient) -> None:
    assert identity.get("/health").json() == {"status": "ok"}


def test_seed_is_idempotent(settings: Settings, clock: FakeClock) -> None:
    create_identity_app(settings, clock=clock)
    create_identity_app(settings, clock=clock)  # a second start on the same database
    engine = make_engine(settings.identity_db_url)
    assert seed_identity(engine) == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Citizen)).scalar_one() == len(
            SEED_CITIZENS
        )
    engine.dispose()


def test_database_folder_is_created(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path}/deep/er/identity.db"
    create_identity_app(Settings(identity_db_url=url, token_secret=SECRET), clock=clock)
    assert (tmp_path / "deep" / "er" / "identity.db").exists()


def test_start_verification_sends_masked_sms(identity: TestClient) -> None:
    response = identity.post("/v1/verifications", json={"id_number": AN_ID})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"verification_id", "masked_phone", "expires_in"}
    assert body["masked_phone"] == "091****678"
    assert body["expires_in"] == 300
    assert len(body["verification_id"]) >= 20

    messages = identity.get("/sandbox/sms", params={"phone": AN_PHONE}).json()["messages"]
    assert len(messages) == 1
    sms = messages[0]
    assert sms["phone"] == AN_PHONE
    assert re.fullmatch(r"\d{6}", sms["code"])
    assert sms["text"] == (
        f"[SANDBOX] Ma xac thuc cua ban la {sms['code']}. Hieu luc 5 phut. "
        "Khong chia se ma nay cho bat ky ai, ke ca nguoi tu xung la cong an."
    )
    assert sms["sent_at"].startswith("2026-")


def test_sms_outbox_is_newest_first_and_accepts_international_format(
    identity: TestClient, clock: FakeClock
) -> None:
    start(identity)
    first = latest_code(identity, AN_PHONE)
    clock.advance(10)
    start(identity)
    messages = identity.get("/sandbox/sms", params={"phone": "+84 912 345 678"}).json()["messages"]
    assert len(messages) == 2
    assert messages[1]["code"] == first
    assert messages[0]["sent_at"] > messages[1]["sent_at"]
    assert identity.get("/sandbox/sms", params={"phone": BINH_PHONE}).json() == {"messages": []}


@pytest.mark.parametrize(
    ("id_number", "reason"),
    [
        ("12345", "not_12_digits"),
        ("123456789", "not_12_digits"),  # an old 9-digit CMND number
        ("00109000123a", "not_12_digits"),
        ("0010900012345", "not_12_digits"),
        ("003090001234", "unknown_province_code"),
        ("100090001234", "unknown_province_code"),
        ("001490001234", "invalid_sex_century_digit"),
        ("001990001234", "invalid_sex_century_digit"),
    ],
)
def test_start_rejects_invalid_structure(identity: TestClient, id_number: str, reason: str) -> None:
    response = identity.post("/v1/verifications", json={"id_number": id_number})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_id_number"
    assert body["reason"] == reason
    assert body["message"]


def test_start_unknown_citizen(identity: TestClient) -> None:
    response = identity.post("/v1/verifications", json={"id_number": "001090009999"})
    assert response.status_code == 404
    assert response.json()["error"] == "citizen_not_found"


def test_start_malformed_body(identity: TestClient) -> None:
    response = identity.post("/v1/verifications", json={"id": AN_ID})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_confirm_right_code_issues_token(identity: TestClient, clock: FakeClock) -> None:
    verification = start(identity)
    status, body = confirm(
        identity, verification["verification_id"], latest_code(identity, AN_PHONE)
    )
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["citizen"] == {"full_name": "Nguyễn Văn An", "id_number_masked": "001******234"}

    claims = jwt.decode(
        body["access_token"],
        SECRET,
        algorithms=["HS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == AN_ID
    assert claims["iss"] == "sandbox-identity"
    assert claims["aud"] == "public-service-portal"
    assert claims["iat"] == int(clock.now)
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]


def test_confirm_unknown_verification(identity: TestClient) -> None:
    status, body = confirm(identity, "no-such-verification", "123456")
    assert status == 404
    assert body["error"] == "verification_not_found"


def test_wrong_codes_count_down_attempts(identity: TestClient) -> None:
    verification = start(identity)
    code = latest_code(identity, AN_PHONE)
    for expected_left in (4, 3, 2, 1):
        status, body = confirm(identity, verification["verification_id"], wrong(code))
        assert status == 400
        assert body["error"] == "wrong_code"
        assert body["attempts_left"] == expected_left
    # The right code still works before the last attempt, and resets the count.
    status, _ = confirm(identity, verification["verification_id"], code)
    assert status == 200
    verification = start(identity)
    status, body = confirm(identity, verification["verification_id"], "000000x")
    assert (status, body["attempts_left"]) == (400, 4)


def test_expired_code(identity: TestClient, clock: FakeClock) -> None:
    verification = start(identity)
    code = latest_code(identity, AN_PHONE)
    clock.advance(299)
    clock.advance(1)
    status, body = confirm(identity, verification["verification_id"], code)
    assert status == 410
    assert body["error"] == "expired"


def test_code_valid_just_before_expiry(identity: TestClient, clock: FakeClock) -> None:
    verification = start(identity)
    clock.advance(299)
    status, _ = confirm(identity, verification["verification_id"], latest_code(identity, AN_PHONE))
    assert status == 200


def test_code_can_be_used_once(identity: TestClient) -> None:
    verification = start(identity)
    code = latest_code(identity, AN_PHONE)
    assert confirm(identity, verification["verification_id"], code)[0] == 200
    status, body = confirm(identity, verification["verification_id"], code)
    assert status == 409
    assert body["error"] == "already_used"


def test_newer_verification_supersedes_older(identity: TestClient) -> None:
    older = start(identity)
    older_code = latest_code(identity, AN_PHONE)
    newer = start(identity)
    newer_code = latest_code(identity, AN_PHONE)
    status, body = confirm(identity, older["verification_id"], older_code)
    assert status == 410
    assert body["error"] == "expired"
    assert confirm(identity, newer["verification_id"], newer_code)[0] == 200


def test_other_citizens_verifications_are_independent(identity: TestClient) -> None:
    an = start(identity, AN_ID)
    an_code = latest_code(identity, AN_PHONE)
    start(identity, BINH_ID)
    assert confirm(identity, an["verification_id"], an_code)[0] == 200


def test_lockout_after_max_attempts_and_its_end(identity: TestClient, clock: FakeClock) -> None:
    verification = start(identity)
    code = latest_code(identity, AN_PHONE)
    for _ in range(4):
        assert confirm(identity, verification["verification_id"], wrong(code))[0] == 400
    status, body = confirm(identity, verification["verification_id"], wrong(code))
    assert status == 423
    assert body["error"] == "locked"
    assert body["retry_after"] == 900
    assert body["attempts_left"] == 0

    # Locked: even the right code is refused, and no new code can be requested.
    status, body = confirm(identity, verification["verification_id"], code)
    assert (status, body["error"]) == (423, "locked")
    clock.advance(600)
    response = identity.post("/v1/verifications", json={"id_number": AN_ID})
    assert response.status_code == 423
    assert response.json()["retry_after"] == 300
    assert response.headers["retry-after"] == "300"
    # Another citizen is not affected.
    start(identity, BINH_ID)

    clock.advance(300)
    verification = start(identity)
    status, body = confirm(identity, verification["verification_id"], wrong(code))
    assert (status, body["attempts_left"]) == (400, 4)  # the count started afresh
    assert login(identity, AN_ID, AN_PHONE)


def test_failures_count_across_verifications(identity: TestClient) -> None:
    first = start(identity)
    first_code = latest_code(identity, AN_PHONE)
    for _ in range(3):
        confirm(identity, first["verification_id"], wrong(first_code))
    second = start(identity)
    second_code = latest_code(identity, AN_PHONE)
    status, body = confirm(identity, second["verification_id"], wrong(second_code))
    assert (status, body["attempts_left"]) == (400, 1)
    status, body = confirm(identity, second["verification_id"], wrong(second_code))
    assert (status, body["error"]) == (423, "locked")


def test_failures_older_than_the_window_are_forgotten(
    identity: TestClient, clock: FakeClock
) -> None:
    first = start(identity)
    first_code = latest_code(identity, AN_PHONE)
    for _ in range(4):
        confirm(identity, first["verification_id"], wrong(first_code))
    clock.advance(901)
    second = start(identity)
    status, body = confirm(identity, second["verification_id"], "999999x")
    assert (status, body["attempts_left"]) == (400, 4)


def test_rate_limit_on_codes(identity: TestClient, clock: FakeClock) -> None:
    for _ in range(5):
        start(identity)
        clock.advance(60)
    response = identity.post("/v1/verifications", json={"id_number": AN_ID})
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "too_many_requests"
    assert body["retry_after"] == 900 - 5 * 60  # when the oldest code leaves the window
    assert len(identity.get("/sandbox/sms", params={"phone": AN_PHONE}).json()["messages"]) == 5
    start(identity, BINH_ID)  # per ID number

    clock.advance(body["retry_after"])
    start(identity)


def test_rate_limit_is_configurable(make_identity: Callable[..., TestClient]) -> None:
    client = make_identity(max_codes_per_window=2)
    start(client)
    start(client)
    assert client.post("/v1/verifications", json={"id_number": AN_ID}).status_code == 429


def test_sms_endpoint_absent_outside_sandbox_mode(
    make_identity: Callable[..., TestClient],
) -> None:
    client = make_identity(sandbox_mode=False)
    start(client)
    response = client.get("/sandbox/sms", params={"phone": AN_PHONE})
    assert response.status_code == 404
    assert "/sandbox/sms" not in client.get("/openapi.json").json()["paths"]


def test_introspection(identity: TestClient, clock: FakeClock) -> None:
    token = login(identity, AN_ID, AN_PHONE)
    body = identity.post("/v1/tokens/introspect", json={"token": token}).json()
    assert body == {"active": True, "sub": AN_ID, "exp": int(clock.now) + 900}

    assert identity.post("/v1/tokens/introspect", json={"token": "garbage"}).json() == {
        "active": False
    }
    forged = jwt.encode(
        {"sub": AN_ID, "iss": ISSUER, "aud": AUDIENCE, "iat": 1, "exp": 2**40, "jti": "x"},
        "another-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
    )
    assert identity.post("/v1/tokens/introspect", json={"token": forged}).json() == {
        "active": False
    }
    clock.advance(900)
    assert identity.post("/v1/tokens/introspect", json={"token": token}).json() == {"active": False}


def test_logs_never_contain_id_phone_or_code(
    identity: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    verification = start(identity)
    code = latest_code(identity, AN_PHONE)
    confirm(identity, verification["verification_id"], wrong(code))
    status, body = confirm(identity, verification["verification_id"], code)
    assert status == 200
    identity.post("/v1/tokens/introspect", json={"token": body["access_token"]})
    identity.post("/v1/verifications", json={"id_number": "001090009999"})

    # Everything the server side logged (httpx's lines are the test client's own).
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(r.getMessage() for r in server_records)
    assert server_records, "the flow should log something"
    for secret_value in (AN_ID, AN_PHONE, code, wrong(code), "001090009999", "84912345678"):
        assert secret_value not in text
    assert body["access_token"] not in text
    assert "001******234" in text
    assert "091****678" in text


def test_openapi_documents_the_contract(identity: TestClient) -> None:
    doc = identity.get("/openapi.json").json()
    paths = doc["paths"]
    assert {
        "/health",
        "/v1/verifications",
        "/v1/verifications/{verification_id}/confirm",
        "/v1/tokens/introspect",
        "/sandbox/sms",
    } <= set(paths)
    confirm_responses = paths["/v1/verifications/{verification_id}/confirm"]["post"]["responses"]
    assert {"200", "400", "404", "409", "410", "423"} <= set(confirm_responses)
    assert "wrong_code" in confirm_responses["400"]["description"]
