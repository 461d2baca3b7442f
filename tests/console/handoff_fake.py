"""A fake Rasa (tracker, events, the channels' agent endpoint) and portal for the desk's tests,
served through httpx.MockTransport, and a console app wired to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi.testclient import TestClient

from console.app import create_app
from console.desk_assist import install_desk
from console.settings import ConsoleSettings

LOCAL = ("127.0.0.1", 50000)
INTERNAL_TOKEN = "internal-test-token"
RASA_TOKEN = "rasa-test-token"
ID_NUMBER = "001090001234"
PHONE = "0912 345 678"
DOSSIER = "000.00.20.H29-261115-0003"  # not the example in utter_help


def citizen_events() -> list[dict[str, Any]]:
    """A conversation that gave an ID number, a phone and a dossier code, then asked for a
    person; the bot is paused."""
    return [
        {"event": "action", "name": "action_session_start", "timestamp": 1.0},
        {"event": "user", "text": "Tôi muốn tra cứu hồ sơ " + DOSSIER, "timestamp": 2.0},
        {"event": "bot", "text": "Bạn cho tôi số CCCD nhé.", "timestamp": 3.0},
        {"event": "user", "text": f"CCCD của tôi là {ID_NUMBER}", "timestamp": 4.0},
        {"event": "user", "text": f"số điện thoại {PHONE}, email lan@example.vn", "timestamp": 5.0},
        {"event": "user", "text": "Cho tôi gặp nhân viên", "timestamp": 6.0},
        {"event": "pause", "timestamp": 7.0},
    ]


@dataclass
class FakeRasa:
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    slots: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)  # the tracker's latest_input_channel
    requests: list[httpx.Request] = field(default_factory=list)
    agent_answer: tuple[int, dict[str, Any]] = (200, {"sent": True})
    # What `execute` of action_handoff_returned answers: 200 runs it (resume and two bot lines).
    execute_answer: tuple[int, dict[str, Any]] = (200, {})
    procedures: dict[str, dict[str, Any]] = field(default_factory=dict)
    dossiers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def posted(self, path_end: str) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.url.path.endswith(path_end)]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = unquote(request.url.path)
        parts = path.strip("/").split("/")
        if path.startswith("/conversations/"):
            if request.url.params.get("token") != RASA_TOKEN:
                return httpx.Response(401, json={"message": "wrong token"})
            conversation = parts[1]
            if parts[2:] == ["tracker"] and request.method == "GET":
                return httpx.Response(
                    200,
                    json={
                        "sender_id": conversation,
                        "slots": self.slots.get(conversation, {"language": "vi"}),
                        "events": self.events.get(conversation, []),
                        "latest_message": self.latest.get(conversation, {}),
                        "latest_input_channel": self.channels.get(conversation),
                    },
                )
            if parts[2:] == ["execute"] and request.method == "POST":
                status, body = self.execute_answer
                if status == 200 and json.loads(request.content) == {
                    "name": "action_handoff_returned"
                }:
                    self.events.setdefault(conversation, []).extend(
                        [
                            {"event": "bot", "text": "Back to the bot", "metadata": {}},
                            {"event": "bot", "text": "Rate us 1-5", "metadata": {}},
                            {"event": "resume"},
                        ]
                    )
                return httpx.Response(status, json=body or {"tracker": {}})
            if parts[2:] == ["tracker", "events"] and request.method == "POST":
                self.events.setdefault(conversation, []).extend(json.loads(request.content))
                return httpx.Response(200, json={"sender_id": conversation})
        if path.startswith("/webhooks/") and parts[-1] == "agent":
            if request.headers.get("authorization") != f"Bearer {RASA_TOKEN}":
                return httpx.Response(401, json={"error": "wrong token"})
            status, body = self.agent_answer
            if status == 200:
                sent = json.loads(request.content)
                self.events.setdefault(sent["conversation_id"], []).append(
                    {
                        "event": "bot",
                        "text": sent["text"],
                        "metadata": {"from_agent": sent["agent"]},
                    }
                )
            return httpx.Response(status, json=body)
        if path.startswith("/v1/procedures/") and parts[-1] in self.procedures:
            return httpx.Response(200, json=self.procedures[parts[-1]])
        if path.startswith("/v1/dossiers/") and parts[-1] in self.dossiers:
            return httpx.Response(200, json=self.dossiers[parts[-1]])
        return httpx.Response(404, json={"error": "not found"})


def desk_settings(settings: ConsoleSettings, **overrides: Any) -> ConsoleSettings:
    from dataclasses import replace

    values: dict[str, Any] = {
        "office_hours": "always",
        "rasa_url": "http://rasa.test",
        "rasa_token": RASA_TOKEN,
        "portal_url": "http://portal.test",
    }
    values.update(overrides)
    return replace(settings, **values)


def desk_client(
    settings: ConsoleSettings, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> Iterator[TestClient]:
    monkeypatch.setenv("CONTENT_INTERNAL_TOKEN", INTERNAL_TOKEN)
    app = create_app(desk_settings(settings, **overrides))
    install_desk(app, httpx.MockTransport(rasa.handler))
    with TestClient(app, client=LOCAL) as client:
        yield client


def ask_for_person(client: TestClient, conversation: str = "conv-1", **overrides: Any) -> Any:
    body: dict[str, Any] = {
        "conversation_id": conversation,
        "channel": "rest",
        "language": "vi",
        "reason": "request_human",
        "summary": {
            "intent": "check_status",
            "procedure": "passport",
            "dossier_code_given": True,
            "verified": False,
        },
    }
    body.update(overrides)
    return client.post("/internal/handoff", json=body, headers={"X-Internal-Token": INTERNAL_TOKEN})
