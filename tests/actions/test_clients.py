from __future__ import annotations

import httpx
import pytest

from actions.clients import IdentityClient, IdentityError, PortalClient, ServiceUnavailable
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
