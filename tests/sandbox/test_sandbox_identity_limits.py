"""Identity sandbox limits: tries per code, locks per conversation and per ID number with
back-off, SMS caps, and that a stranger who knows an ID number cannot lock its owner out.

Tests marked with an ID number run for a real citizen and for a well-formed ID number without
one: every limit must answer the same for both.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Tuple

import pytest
from fastapi.testclient import TestClient

from sandbox.common import ApiError
from sandbox.identity.models import FailedAttempt, SmsOutbox
from sandbox.identity.seed import SEED_CITIZENS
from tests.sandbox.helpers import (
    AN_ID,
    AN_PHONE,
    BINH_ID,
    CUONG_ID,
    OWNER_REF,
    UNKNOWN_ID,
    FakeClock,
    confirm,
    latest_code,
    login,
    request_code,
    start,
    wrong,
)

# (ID number, its phone or None when no citizen has it)
REAL_AND_UNKNOWN = pytest.mark.parametrize(
    ("id_number", "phone"), [(AN_ID, AN_PHONE), (UNKNOWN_ID, None)], ids=["real", "unknown"]
)
PHONES = {citizen.id_number: citizen.phone for citizen in SEED_CITIZENS}
# Spaced by this, 2 codes a time for one ID number stay under its cap of 5 per 15 minutes.
SPACING = 450


def wrong_for(client: TestClient, id_number: str) -> str:
    """A wrong code for the latest verification (any code is wrong for an unknown ID number)."""
    phone = PHONES.get(id_number)
    return wrong(latest_code(client, phone)) if phone else "000000"


def spend_failures(
    client: TestClient, n: int, id_number: str, client_ref: str
) -> List[Tuple[int, Dict[str, Any]]]:
    """Send `n` wrong codes, asking for a new code whenever one has no tries left (3 each)."""
    answers: List[Tuple[int, Dict[str, Any]]] = []
    while len(answers) < n:
        verification = start(client, id_number, client_ref)
        for _ in range(min(3, n - len(answers))):
            code = wrong_for(client, id_number)
            answers.append(confirm(client, verification["verification_id"], code))
    return answers


def assert_locked(answer: Tuple[int, Dict[str, Any]], scope: str, retry_after: int) -> None:
    status, body = answer
    assert (status, body["error"], body["scope"], body["retry_after"]) == (
        423,
        "locked",
        scope,
        retry_after,
    ), body


# -- per code -----------------------------------------------------------------------------


@REAL_AND_UNKNOWN
def test_code_is_void_after_max_attempts(
    identity: TestClient, id_number: str, phone: str | None
) -> None:
    verification = start(identity, id_number)
    vid = verification["verification_id"]
    code = latest_code(identity, phone) if phone else "123456"
    answers = [confirm(identity, vid, wrong(code)) for _ in range(3)]
    assert [(s, b["error"], b["attempts_left"]) for s, b in answers] == [
        (400, "wrong_code", 2),
        (400, "wrong_code", 1),
        (400, "wrong_code", 0),
    ]
    # Even the right code is refused now, and further tries are not counted as failures.
    for _ in range(5):
        status, body = confirm(identity, vid, code)
        assert (status, body["error"]) == (410, "code_exhausted")
    if phone:
        assert login(identity, id_number, phone)  # a new code works (2 of 5 failures used)


def test_attempts_per_code_are_configurable(make_identity: Callable[..., TestClient]) -> None:
    client = make_identity(otp_max_attempts=1)
    verification = start(client)
    code = latest_code(client, AN_PHONE)
    status, body = confirm(client, verification["verification_id"], wrong(code))
    assert (status, body["attempts_left"]) == (400, 0)
    assert confirm(client, verification["verification_id"], code)[0] == 410


# -- per conversation ---------------------------------------------------------------------


@REAL_AND_UNKNOWN
def test_conversation_lock_after_max_failures(
    identity: TestClient, clock: FakeClock, id_number: str, phone: str | None
) -> None:
    answers = spend_failures(identity, 5, id_number, "conv.a")
    assert [body["error"] for _, body in answers[:4]] == ["wrong_code"] * 4
    assert_locked(answers[4], "conversation", 900)
    assert answers[4][1]["attempts_left"] == 0

    # The conversation may not start a verification for anyone, nor confirm a code.
    clock.advance(100)
    for other in (id_number, BINH_ID):
        response = request_code(identity, other, "conv.a")
        assert_locked((response.status_code, response.json()), "conversation", 800)
        assert response.headers["retry-after"] == "800"
        assert "attempts_left" not in response.json()
    verification = start(identity, id_number, "conv.b")  # another conversation may
    status, body = confirm(
        identity, verification["verification_id"], wrong_for(identity, id_number)
    )
    assert (status, body["error"], body["attempts_left"]) == (400, "wrong_code", 2)

    clock.advance(800)
    start(identity, BINH_ID, "conv.a")  # the lock is over


def test_locked_conversation_refuses_even_the_right_code(identity: TestClient) -> None:
    spend_failures(identity, 4, BINH_ID, "conv.a")
    verification = start(identity, AN_ID, "conv.a")
    code = latest_code(identity, AN_PHONE)
    assert_locked(
        confirm(identity, verification["verification_id"], wrong(code)), "conversation", 900
    )
    assert_locked(confirm(identity, verification["verification_id"], code), "conversation", 900)


def test_conversation_failures_outside_the_window_are_forgotten(
    identity: TestClient, clock: FakeClock
) -> None:
    spend_failures(identity, 4, AN_ID, "conv.a")
    clock.advance(901)
    status, body = spend_failures(identity, 1, BINH_ID, "conv.a")[0]
    assert (status, body["error"]) == (400, "wrong_code")


def test_conversation_lock_backs_off(identity: TestClient, clock: FakeClock) -> None:
    """Each further lock within 24 h of the previous one's end doubles, up to 24 h."""
    durations = []
    ids = list(PHONES)  # a different ID number each round: only the conversation is limited
    for round_ in range(9):
        status, body = spend_failures(identity, 5, ids[round_ % len(ids)], "conv.a")[-1]
        assert (status, body["scope"]) == (423, "conversation")
        durations.append(body["retry_after"])
        clock.advance(body["retry_after"])
    assert durations == [900, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 86400]
    # Another conversation's first lock is still the shortest.
    assert_locked(spend_failures(identity, 5, UNKNOWN_ID, "conv.b")[-1], "conversation", 900)

    # A lock that starts 24 h or more after the previous one ended starts afresh.
    clock.advance(86_400)
    assert_locked(spend_failures(identity, 5, BINH_ID, "conv.a")[-1], "conversation", 900)


def test_conversation_back_off_settings(
    make_identity: Callable[..., TestClient], clock: FakeClock
) -> None:
    client = make_identity(
        lockout_seconds=60,
        lockout_max_seconds=150,
        lockout_memory_seconds=100,
        conversation_max_failures=2,
        code_window_seconds=60,
    )
    durations = []
    for _ in range(3):
        status, body = spend_failures(client, 2, BINH_ID, "conv.a")[-1]
        durations.append(body["retry_after"])
        clock.advance(body["retry_after"] + 99)  # within the memory
    assert durations == [60, 120, 150]
    clock.advance(1)  # now 100 s after the end: forgotten
    assert spend_failures(client, 2, BINH_ID, "conv.a")[-1][1]["retry_after"] == 60


# -- a stranger and the owner ---------------------------------------------------------------


def test_stranger_cannot_lock_the_owner_out(identity: TestClient) -> None:
    """A stranger who knows An's ID number fails in their own conversation until it is locked;
    An, in hers, still gets a code and verifies (and a code she had asked for stays valid)."""
    pending = start(identity, AN_ID, OWNER_REF)
    pending_code = latest_code(identity, AN_PHONE)

    stranger = spend_failures(identity, 5, AN_ID, "conv.stranger")
    assert [b["error"] for _, b in stranger] == ["wrong_code"] * 4 + ["locked"]
    assert stranger[-1][1]["scope"] == "conversation"
    response = request_code(identity, AN_ID, "conv.stranger")
    assert (response.status_code, response.json()["scope"]) == (423, "conversation")

    assert confirm(identity, pending["verification_id"], pending_code)[0] == 200
    assert login(identity, AN_ID, AN_PHONE, OWNER_REF)


# -- per ID number --------------------------------------------------------------------------


@REAL_AND_UNKNOWN
def test_id_number_lock_after_failures_across_conversations(
    identity: TestClient, clock: FakeClock, id_number: str, phone: str | None
) -> None:
    answers: List[Tuple[int, Dict[str, Any]]] = []
    for n in range(4):  # four strangers' conversations, 5 wrong codes each
        if n:
            clock.advance(SPACING)
        answers += spend_failures(identity, 5, id_number, f"conv.stranger{n}")
    assert [b["error"] for _, b in answers[:19]].count("wrong_code") == 16
    assert_locked(answers[19], "id_number", 900)
    assert answers[19][1]["attempts_left"] == 0

    # Locked in every conversation, including the owner's; other ID numbers are not.
    response = request_code(identity, id_number, OWNER_REF)
    assert_locked((response.status_code, response.json()), "id_number", 900)
    start(identity, BINH_ID, OWNER_REF)
    start(identity, BINH_ID, "conv.new")

    clock.advance(900)
    if phone:
        assert login(identity, id_number, phone, OWNER_REF)
    # The count started afresh at the lock; the next lock lasts twice as long.
    answers = []
    for n in range(4):
        clock.advance(SPACING)
        answers += spend_failures(identity, 5, id_number, f"conv.again{n}")
    assert_locked(answers[19], "id_number", 1800)


def test_id_number_failures_outside_24_hours_are_forgotten(
    identity: TestClient, clock: FakeClock
) -> None:
    for n in range(3):
        spend_failures(identity, 5, AN_ID, f"conv.s{n}")
        clock.advance(SPACING)
    spend_failures(identity, 4, AN_ID, "conv.s3")  # 19 failures
    clock.advance(86_400)
    status, body = spend_failures(identity, 1, AN_ID, "conv.s4")[0]
    assert (status, body["error"]) == (400, "wrong_code")


def test_success_forgives_only_the_owners_own_typos(
    make_identity: Callable[..., TestClient],
) -> None:
    client = make_identity(id_max_failures=6)
    spend_failures(client, 4, AN_ID, "conv.stranger")
    spend_failures(client, 1, AN_ID, OWNER_REF)  # a typo of An's
    assert login(client, AN_ID, AN_PHONE, OWNER_REF)  # forgets that one, not the 4
    answers = spend_failures(client, 2, AN_ID, OWNER_REF)
    assert [b["error"] for _, b in answers] == ["wrong_code", "locked"]
    assert answers[-1][1]["scope"] == "id_number"


# -- SMS caps -------------------------------------------------------------------------------


@REAL_AND_UNKNOWN
def test_code_cap_per_conversation(
    identity: TestClient, clock: FakeClock, id_number: str, phone: str | None
) -> None:
    for _ in range(3):
        start(identity, id_number, "conv.a")
        clock.advance(60)
    for other in (id_number, BINH_ID):  # for any ID number
        response = request_code(identity, other, "conv.a")
        body = response.json()
        assert (response.status_code, body["error"], body["scope"]) == (
            429,
            "too_many_requests",
            "conversation",
        )
        assert body["retry_after"] == 900 - 3 * 60  # when the oldest code leaves the window
        assert response.headers["retry-after"] == str(body["retry_after"])
    start(identity, id_number, "conv.b")  # another conversation may (4 of 5 for the ID)

    clock.advance(900 - 3 * 60)
    start(identity, id_number, "conv.a")


@REAL_AND_UNKNOWN
def test_code_cap_per_id_number(
    identity: TestClient, clock: FakeClock, id_number: str, phone: str | None
) -> None:
    for n in range(5):
        start(identity, id_number, f"conv.{n}")
        clock.advance(60)
    response = request_code(identity, id_number, "conv.5")
    body = response.json()
    assert (response.status_code, body["error"], body["scope"], body["retry_after"]) == (
        429,
        "too_many_requests",
        "id_number",
        900 - 5 * 60,
    )
    start(identity, BINH_ID, "conv.5")
    if phone:
        messages = identity.get("/sandbox/sms", params={"phone": phone}).json()["messages"]
        assert len(messages) == 5

    clock.advance(body["retry_after"])
    start(identity, id_number, "conv.5")


def test_code_caps_are_configurable(make_identity: Callable[..., TestClient]) -> None:
    client = make_identity(max_codes_per_window=2, max_codes_per_conversation=10)
    start(client, AN_ID, "conv.a")
    start(client, AN_ID, "conv.b")
    assert request_code(client, AN_ID, "conv.c").json()["scope"] == "id_number"
    client = make_identity(max_codes_per_window=10, max_codes_per_conversation=1)
    start(client, BINH_ID, "conv.z")
    assert request_code(client, CUONG_ID, "conv.z").json()["scope"] == "conversation"


def test_a_lock_is_told_before_a_cap(identity: TestClient) -> None:
    spend_failures(identity, 4, AN_ID, "conv.a")  # 2 codes
    status, body = spend_failures(identity, 1, BINH_ID, "conv.a")[0]  # 3rd code: cap reached
    assert (status, body["error"]) == (423, "locked")
    response = request_code(identity, CUONG_ID, "conv.a")  # both locked and over the cap
    assert (response.status_code, response.json()["error"]) == (423, "locked")


# -- parallel requests ----------------------------------------------------------------------


def _in_parallel(n: int, call: Callable[[], Any]) -> List[Any]:
    barrier = threading.Barrier(n)

    def run(_: int) -> Any:
        barrier.wait()
        try:
            return call()
        except ApiError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_parallel_requests_cannot_exceed_the_code_cap(identity: TestClient) -> None:
    service = identity.app.state.service
    results = _in_parallel(12, lambda: service.start_verification(AN_ID, "conv.race"))
    assert sum(isinstance(r, dict) for r in results) == 3
    assert {r.error for r in results if isinstance(r, ApiError)} == {"too_many_requests"}
    with identity.app.state.engine.connect() as conn:
        assert len(conn.execute(SmsOutbox.__table__.select()).all()) == 3


def test_parallel_wrong_codes_cannot_exceed_the_tries(identity: TestClient) -> None:
    service = identity.app.state.service
    verification = start(identity, AN_ID, "conv.race")
    code = wrong(latest_code(identity, AN_PHONE))
    results = _in_parallel(12, lambda: service.confirm(verification["verification_id"], code))
    errors = sorted(r.error for r in results)
    assert errors == ["code_exhausted"] * 9 + ["wrong_code"] * 3
    with identity.app.state.engine.connect() as conn:
        assert len(conn.execute(FailedAttempt.__table__.select()).all()) == 3
