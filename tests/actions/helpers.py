"""Build trackers and fake back-ends in code, fresh for every test."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import Clients, IdentityClient, PortalClient, set_clients

Handler = Callable[[httpx.Request], httpx.Response]


def make_tracker(
    slots: dict[str, Any] | None = None,
    intent: str = "inform",
    entities: list[dict[str, Any]] | None = None,
    text: str = "",
    active_loop: str | None = None,
    sender_id: str = "test",
    **latest: Any,
) -> Tracker:
    return Tracker(
        sender_id=sender_id,
        slots={"language": "vi", **(slots or {})},
        latest_message={
            "intent": {"name": intent, "confidence": 1.0},
            "entities": entities or [],
            "text": text,
            **latest,
        },
        events=[],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def responses(dispatcher: CollectingDispatcher) -> list[str]:
    return [m["response"] for m in dispatcher.messages if m.get("response")]


def message(dispatcher: CollectingDispatcher, response: str) -> dict[str, Any]:
    return next(m for m in dispatcher.messages if m.get("response") == response)


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def json_response(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body), headers={"content-type": "application/json"}
    )


class FakeBackends:
    """Routes requests to per-test handlers and records every request the actions sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.identity: Handler = lambda r: json_response(500, {"error": "unset"})
        self.portal: Handler = lambda r: json_response(500, {"error": "unset"})

    def install(self) -> None:
        def record(handler_name: str) -> Handler:
            def handle(request: httpx.Request) -> httpx.Response:
                self.requests.append(request)
                return getattr(self, handler_name)(request)

            return handle

        set_clients(
            Clients(
                identity=IdentityClient(
                    "http://identity.test",
                    transport=httpx.MockTransport(record("identity")),
                    backoff=0,
                ),
                portal=PortalClient(
                    "http://portal.test",
                    transport=httpx.MockTransport(record("portal")),
                    backoff=0,
                ),
            )
        )
