"""Identity sandbox basics: codes, expiry, superseding, tokens, SMS outbox, logs, OpenAPI.

Limits and locks are in test_sandbox_identity_limits.py, what the API and the logs must not
reveal in test_sandbox_identity_privacy.py.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from sandbox.common import make_engine
from sandbox.identity import create_identity_app
from sandbox.identity.models import Citizen, Verification
from sandbox.identity.seed import SEED_CITIZENS, seed_identity
from sandbox.settings import Settings
from sandbox.tokens import AUDIENCE, ISSUER
from tests.sandbox.helpers import (
    AN_ID,
    AN_PHONE,
    BINH_ID,
    BINH_PHONE,
    OWNER_REF,
    SECRET,
    FakeClock,
    confirm,
    latest_code,
    login,
    request_code,
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


def test_database_of_an_older_schema_is_recreated(settings: Settings, clock: FakeClock) -> None:
    """A var/sandbox/identity.db left by the previous version must not stop the app."""
    engine = make_engine(settings.identity_db_url)
    with engine.begin() as conn:  # the tables as the previous version created them
        conn.execute(
            text(
                "CREATE TABLE verifications (id VARCHAR(64) PRIMARY KEY, id_number VARCHAR(12), "
                "code_hash VARCHAR(64), created_at FLOAT, expires_at FLOAT, used_at FLOAT, "
                "superseded_at FLOAT)"
            )
        )
        conn.execute(
            text("CREATE TABLE locks (id_number VARCHAR(12) PRIMARY KEY, locked_until FLOAT)")
        )
        conn.execute(text("INSERT INTO locks VALUES ('001090001234', 9e12)"))
    engine.dispose()

    client = TestClient(create_identity_app(settings, clock=clock))
    assert login(client, AN_ID, AN_PHONE)  # the old lock is gone with its table


def test_start_verification_sends_masked_sms(identity: TestClient, settings: Settings) -> None:
    response = request_code(identity, AN_ID, OWNER_REF)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"verification_id", "masked_phone", "expires_in"}
    assert body["masked_phone"] == "*******678"
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

    engine = make_engine(settings.identity_db_url)
    with engine.connect() as conn:
        row = conn.execute(select(Verification)).one()
    engine.dispose()
    assert (row.client_ref, row.decoy, row.attempts) == (OWNER_REF, False, 0)
    assert sms["code"] not in row.code_hash  # only an HMAC of the code is kept


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


def test_start_malformed_body(identity: TestClient) -> None:
    response = identity.post("/v1/verifications", json={"id": AN_ID})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("client_ref", ["", "has space", "x" * 129, "ngữ", "a/b", 42])
def test_start_rejects_a_malformed_client_ref(identity: TestClient, client_ref: object) -> None:
    response = identity.post(
        "/v1/verifications", json={"id_number": AN_ID, "client_ref": client_ref}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("client_ref", ["a", "x" * 128, "Az09._:-", None])
def test_start_accepts_client_refs(identity: TestClient, client_ref: str | None) -> None:
    response = identity.post(
        "/v1/verifications", json={"id_number": AN_ID, "client_ref": client_ref}
    )
    assert response.status_code == 201, response.text


def test_requests_without_client_ref_share_one_bucket(identity: TestClient) -> None:
    for _ in range(3):
        start(identity, AN_ID, client_ref=None)
    response = request_code(identity, BINH_ID, client_ref=None)
    assert response.status_code == 429
    assert response.json()["scope"] == "conversation"
    start(identity, BINH_ID, client_ref="conv.other")


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


def test_wrong_codes_count_down_attempts_of_the_code(identity: TestClient) -> None:
    verification = start(identity)
    code = latest_code(identity, AN_PHONE)
    for expected_left in (2, 1):
        status, body = confirm(identity, verification["verification_id"], wrong(code))
        assert status == 400
        assert body["error"] == "wrong_code"
        assert body["attempts_left"] == expected_left
    # The right code still works before the last attempt; each new code has its own tries.
    status, _ = confirm(identity, verification["verification_id"], code)
    assert status == 200
    verification = start(identity)
    status, body = confirm(identity, verification["verification_id"], "000000x")
    assert (status, body["attempts_left"]) == (400, 2)


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


def test_a_code_from_another_conversation_does_not_supersede(identity: TestClient) -> None:
    """Otherwise anyone knowing the ID number could void the owner's code at will."""
    owner = start(identity, AN_ID, OWNER_REF)
    owner_code = latest_code(identity, AN_PHONE)
    start(identity, AN_ID, "conv.stranger")
    assert confirm(identity, owner["verification_id"], owner_code)[0] == 200


def test_other_citizens_verifications_are_independent(identity: TestClient) -> None:
    an = start(identity, AN_ID)
    an_code = latest_code(identity, AN_PHONE)
    start(identity, BINH_ID)
    assert confirm(identity, an["verification_id"], an_code)[0] == 200


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
    request_code(identity, "001090009999")

    # Everything the server side logged (httpx's lines are the test client's own).
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(r.getMessage() for r in server_records)
    assert server_records, "the flow should log something"
    for secret_value in (AN_ID, AN_PHONE, code, wrong(code), "001090009999", "84912345678"):
        assert secret_value not in text
    assert body["access_token"] not in text
    assert "001******234" in text
    assert "*******678" in text
    assert "091" not in text  # no more of the phone than its last 3 digits


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
    assert set(confirm_responses) == {"200", "400", "404", "409", "410", "422", "423"}
    assert "wrong_code" in confirm_responses["400"]["description"]
    assert "code_exhausted" in confirm_responses["410"]["description"]
    assert "`scope`" in confirm_responses["423"]["description"]

    start_responses = paths["/v1/verifications"]["post"]["responses"]
    assert set(start_responses) == {"201", "400", "422", "423", "429"}  # no 404: no enumeration
    for status in ("423", "429"):
        assert "`conversation` or `id_number`" in start_responses[status]["description"]
    request = doc["components"]["schemas"]["StartVerificationRequest"]
    assert request["required"] == ["id_number"]
    assert request["properties"]["client_ref"]["pattern"] == "^[A-Za-z0-9._:-]{1,128}$"
    error = doc["components"]["schemas"]["ErrorBody"]["properties"]
    assert {"scope", "retry_after", "attempts_left"} <= set(error)
    assert error["scope"]["enum"] == ["conversation", "id_number"]
