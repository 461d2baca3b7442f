"""The identity store: the same rules in memory and in Redis; shared by action servers; secret.

The rules run against both stores. Then what only the shared one must prove: two store objects
(two action servers) on one Redis see each other's entries, Redis never holds a token, an ID
number, a name or a conversation id in clear, and Redis down is a clear error that passes.
"""

from __future__ import annotations

import json
import logging
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher
from redis import Redis

from actions.identity import ActionForgetIdentity, ValidateIdentityForm
from actions.identity_store import (
    PENDING_LIFETIME_SECONDS,
    IdentityStore,
    IdentityStoreUnavailable,
    MemoryIdentityStore,
    Proof,
    RedisIdentityStore,
    identity_store_from_env,
    set_identity_store,
)
from actions.status import ActionDossierStatus
from tests.actions.helpers import FakeBackends, json_response, make_tracker, responses, slot_events
from tests.redis_server import RedisServer

AN = "001090001234"
VERIFICATION = "v-7f3a9c"
TOKEN = "tok-9d8c7b6a5f4e3d2c1b0a"
NAME = "Nguyễn Văn An"
CONVERSATION = "telegram:5550001"
KEY = secrets.token_urlsafe(32)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


MakeStore = Callable[..., IdentityStore]


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    """Builds stores on one backing; a memory store has no second object to share with."""
    made: list[IdentityStore] = []
    memory: MemoryIdentityStore | None = None

    def make(clock: Clock | None = None) -> IdentityStore:
        nonlocal memory
        if request.param == "memory":
            memory = memory or MemoryIdentityStore(clock or time.time)
            return memory
        server: RedisServer = request.getfixturevalue("redis_server")
        made.append(RedisIdentityStore(server.url, KEY, clock=clock or time.time))
        return made[-1]

    yield make
    for store in made:
        await store.aclose()


def a_proof(valid_for: float = 600, now: float | None = None) -> Proof:
    return Proof(TOKEN, NAME, (now or time.time()) + valid_for)


# The same rules, in memory and in Redis.


async def test_a_verification_is_found_only_with_its_handle_in_its_conversation(make_store):
    store = make_store()
    handle = await store.start(CONVERSATION, AN, VERIFICATION)
    pending = await store.pending(CONVERSATION, handle)
    assert pending is not None and (pending.id_number, pending.verification_id) == (
        AN,
        VERIFICATION,
    )
    altered = handle[:-1] + ("A" if handle[-1] != "A" else "B")
    assert await store.pending(CONVERSATION, altered) is None
    assert await store.pending(CONVERSATION, "") is None
    assert await store.pending(CONVERSATION, None) is None
    assert await store.pending("telegram:5550002", handle) is None
    assert await store.proof(CONVERSATION, handle) is None  # not verified yet


async def test_a_wrong_handle_unlocks_nothing(make_store):
    store = make_store()
    handle = await store.start(CONVERSATION, AN, VERIFICATION)
    assert await store.pending(CONVERSATION, "wrong-handle") is None
    assert await store.prove(CONVERSATION, "wrong-handle", a_proof()) is False
    assert await store.prove("zalo:1", handle, a_proof()) is False
    assert await store.proof(CONVERSATION, handle) is None


async def test_a_proof_replaces_the_verification_under_the_same_handle(make_store):
    store = make_store()
    handle = await store.start(CONVERSATION, AN, VERIFICATION)
    assert await store.prove(CONVERSATION, handle, a_proof()) is True
    assert await store.pending(CONVERSATION, handle) is None
    proof = await store.proof(CONVERSATION, handle)
    assert proof is not None and (proof.token, proof.full_name) == (TOKEN, NAME)
    assert await store.proof(CONVERSATION, "wrong-handle") is None
    assert await store.proof("web:someone-else", handle) is None


async def test_a_new_code_ends_the_old_handle(make_store):
    store = make_store()
    old = await store.start(CONVERSATION, AN, VERIFICATION)
    new = await store.start(CONVERSATION, AN, "v-2")
    assert old != new
    assert await store.pending(CONVERSATION, old) is None
    assert await store.prove(CONVERSATION, old, a_proof()) is False
    pending = await store.pending(CONVERSATION, new)
    assert pending is not None and pending.verification_id == "v-2"


async def test_verifications_and_proofs_expire(make_store):
    clock = Clock()
    store = make_store(clock)
    handle = await store.start(CONVERSATION, AN, VERIFICATION)
    clock.now += PENDING_LIFETIME_SECONDS - 1
    assert await store.pending(CONVERSATION, handle) is not None
    clock.now += 2
    assert await store.pending(CONVERSATION, handle) is None

    handle = await store.start(CONVERSATION, AN, VERIFICATION)
    assert await store.prove(CONVERSATION, handle, a_proof(valid_for=60, now=clock.now))
    clock.now += 59
    assert await store.proof(CONVERSATION, handle) is not None
    clock.now += 2
    assert await store.proof(CONVERSATION, handle) is None


async def test_forget_drops_everything_of_the_conversation_only(make_store):
    store = make_store()
    handle = await store.start(CONVERSATION, AN, VERIFICATION)
    await store.prove(CONVERSATION, handle, a_proof())
    other = await store.start("zalo:77", AN, VERIFICATION)
    await store.forget(CONVERSATION)
    await store.forget(CONVERSATION)  # nothing left: still fine
    assert await store.proof(CONVERSATION, handle) is None
    assert await store.pending("zalo:77", other) is not None


# Redis only: shared by action servers, never in clear, down and back.


@pytest.fixture
async def two_servers(redis_server: RedisServer) -> AsyncIterator[tuple[RedisIdentityStore, ...]]:
    """Two action servers' stores on one Redis."""
    one = RedisIdentityStore(redis_server.url, KEY)
    two = RedisIdentityStore(redis_server.url, KEY)
    yield one, two
    await one.aclose()
    await two.aclose()


async def test_an_entry_made_by_one_action_server_is_found_by_another(two_servers):
    one, two = two_servers
    handle = await one.start(CONVERSATION, AN, VERIFICATION)
    pending = await two.pending(CONVERSATION, handle)
    assert pending is not None and pending.id_number == AN
    assert await two.prove(CONVERSATION, handle, a_proof())
    proof = await one.proof(CONVERSATION, handle)
    assert proof is not None and proof.token == TOKEN
    assert await one.proof(CONVERSATION, "wrong-handle") is None
    assert await one.proof("telegram:5550002", handle) is None
    await two.forget(CONVERSATION)  # goodbye, handled by the other server
    assert await one.proof(CONVERSATION, handle) is None


def everything_in(redis_url: str) -> tuple[list[bytes], list[bytes]]:
    with Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter("*"))
        return keys, [client.get(key) or b"" for key in keys]


def clear_forms(*secrets_: str) -> list[bytes]:
    """How each secret could appear in clear: UTF-8, and JSON's ASCII escapes."""
    forms: list[bytes] = []
    for secret in secrets_:
        forms += [secret.encode(), json.dumps(secret).strip('"').encode()]
    return forms


async def test_nothing_in_redis_is_in_clear(two_servers, redis_server):
    one, _ = two_servers
    pending_handle = await one.start("web:waiting", AN, VERIFICATION)
    handle = await one.start(CONVERSATION, AN, VERIFICATION)
    await one.prove(CONVERSATION, handle, a_proof())
    keys, values = everything_in(redis_server.url)
    assert len(keys) == 2
    secret_forms = clear_forms(AN, VERIFICATION, TOKEN, NAME, handle, pending_handle, "Nguy")
    conversation_forms = clear_forms(CONVERSATION, "5550001", "web:waiting", "waiting")
    for key, value in zip(keys, values, strict=True):
        assert key.startswith(b"civic:identity:")
        for form in secret_forms + conversation_forms:
            assert form not in key, form
        for form in secret_forms:
            assert form not in value, form
        assert b"handle" not in value and b"token" not in value  # not even the field names


async def test_every_entry_expires_in_redis_when_it_does_in_the_store(two_servers, redis_server):
    one, _ = two_servers
    handle = await one.start(CONVERSATION, AN, VERIFICATION)
    with Redis.from_url(redis_server.url) as client:
        [key] = list(client.scan_iter("*"))
        assert PENDING_LIFETIME_SECONDS * 1000 - 5_000 < client.pttl(key) <= 900_000
        await one.prove(CONVERSATION, handle, a_proof(valid_for=120))
        assert 115_000 < client.pttl(key) <= 120_000


async def test_a_value_moved_to_another_conversation_does_not_open(two_servers, redis_server):
    one, two = two_servers
    handle = await one.start(CONVERSATION, AN, VERIFICATION)
    await one.prove(CONVERSATION, handle, a_proof())
    with Redis.from_url(redis_server.url) as client:
        client.set(one.key("web:thief"), client.get(one.key(CONVERSATION)) or b"")
    assert await two.proof("web:thief", handle) is None


async def test_another_key_reads_nothing(redis_server, two_servers):
    one, _ = two_servers
    handle = await one.start(CONVERSATION, AN, VERIFICATION)
    rotated = RedisIdentityStore(redis_server.url, secrets.token_urlsafe(32))
    try:
        assert await rotated.pending(CONVERSATION, handle) is None
        assert rotated.key(CONVERSATION) != one.key(CONVERSATION)
    finally:
        await rotated.aclose()


async def test_redis_down_is_a_clear_error_and_the_same_store_works_once_it_is_back(
    redis_server, caplog
):
    store = RedisIdentityStore(redis_server.url, KEY)
    try:
        handle = await store.start(CONVERSATION, AN, VERIFICATION)
        redis_server.stop()
        for call in (
            lambda: store.start(CONVERSATION, AN, VERIFICATION),
            lambda: store.pending(CONVERSATION, handle),
            lambda: store.prove(CONVERSATION, handle, a_proof()),
            lambda: store.proof(CONVERSATION, handle),
        ):
            started = time.monotonic()
            with pytest.raises(IdentityStoreUnavailable):
                await call()
            assert time.monotonic() - started < 1.5
        await store.forget(CONVERSATION)  # logged, not raised: the handle slot goes anyway
        redis_server.start()  # empty again: no persistence
        assert await store.pending(CONVERSATION, handle) is None
        handle = await store.start(CONVERSATION, AN, VERIFICATION)
        assert await store.pending(CONVERSATION, handle) is not None
    finally:
        await store.aclose()
    assert any("expires by itself" in r.getMessage() for r in caplog.records)


# Which store: SHARED_STATE_URL, and a key that must come with it.


def test_memory_unless_shared_state_url_and_a_key_are_set():
    assert isinstance(identity_store_from_env({}), MemoryIdentityStore)
    shared = identity_store_from_env(
        {"SHARED_STATE_URL": "redis://:pw@127.0.0.1:6390/1", "IDENTITY_STORE_KEY": KEY}
    )
    assert isinstance(shared, RedisIdentityStore)
    for env in (
        {"SHARED_STATE_URL": "redis://127.0.0.1:6390/1"},
        {"SHARED_STATE_URL": "redis://127.0.0.1:6390/1", "IDENTITY_STORE_KEY": "short-key"},
    ):
        with pytest.raises(ValueError) as raised:
            identity_store_from_env(env)
        assert "IDENTITY_STORE_KEY" in str(raised.value)
        assert "short-key" not in str(raised.value)


# The actions on Redis: each turn on another action server.


STARTED = {"verification_id": VERIFICATION, "masked_phone": "*******678", "expires_in": 300}
CONFIRMED = {
    "access_token": TOKEN,
    "token_type": "Bearer",
    "expires_in": 900,
    "citizen": {"full_name": NAME, "id_number_masked": "*********234"},
}
OWNER = {
    "code": "000.00.10.H26-261110-0001",
    "status": "supplement_required",
    "status_label": "Yêu cầu bổ sung hồ sơ",
    "updated_on": "2026-11-12",
    "detail_level": "owner",
    "owner_name": NAME,
    "missing_documents": [],
}


async def test_a_journey_whose_every_turn_lands_on_another_action_server(
    backends: FakeBackends, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    servers = [RedisIdentityStore(redis_server.url, KEY) for _ in range(3)]

    def identity(request: Any) -> Any:
        if request.url.path.endswith("/confirm"):
            return json_response(200, CONFIRMED)
        return json_response(201, STARTED)

    backends.identity = identity
    backends.portal = lambda request: json_response(200, OWNER)
    slots: dict[str, Any] = {"dossier_code": OWNER["code"]}
    try:
        set_identity_store(servers[0])
        tracker = make_tracker(slots=slots, active_loop="identity_form", sender_id=CONVERSATION)
        sent = await ValidateIdentityForm().validate_id_number(
            AN, CollectingDispatcher(), tracker, {}
        )
        slots.update(sent)

        set_identity_store(servers[1])
        dispatcher = CollectingDispatcher()
        tracker = make_tracker(slots=slots, active_loop="identity_form", sender_id=CONVERSATION)
        slots.update(await ValidateIdentityForm().validate_otp("482913", dispatcher, tracker, {}))
        assert responses(dispatcher) == ["utter_identity_verified"]

        set_identity_store(servers[2])
        dispatcher = CollectingDispatcher()
        tracker = make_tracker(slots=slots, sender_id=CONVERSATION)
        await ActionDossierStatus().run(dispatcher, tracker, {})
        assert "utter_dossier_detail" in responses(dispatcher)
        assert backends.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"

        set_identity_store(servers[0])
        tracker = make_tracker(slots=slots, sender_id=CONVERSATION)
        await ActionForgetIdentity().run(CollectingDispatcher(), tracker, {})
        assert await servers[1].proof(CONVERSATION, slots["identity_ref"]) is None
    finally:
        set_identity_store(None)
        for store in servers:
            await store.aclose()
    # httpx's own request lines (the verification id is in the confirm URL) are the clients'
    # business; what the store and the actions log must hold none of these.
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    for secret in (AN, TOKEN, VERIFICATION, slots["identity_ref"]):
        assert secret not in logged


async def test_the_actions_say_service_unavailable_when_redis_is_down(
    backends: FakeBackends, redis_server: RedisServer
) -> None:
    backends.identity = lambda request: json_response(201, STARTED)
    store = RedisIdentityStore(redis_server.url, KEY)
    set_identity_store(store)
    try:
        handle = await store.start(CONVERSATION, AN, VERIFICATION)
        await store.prove(CONVERSATION, handle, a_proof())
        redis_server.stop()

        dispatcher = CollectingDispatcher()
        tracker = make_tracker(active_loop="identity_form", sender_id=CONVERSATION)
        result = await ValidateIdentityForm().validate_id_number(AN, dispatcher, tracker, {})
        assert responses(dispatcher) == ["utter_service_unavailable"]
        assert result["identity_failed"] is True and result["identity_ref"] is None

        dispatcher = CollectingDispatcher()
        slots = {"identity_ref": handle, "otp": None, "id_number": "*********234"}
        tracker = make_tracker(slots=slots, active_loop="identity_form", sender_id=CONVERSATION)
        result = await ValidateIdentityForm().validate_otp("482913", dispatcher, tracker, {})
        assert responses(dispatcher) == ["utter_service_unavailable"]
        assert result["identity_failed"] is True

        backends.requests.clear()
        dispatcher = CollectingDispatcher()
        tracker = make_tracker(
            slots={"dossier_code": OWNER["code"], "identity_ref": handle}, sender_id=CONVERSATION
        )
        await ActionDossierStatus().run(dispatcher, tracker, {})
        assert responses(dispatcher) == ["utter_service_unavailable"]
        assert backends.requests == []  # neither details nor a public answer on a guess

        tracker = make_tracker(slots={"identity_ref": handle}, sender_id=CONVERSATION)
        events = await ActionForgetIdentity().run(CollectingDispatcher(), tracker, {})
        assert slot_events(events)["identity_ref"] is None  # goodbye still ends it
    finally:
        set_identity_store(None)
        await store.aclose()


async def test_a_redis_that_hangs_is_a_clear_error_within_the_timeout(redis_server):
    store = RedisIdentityStore(redis_server.url, KEY)  # 0.5 s per command by default
    try:
        handle = await store.start(CONVERSATION, AN, VERIFICATION)
        assert redis_server.process is not None
        redis_server.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(IdentityStoreUnavailable):
                await store.pending(CONVERSATION, handle)
            assert time.monotonic() - started < 1.2
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        assert await store.pending(CONVERSATION, handle) is not None
    finally:
        await store.aclose()
