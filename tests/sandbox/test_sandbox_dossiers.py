"""Portal sandbox: dossier lookup by code, public versus owner views, tokens."""

from __future__ import annotations

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sandbox.common import make_engine
from sandbox.portal import create_portal_app
from sandbox.portal.models import Dossier
from sandbox.portal.seed import SEED_DOSSIERS, STATUS_LABELS, STATUSES, seed_portal
from sandbox.settings import Settings
from sandbox.tokens import AUDIENCE, ISSUER, issue_token
from tests.sandbox.helpers import (
    AN_ID,
    AN_PHONE,
    BINH_ID,
    BINH_PHONE,
    CUONG_ID,
    FakeClock,
    login,
)

PASSPORT = "000.00.10.H26-261110-0001"
ID_CARD = "000.00.10.H26-261020-0002"
BIRTH = "000.00.20.H29-261115-0003"
JUDICIAL = "000.00.20.H29-261001-0004"
TEMP_RESIDENCE = "000.00.10.H26-261118-0005"
MARRIAGE = "H31.05-260915-0006"

PUBLIC_KEYS = {"code", "status", "status_label", "updated_on", "detail_level", "owner_match"}
OWNER_KEYS = PUBLIC_KEYS | {
    "owner_name",
    "procedure",
    "agency",
    "submitted_on",
    "due_on",
    "missing_documents",
    "supplement_deadline",
    "refusal_reason",
    "pickup",
    "next_step",
}


def token_for(settings: Settings, clock: FakeClock, id_number: str) -> str:
    assert settings.token_secret
    return issue_token(settings.token_secret, id_number, clock.now, 900)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_health(portal: TestClient) -> None:
    assert portal.get("/health").json() == {"status": "ok"}


def test_seed_is_idempotent(settings: Settings, clock: FakeClock) -> None:
    create_portal_app(settings, clock=clock)
    create_portal_app(settings, clock=clock)
    engine = make_engine(settings.portal_db_url)
    assert seed_portal(engine) == 0
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(Dossier)).scalar_one()
    assert count == len(SEED_DOSSIERS) == 6
    engine.dispose()


def test_seed_covers_every_status() -> None:
    assert {d["status"] for d in SEED_DOSSIERS} == set(STATUSES) == set(STATUS_LABELS)
    for labels in STATUS_LABELS.values():
        assert labels["vi"] and labels["en"]


def test_public_view_without_token(portal: TestClient) -> None:
    response = portal.get(f"/v1/dossiers/{PASSPORT}")
    assert response.status_code == 200
    assert response.json() == {
        "code": PASSPORT,
        "status": "supplement_required",
        "status_label": "Yêu cầu bổ sung hồ sơ",
        "updated_on": "2026-11-12",
        "detail_level": "public",
        "owner_match": None,
    }


def test_owner_view_in_vietnamese(portal: TestClient, settings: Settings, clock: FakeClock) -> None:
    body = portal.get(
        f"/v1/dossiers/{PASSPORT}", headers=bearer(token_for(settings, clock, AN_ID))
    ).json()
    assert set(body) == OWNER_KEYS
    assert body["detail_level"] == "owner"
    assert body["owner_match"] is True
    assert body["owner_name"] == "Nguyễn Văn An"
    assert body["procedure"] == {"id": "passport", "name": "Cấp hộ chiếu phổ thông"}
    assert body["missing_documents"] == ["Ảnh chân dung 4x6 cm, nền trắng, chụp không quá 6 tháng"]
    assert body["supplement_deadline"] == "2026-12-10"
    assert body["refusal_reason"] is None
    assert body["pickup"] is None
    assert "Cổng Dịch vụ công" in body["next_step"]


def test_owner_view_in_english(portal: TestClient, settings: Settings, clock: FakeClock) -> None:
    body = portal.get(
        f"/v1/dossiers/{PASSPORT}",
        params={"lang": "en"},
        headers=bearer(token_for(settings, clock, AN_ID)),
    ).json()
    assert body["status_label"] == "Supplement required"
    assert body["missing_documents"] == [
        "A 4x6 cm portrait photo, white background, taken within the last 6 months"
    ]
    assert body["procedure"]["name"] == "Issuing an ordinary passport"
    assert "Upload the photo" in body["next_step"]
    assert "immigration office" in body["next_step"].lower()


@pytest.mark.parametrize(
    ("code", "owner", "status", "field", "fragment"),
    [
        (ID_CARD, AN_ID, "result_ready", "pickup", "post"),
        (BIRTH, BINH_ID, "in_processing", "due_on", "2026-11-20"),
        (JUDICIAL, BINH_ID, "refused", "refusal_reason", "population database"),
        (JUDICIAL, BINH_ID, "refused", "next_step", "new request"),
        (TEMP_RESIDENCE, AN_ID, "received", "next_step", "received"),
        (MARRIAGE, CUONG_ID, "completed", "next_step", "nothing"),
    ],
)
def test_seeded_dossiers_for_their_owners(
    portal: TestClient,
    settings: Settings,
    clock: FakeClock,
    code: str,
    owner: str,
    status: str,
    field: str,
    fragment: str,
) -> None:
    body = portal.get(
        f"/v1/dossiers/{code}",
        params={"lang": "en"},
        headers=bearer(token_for(settings, clock, owner)),
    ).json()
    assert body["status"] == status
    assert body["detail_level"] == "owner"
    assert fragment in str(body[field])


def test_other_citizens_token_gets_public_view(
    portal: TestClient, settings: Settings, clock: FakeClock
) -> None:
    body = portal.get(
        f"/v1/dossiers/{PASSPORT}", headers=bearer(token_for(settings, clock, BINH_ID))
    ).json()
    assert set(body) == PUBLIC_KEYS
    assert body["detail_level"] == "public"
    assert body["owner_match"] is False


@pytest.mark.parametrize(
    "authorization",
    ["Bearer garbage", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"],
)
def test_bad_token_is_rejected(portal: TestClient, authorization: str) -> None:
    response = portal.get(f"/v1/dossiers/{PASSPORT}", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_expired_token_is_rejected(
    portal: TestClient, settings: Settings, clock: FakeClock
) -> None:
    token = token_for(settings, clock, AN_ID)
    clock.advance(900)
    response = portal.get(f"/v1/dossiers/{PASSPORT}", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "someone-else"},
        {"aud": "another-service"},
    ],
)
def test_token_for_another_issuer_or_audience_is_rejected(
    portal: TestClient, settings: Settings, clock: FakeClock, claims: dict[str, str]
) -> None:
    payload = {
        "sub": AN_ID,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(clock.now),
        "exp": int(clock.now) + 900,
        "jti": "x",
        **claims,
    }
    assert settings.token_secret
    token = jwt.encode(payload, settings.token_secret, algorithm="HS256")
    assert portal.get(f"/v1/dossiers/{PASSPORT}", headers=bearer(token)).status_code == 401


def test_token_signed_with_another_secret_is_rejected(portal: TestClient, clock: FakeClock) -> None:
    token = issue_token("a-different-secret-of-enough-length-0123456789", AN_ID, clock.now, 900)
    assert portal.get(f"/v1/dossiers/{PASSPORT}", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(
    "code",
    [
        "abc",
        "000.00.10.H26",
        "000.00.10.H26-2611-0001",
        "000-00-10-H26-261110-0001",
        "000.00.10.H26-261110-01",
        "H26-261110-0001",
    ],
)
def test_invalid_dossier_code(portal: TestClient, code: str) -> None:
    response = portal.get(f"/v1/dossiers/{code}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dossier_code"


@pytest.mark.parametrize("code", ["H29.22-261112-0123", "000.00.10.H26-261110-9999"])
def test_unknown_dossier_code(portal: TestClient, code: str) -> None:
    response = portal.get(f"/v1/dossiers/{code}")
    assert response.status_code == 404
    assert response.json()["error"] == "dossier_not_found"


def test_code_is_normalised(portal: TestClient) -> None:
    response = portal.get("/v1/dossiers/%20h31.05-260915-0006%20", params={"lang": "en"})
    assert response.status_code == 200
    assert response.json()["code"] == MARRIAGE
    assert response.json()["status_label"] == "Completed"


def test_identity_token_opens_the_portal(
    identity: TestClient, portal: TestClient, settings: Settings
) -> None:
    """The real flow: verify with a code at the identity app, use the token at the portal."""
    an_token = login(identity, AN_ID, AN_PHONE)
    binh_token = login(identity, BINH_ID, BINH_PHONE)
    assert portal.get(f"/v1/dossiers/{ID_CARD}", headers=bearer(an_token)).json()["owner_match"]
    assert (
        portal.get(f"/v1/dossiers/{ID_CARD}", headers=bearer(binh_token)).json()["owner_match"]
        is False
    )


def test_openapi_documents_both_views(portal: TestClient) -> None:
    doc = portal.get("/openapi.json").json()
    operation = doc["paths"]["/v1/dossiers/{code}"]["get"]
    assert {"200", "400", "401", "404"} <= set(operation["responses"])
    schemas = doc["components"]["schemas"]
    assert "OwnerDossierStatus" in schemas and "PublicDossierStatus" in schemas
