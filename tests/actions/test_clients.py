from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from actions.clients import (
    ClientSettings,
    IdentityClient,
    IdentityError,
    PortalClient,
    ServiceUnavailable,
)
from tests.actions.helpers import json_response


def client_of(cls, handler, **kwargs):  # type: ignore[no-untyped-def]
    return cls("http://api.test", transport=httpx.MockTransport(handler), backoff=0, **kwargs)


async def test_reads_are_retried_on_503_then_succeed() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return json_response(503, {"error": "busy"})
        return json_response(200, {"items": [{"id": "passport"}]})

    portal = client_of(PortalClient, handler)
    assert await portal.search_procedures("ho chieu", "vi") == [{"id": "passport"}]
    assert len(calls) == 3


async def test_writes_are_not_retried_after_a_timeout() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    identity = client_of(IdentityClient, handler)
    with pytest.raises(ServiceUnavailable):
        await identity.start_verification("001090001234", "c-test")
    assert len(calls) == 1  # never two SMS codes for one request


async def test_identity_errors_carry_what_the_citizen_must_be_told() -> None:
    identity = client_of(
        IdentityClient,
        lambda r: json_response(
            400, {"detail": {"error": "wrong_code", "attempts_left": 2, "message": "x"}}
        ),
    )
    with pytest.raises(IdentityError) as caught:
        await identity.confirm("v-1", "000000")
    assert caught.value.code == "wrong_code" and caught.value.attempts_left == 2


async def test_garbage_from_the_api_is_a_service_failure() -> None:
    portal = client_of(PortalClient, lambda r: httpx.Response(200, content=b"<html>oops"))
    with pytest.raises(ServiceUnavailable):
        await portal.get_dossier("000.00.10.H26-261110-0001", "vi")


async def test_api_key_is_sent_when_configured() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-api-key"))
        return json_response(200, {"items": []})

    portal = client_of(PortalClient, handler, api_key="prod-key")
    await portal.search_procedures("x", "vi")
    assert seen == ["prod-key"]


def slow_handler(calls: list[float], delay: float = 10.0):  # type: ignore[no-untyped-def]
    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        await asyncio.sleep(delay)
        return json_response(200, {"items": []})

    return handler


async def test_a_slow_read_gives_up_at_the_deadline_with_retries_inside_it() -> None:
    calls: list[float] = []
    portal = client_of(PortalClient, slow_handler(calls), timeout=0.2, deadline=0.5)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="timeout"):
        await portal.search_procedures("ho chieu", "vi")
    waited = time.monotonic() - started
    assert 0.4 <= waited < 0.6  # never beyond the deadline
    assert len(calls) == 2  # a third attempt would have had 0.1 s: not sent


async def test_one_slow_attempt_may_not_take_more_than_the_deadline() -> None:
    calls: list[float] = []
    portal = client_of(PortalClient, slow_handler(calls), timeout=5, deadline=0.3)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await portal.get_dossier("000.00.10.H26-261110-0001", "vi")
    assert time.monotonic() - started < 0.45
    assert len(calls) == 1


async def test_a_slow_write_is_one_attempt_bounded_by_the_deadline() -> None:
    calls: list[float] = []
    identity = client_of(IdentityClient, slow_handler(calls), timeout=0.1, deadline=0.4)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="timeout"):
        await identity.start_verification("001090001234", "c-test")
    waited = time.monotonic() - started
    assert 0.35 <= waited < 0.55  # the write may use the whole deadline, but only once
    assert len(calls) == 1


async def test_a_slow_back_end_that_answers_in_time_is_fine() -> None:
    calls: list[float] = []
    portal = client_of(PortalClient, slow_handler(calls, delay=0.1), timeout=1, deadline=2)
    assert await portal.search_procedures("x", "vi") == []


async def test_500_and_malformed_json_fail_at_once() -> None:
    for answer in (json_response(500, {"error": "boom"}), httpx.Response(200, content=b"{")):
        calls = []

        def handler(request: httpx.Request, answer: httpx.Response = answer) -> httpx.Response:
            calls.append(request)
            return answer

        portal = client_of(PortalClient, handler)
        with pytest.raises(ServiceUnavailable):
            await portal.get_dossier("000.00.10.H26-261110-0001", "vi")
        assert len(calls) == 1  # a server error or garbage is not retried


async def test_a_refused_connection_is_retried_within_the_deadline() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    identity = client_of(IdentityClient, handler)
    with pytest.raises(ServiceUnavailable, match="connect error"):
        await identity.start_verification("001090001234", "c-test")
    assert len(calls) == 3  # nothing was sent: a write may be tried again


def test_settings_come_from_the_environment_with_sane_defaults() -> None:
    default = ClientSettings.from_env({})
    assert (default.timeout, default.deadline, default.retries) == (1.5, 2.2, 2)
    assert (default.breaker_failures, default.breaker_cooldown) == (3, 30.0)
    assert default.deadline < 3  # the citizen's answer comes within 3 s
    tuned = ClientSettings.from_env(
        {
            "API_TIMEOUT_SECONDS": "0.5",
            "API_DEADLINE_SECONDS": "1",
            "API_RETRIES": "0",
            "BREAKER_FAILURES": "5",
            "BREAKER_COOLDOWN_SECONDS": "2",
            "PORTAL_API_URL": "http://portal.example",
        }
    )
    built = tuned.build()
    assert built.portal.base_url == "http://portal.example"
    assert (built.portal.breaker.failures, built.portal.breaker.cooldown) == (5, 2.0)
    assert built.identity.breaker is not built.portal.breaker  # one breaker per back end


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_DEADLINE_SECONDS", "0"),
        ("API_TIMEOUT_SECONDS", "soon"),
        ("BREAKER_FAILURES", "0"),
        ("API_RETRIES", "-1"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        ClientSettings.from_env({name: value})


async def test_the_catalogue_is_asked_once_and_answers_from_memory_when_the_portal_is_down() -> (
    None
):
    calls = []
    up = True

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if not up:
            return json_response(500, {"error": "down"})
        return json_response(200, {"id": "passport", "fee": "200.000 đồng"})

    portal = client_of(PortalClient, handler, catalogue_ttl=60, catalogue_stale=3600)
    first = await portal.get_procedure("passport", "vi")
    first["fee"] = "changed by a caller"  # a caller's change does not leak into the cache
    assert await portal.get_procedure("passport", "vi") == {"id": "passport", "fee": "200.000 đồng"}
    assert len(calls) == 1  # the second question in the same minute is not sent
    up = False
    portal.catalogue_ttl = 0  # every entry is due again: the portal is asked and fails
    assert (await portal.get_procedure("passport", "vi"))["fee"] == "200.000 đồng"
    assert len(calls) == 2
    with pytest.raises(ServiceUnavailable):  # nothing kept for this one
        await portal.get_procedure("passport", "en")


async def test_dossiers_are_never_kept() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return json_response(200, {"code": "000.00.10.H26-261110-0001", "status": "processing"})

    portal = client_of(PortalClient, handler)
    for _ in range(2):
        await portal.get_dossier("000.00.10.H26-261110-0001", "vi")
    assert len(calls) == 2
