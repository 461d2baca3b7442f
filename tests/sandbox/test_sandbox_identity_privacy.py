"""What the identity sandbox must not reveal: whether a citizen exists (answers and logs), more
of a phone than its last 3 digits, or any one-time code when sandbox mode is off."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable, List

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from sandbox.identity import create_identity_app
from sandbox.identity.models import Base, SmsOutbox
from sandbox.identity.seed import SEED_CITIZENS
from sandbox.settings import Settings
from tests.sandbox.helpers import (
    AN_ID,
    AN_PHONE,
    UNKNOWN_ID,
    FakeClock,
    confirm,
    request_code,
    start,
)

CODE = 738215  # what secrets.randbelow returns in the tests that must find (or not) the code


def outbox_rows(client: TestClient) -> int:
    engine: Engine = client.app.state.engine
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(SmsOutbox)).scalar_one())


def stored_values(client: TestClient) -> List[str]:
    """Every value of every identity table, as text."""
    engine: Engine = client.app.state.engine
    with engine.connect() as conn:
        return [
            str(value)
            for table in Base.metadata.sorted_tables
            for row in conn.execute(table.select())
            for value in row
        ]


# -- unknown ID numbers ---------------------------------------------------------------------


def test_unknown_id_number_answers_like_a_real_one(identity: TestClient) -> None:
    real = request_code(identity, AN_ID, "conv.a")
    unknown = request_code(identity, UNKNOWN_ID, "conv.b")
    assert real.status_code == unknown.status_code == 201
    assert (
        set(real.json())
        == set(unknown.json())
        == {
            "verification_id",
            "masked_phone",
            "expires_in",
        }
    )
    assert real.json()["expires_in"] == unknown.json()["expires_in"]
    assert len(real.json()["verification_id"]) == len(unknown.json()["verification_id"])
    assert re.fullmatch(r"\*{7}\d{3}", unknown.json()["masked_phone"])
    assert set(real.headers) == set(unknown.headers)
    assert outbox_rows(identity) == 1  # An's; nothing for the unknown number

    # Its code is always wrong, and counts like any wrong code.
    vid = unknown.json()["verification_id"]
    for code, left in (("123456", 2), ("000000", 1), ("999999", 0)):
        status, body = confirm(identity, vid, code)
        assert (status, body["error"], body["attempts_left"]) == (400, "wrong_code", left)
    status, body = confirm(identity, vid, "123456")
    assert (status, body["error"]) == (410, "code_exhausted")


def test_unknown_id_number_masked_phone_is_stable(
    identity: TestClient, settings: Settings, clock: FakeClock
) -> None:
    first = start(identity, UNKNOWN_ID, "conv.a")["masked_phone"]
    assert start(identity, UNKNOWN_ID, "conv.b")["masked_phone"] == first
    clock.advance(3600)
    restarted = TestClient(create_identity_app(settings, clock=clock))
    assert start(restarted, UNKNOWN_ID, "conv.c")["masked_phone"] == first
    # Derived from the ID number: a sample of other unknown numbers does not all look alike.
    others = {
        start(identity, f"00109000{n:04d}", "conv.d")["masked_phone"] for n in range(9000, 9003)
    }
    assert len(others | {first}) > 1


def test_unknown_id_number_masked_phone_is_keyed(make_identity: Callable[..., TestClient]) -> None:
    """With an unkeyed hash anyone could compute the decoy digits and so spot unknown numbers."""
    ids = [f"00109000{n:04d}" for n in range(9000, 9005)]

    def phones(secret: str) -> List[str]:
        client = make_identity(token_secret=secret)
        return [
            start(client, id_number, f"conv.{secret[:3]}{i}")["masked_phone"]
            for i, id_number in enumerate(ids)
        ]

    assert phones("one-secret-0123456789-abcdefghijklmnopqrstuvwxyz") != phones(
        "two-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
    )


def test_citizen_not_found_is_gone_from_the_api(identity: TestClient) -> None:
    doc = identity.get("/openapi.json").json()
    assert "citizen_not_found" not in str(doc)
    assert "404" not in doc["paths"]["/v1/verifications"]["post"]["responses"]


def test_logs_do_not_tell_whether_the_citizen_exists(
    identity: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sandbox.identity.service.secrets.randbelow", lambda _: CODE)

    def flow(id_number: str, client_ref: str) -> List[Any]:
        caplog.clear()
        verification = start(identity, id_number, client_ref)
        for _ in range(3):
            confirm(identity, verification["verification_id"], "000000")  # An's is CODE
        records = [r for r in caplog.records if r.name.startswith("sandbox")]
        text = "\n".join(r.getMessage() for r in records)
        assert "not found" not in text.lower()
        return [(r.name, r.levelno, r.msg) for r in records]

    caplog.set_level(logging.DEBUG)
    assert flow(AN_ID, "conv.a") == flow(UNKNOWN_ID, "conv.b")


# -- phone mask -----------------------------------------------------------------------------


@pytest.mark.parametrize("citizen", SEED_CITIZENS, ids=lambda c: c.id_number)
def test_masked_phone_shows_only_the_last_three_digits(identity: TestClient, citizen: Any) -> None:
    assert start(identity, citizen.id_number)["masked_phone"] == "*******" + citizen.phone[-3:]


def test_sms_outbox_itself_shows_the_full_phone(identity: TestClient) -> None:
    start(identity, AN_ID)
    messages = identity.get("/sandbox/sms", params={"phone": AN_PHONE}).json()["messages"]
    assert messages[0]["phone"] == AN_PHONE


# -- sandbox mode ---------------------------------------------------------------------------


@pytest.mark.parametrize("sandbox_mode", [False, True], ids=["off", "on"])
def test_code_is_stored_only_in_sandbox_mode(
    make_identity: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    settings: Settings,
    sandbox_mode: bool,
) -> None:
    monkeypatch.setattr("sandbox.identity.service.secrets.randbelow", lambda _: CODE)
    caplog.set_level(logging.INFO)
    client = make_identity(sandbox_mode=sandbox_mode)
    verification = start(client, AN_ID)
    code = f"{CODE:06d}"

    stored = any(code in value for value in stored_values(client))
    database_file = Path(settings.identity_db_url.removeprefix("sqlite:///"))
    in_file = code.encode() in database_file.read_bytes()
    sms = client.get("/sandbox/sms", params={"phone": AN_PHONE})
    log = "\n".join(r.getMessage() for r in caplog.records)
    if sandbox_mode:
        assert stored and in_file and outbox_rows(client) == 1
        assert sms.json()["messages"][0]["code"] == code
        assert "written to the sandbox outbox for *******678" in log
    else:
        assert not stored and not in_file and outbox_rows(client) == 0
        assert sms.status_code == 404
        assert "/sandbox/sms" not in client.get("/openapi.json").json()["paths"]
        assert "SMS with a one-time code would be sent to *******678" in log
    assert code not in log
    # Either way the code was real: it verifies.
    assert confirm(client, verification["verification_id"], code)[0] == 200
