"""bot.nlg.ContentNLG: Rasa builds it from bot/endpoints.yml; it gets the published wording from
the content service, sends no conversation events, and when the service is down (a closed
port), slow or failing, answers from the last published set it fetched, else the domain."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from rasa.core.nlg.generator import NaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig, read_endpoint_config

from bot.nlg import ContentNLG
from bot.settings import ROOT
from console.app import create_app
from console.settings import DEFAULT_DEMO_PASSWORD, DEMO_ACCOUNTS, ConsoleSettings

DOMAIN_GREETING = "Xin chào! Tôi là trợ lý dịch vụ công"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "bot" / "domain"))


def tracker(domain: Domain, language: str = "vi") -> DialogueStateTracker:
    events = [
        ActionExecuted("action_listen"),
        UserUttered("số 001090001234 của tôi", intent={"name": "greet", "confidence": 0.97}),
        SlotSet("language", language),
        SlotSet("dossier_code", "000.00.10.H26-261110-0001"),
    ]
    return DialogueStateTracker.from_events("telegram:123456789", events, slots=domain.slots)


def generator(domain: Domain, url: str, **options: Any) -> ContentNLG:
    config = EndpointConfig(url=url, type="bot.nlg.ContentNLG", timeout=0.5, **options)
    nlg = NaturalLanguageGenerator.create(config, domain)
    assert isinstance(nlg, ContentNLG)
    return nlg


async def greet(nlg: ContentNLG, domain: Domain, language: str = "vi") -> dict[str, Any]:
    reply = await nlg.generate(
        "utter_greet", tracker(domain, language), "rest", domain_responses=domain.responses
    )
    assert reply is not None
    return reply


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[str]:
    """A real content service (uvicorn, sandbox mode) on a free port."""
    settings = ConsoleSettings(
        db_url=f"sqlite:///{tmp_path / 'content.db'}", sandbox_mode=True, refresh_seconds=0.2
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", ws="none"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "content service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def publish_greeting(url: str, text: str) -> None:
    def sign_in(role: str) -> dict[str, str]:
        body = {"email": DEMO_ACCOUNTS[role], "password": DEFAULT_DEMO_PASSWORD}
        token = httpx.post(f"{url}/api/login", json=body).json()["token"]
        return {"Authorization": f"Bearer {token}"}

    editor, reviewer = sign_in("editor"), sign_in("reviewer")
    reply = f"{url}/api/responses/utter_greet"
    httpx.put(f"{reply}/draft", headers=editor, json={"language": "vi", "text": text})
    httpx.post(f"{reply}/submit", headers=editor).raise_for_status()
    httpx.post(f"{reply}/publish", headers=reviewer).raise_for_status()


def test_rasa_builds_it_from_the_endpoints_file(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "CONTENT_SERVICE_URL": "http://127.0.0.1:8090",
        "ACTION_SERVER_URL": "http://127.0.0.1:5055/webhook",
        "TRACKER_SQLITE_PATH": "var/trackers.db",
        "LOCK_SQLITE_PATH": "var/locks.db",
        "RETENTION_DAYS": "30",
    }.items():
        monkeypatch.setenv(name, value)
    for path in ("endpoints.yml", "endpoints.scaled.yml"):
        if "scaled" in path:
            for name in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER"):
                monkeypatch.setenv(name, "x")
            for name in ("POSTGRES_PASSWORD", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"):
                monkeypatch.setenv(name, "x")
            monkeypatch.setenv("REDIS_DB", "0")
        config = read_endpoint_config(str(ROOT / "bot" / path), "nlg")
        assert config is not None and config.type == "bot.nlg.ContentNLG"
        nlg = NaturalLanguageGenerator.create(config, domain)
        assert isinstance(nlg, ContentNLG)
        assert nlg.url == "http://127.0.0.1:8090" and nlg.timeout == 0.5


async def test_the_request_has_rasas_shape_without_the_conversation(domain: Domain) -> None:
    seen: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/nlg":
            seen.append(json.loads(request.content))
            return httpx.Response(200, json={"text": "from the service", "buttons": []})
        return httpx.Response(304)

    nlg = generator(domain, "http://content.test")
    nlg._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    assert (await greet(nlg, domain, "en"))["text"] == "from the service"
    body = seen[0]
    assert set(body) == {"response", "id", "arguments", "tracker", "channel"}
    assert body["response"] == "utter_greet" and body["channel"] == {"name": "rest"}
    assert body["tracker"]["slots"]["language"] == "en"
    assert body["tracker"]["slots"]["dossier_code"] == "000.00.10.H26-261110-0001"
    assert body["tracker"]["latest_message"]["intent"]["name"] == "greet"
    assert body["tracker"]["events"] == []
    sent = json.dumps(body, ensure_ascii=False)
    assert "001090001234" not in sent and "của tôi" not in sent  # no message text
    assert "123456789" not in sent  # no conversation id
    await nlg.close()


async def test_the_published_wording_from_a_real_service(domain: Domain, service: str) -> None:
    nlg = generator(domain, service)
    assert (await greet(nlg, domain))["text"].startswith(DOMAIN_GREETING)
    publish_greeting(service, "Chào bạn từ kho nội dung!")
    assert (await greet(nlg, domain))["text"] == "Chào bạn từ kho nội dung!"
    assert (await greet(nlg, domain, "en"))["text"].startswith("Hello!")
    await nlg.close()


async def test_down_it_answers_with_the_last_published_set_it_fetched(
    domain: Domain, service: str
) -> None:
    nlg = generator(domain, service)
    publish_greeting(service, "Chào bạn, bản đã duyệt!")
    assert await nlg.refresh()
    nlg.url = f"http://127.0.0.1:{free_port()}"  # the service is gone: a closed port
    started = time.monotonic()
    assert (await greet(nlg, domain))["text"] == "Chào bạn, bản đã duyệt!"
    assert time.monotonic() - started < 0.5
    # A reply the published set lacks comes from the domain, in the citizen's language.
    goodbye = await nlg.generate(
        "utter_goodbye", tracker(domain, "en"), "rest", domain_responses=domain.responses
    )
    assert goodbye is not None and goodbye["text"].startswith("Thank you")
    await nlg.close()


async def test_down_from_the_start_it_answers_with_the_domain(domain: Domain) -> None:
    nlg = generator(domain, f"http://127.0.0.1:{free_port()}")
    reply = await greet(nlg, domain)
    assert reply["text"].startswith(DOMAIN_GREETING)
    assert reply["buttons"][0]["payload"] == "/check_status"
    await nlg.close()


async def test_slow_it_waits_one_timeout_then_no_more(domain: Domain) -> None:
    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    nlg = generator(domain, f"http://127.0.0.1:{port}", refresh_seconds=30)
    nlg.published = {"utter_greet": [{"text": "bản đã tải trước đó"}]}
    started = time.monotonic()
    assert (await greet(nlg, domain))["text"] == "bản đã tải trước đó"
    first = time.monotonic() - started
    started = time.monotonic()
    assert (await greet(nlg, domain))["text"] == "bản đã tải trước đó"
    second = time.monotonic() - started
    assert 0.4 < first < 1.0, first
    assert second < 0.1, second  # not asked again until the poller reaches the service
    await nlg.close()
    server.close()


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, json={"detail": "boom"}),
        httpx.Response(200, json={"text": 42}),  # not Rasa's answer format
        httpx.Response(200, content=b"<html>proxy error</html>"),
        httpx.Response(404, json={"detail": "no reply named utter_greet"}),
    ],
)
async def test_an_error_answer_falls_back_to_the_domain(
    domain: Domain, answer: httpx.Response
) -> None:
    nlg = generator(domain, "http://content.test")
    nlg._client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: answer))
    assert (await greet(nlg, domain))["text"].startswith(DOMAIN_GREETING)
    await nlg.close()


async def test_no_log_line_per_reply(domain: Domain, caplog: pytest.LogCaptureFixture) -> None:
    nlg = generator(domain, "http://content.test")
    nlg._client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, json={"text": "x"}))
    )
    with caplog.at_level("INFO"):
        await greet(nlg, domain)
    assert not [r for r in caplog.records if "content.test" in r.getMessage()]
    await nlg.close()
