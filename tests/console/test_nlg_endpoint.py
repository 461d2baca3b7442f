"""The NLG endpoint answers Rasa's own request (built by rasa/core/nlg/callback.py's
`nlg_request_format`, exactly as Rasa's callback generator sends it) in Rasa's answer format,
in the citizen's language and channel, with slots and arguments filled in."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rasa.core.nlg.callback import CallbackNaturalLanguageGenerator, nlg_request_format
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from console import content, published
from console.app import create_app
from console.rasa_format import content_from_variations, read_domain, variations_from_content
from console.settings import DEFAULT_DOMAIN_DIR
from tests.console.conftest import make_settings


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(DEFAULT_DOMAIN_DIR))


def tracker(domain: Domain, **slots: Any) -> DialogueStateTracker:
    events = [
        ActionExecuted("action_listen"),
        UserUttered("hồ sơ của tôi", intent={"name": "check_status", "confidence": 0.9}),
        *[SlotSet(name, value) for name, value in slots.items()],
    ]
    return DialogueStateTracker.from_events("rest:citizen", events, slots=domain.slots)


def ask(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/nlg", json=body)
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert CallbackNaturalLanguageGenerator.validate_response(reply)  # Rasa's own schema check
    return dict(reply)


def test_rasas_own_request_gets_rasas_answer_format(client: TestClient, domain: Domain) -> None:
    body = nlg_request_format("utter_greet", tracker(domain, language="vi"), "rest")
    assert body["tracker"]["events"]  # the real shape: Rasa sends the whole conversation
    reply = ask(client, body)
    assert reply["text"].startswith("Xin chào!")
    assert [b["payload"] for b in reply["buttons"]][0] == "/check_status"
    assert set(reply) >= {"text", "buttons", "image", "elements", "attachment"}


def test_the_language_slot_picks_the_language(client: TestClient, domain: Domain) -> None:
    english = ask(client, nlg_request_format("utter_greet", tracker(domain, language="en"), "rest"))
    assert english["text"].startswith("Hello!")
    assert english["buttons"][0]["title"] == "Track my dossier"


@pytest.mark.parametrize(
    ("language", "channel", "starts"),
    [
        ("vi", "facebook", "Bạn muốn hỏi về thủ tục nào ạ? (Bạn cũng"),  # Messenger variant
        ("en", "facebook", "Which procedure would you like to ask about? (You can"),
        ("vi", "telegram_ptb", "Bạn muốn hỏi về thủ tục nào ạ?"),  # no variant: the default
        ("en", "rest", "Which procedure would you like to ask about?"),
    ],
)
def test_the_channel_variant_where_one_exists(
    client: TestClient, domain: Domain, language: str, channel: str, starts: str
) -> None:
    body = nlg_request_format("utter_ask_procedure", tracker(domain, language=language), channel)
    reply = ask(client, body)
    assert reply["text"].startswith(starts)
    assert len(reply["buttons"]) == (3 if channel == "facebook" else 6)


def test_slots_and_arguments_fill_the_placeholders(client: TestClient, domain: Domain) -> None:
    state = tracker(domain, language="vi", dossier_code="000.00.10.H26-261110-0001")
    reply = ask(client, nlg_request_format("utter_dossier_not_found", state, "rest"))
    assert "000.00.10.H26-261110-0001" in reply["text"]
    assert "{dossier_code}" not in reply["text"]
    # An argument (from a custom action's utter_message(response=..., **kwargs)) wins.
    reply = ask(
        client,
        nlg_request_format("utter_dossier_not_found", state, "rest", dossier_code="H31-XYZ"),
    )
    assert "H31-XYZ" in reply["text"]


def test_every_domain_reply_renders_as_rasas_templated_generator_renders_it(
    client: TestClient, domain: Domain
) -> None:
    """The store's import and export lose nothing: same text and buttons for every reply in
    both languages on every channel."""
    rasa = TemplatedNaturalLanguageGenerator(domain.responses)
    slots = {"dossier_code": "H26-1", "procedure": "passport", "id_number": "*********234"}
    for name in domain.responses:
        for language in ("vi", "en"):
            for channel in ("rest", "facebook", "telegram_ptb", "zalo", "webchat"):
                filled = {**slots, "language": language}
                want = rasa.generate_from_slots(name, filled, channel)
                body = {
                    "response": name,
                    "tracker": {"slots": filled},
                    "channel": {"name": channel},
                    "arguments": {},
                }
                got = ask(client, body)
                assert want is not None
                assert (got["text"], got["buttons"]) == (want["text"], want.get("buttons", [])), (
                    name,
                    language,
                    channel,
                )


def test_a_name_nobody_knows_is_a_clear_404(client: TestClient) -> None:
    answer = client.post("/nlg", json={"response": "utter_no_such_reply", "tracker": {}})
    assert answer.status_code == 404
    assert "utter_no_such_reply" in answer.json()["detail"]
    assert client.post("/nlg", json={"tracker": {}}).status_code == 422


def test_a_reply_the_store_cannot_model_is_served_from_the_domain(tmp_path: Path) -> None:
    domain_dir = tmp_path / "domain"
    domain_dir.mkdir()
    (domain_dir / "x.yml").write_text(
        'version: "3.1"\nslots:\n  mood: {type: text, mappings: []}\nresponses:\n'
        "  utter_mood:\n    - text: plain\n"
        "    - text: happy\n      condition: [{type: slot, name: mood, value: happy}]\n",
        encoding="utf-8",
    )
    assert content_from_variations(read_domain(domain_dir)["utter_mood"].variations) is None
    with TestClient(create_app(make_settings(tmp_path, domain_dir=domain_dir))) as client:
        body = {"response": "utter_mood", "tracker": {"slots": {"mood": "happy"}}}
        assert client.post("/nlg", json=body).json()["text"] == "happy"


def test_english_on_messenger_never_gets_the_vietnamese_messenger_variant() -> None:
    """Rasa prefers a channel match without condition over a condition match without channel;
    the export gives every channel variant its language condition."""
    content = {
        "vi": {"text": "xin chào", "buttons": [], "channels": {"facebook": {"text": "fb vi"}}},
        "en": {"text": "hello", "buttons": [], "channels": {}},
    }
    rasa = TemplatedNaturalLanguageGenerator({"utter_x": variations_from_content(content)})
    assert rasa.generate_from_slots("utter_x", {"language": "en"}, "facebook")["text"] == "hello"
    assert rasa.generate_from_slots("utter_x", {"language": "vi"}, "facebook")["text"] == "fb vi"
    assert rasa.generate_from_slots("utter_x", {"language": "vi"}, "zalo")["text"] == "xin chào"


def test_answers_from_memory_in_a_few_milliseconds(client: TestClient, domain: Domain) -> None:
    body = nlg_request_format("utter_greet", tracker(domain, language="en"), "rest")
    for _ in range(20):
        client.post("/nlg", json=body)
    count = 200
    started = time.perf_counter()
    for _ in range(count):
        client.post("/nlg", json=body)
    each = (time.perf_counter() - started) / count
    print(f"/nlg through the test client: {each * 1000:.2f} ms")
    assert each < 0.02


def publish_unchecked(
    client: TestClient, as_role: Callable[[str], dict[str, str]], name: str, text: str
) -> None:
    """A text published around the checks (as texts stored before they refused it were)."""
    editor, reviewer = as_role("editor"), as_role("reviewer")
    base = f"/api/responses/{name}"
    answer = client.put(f"{base}/draft", headers=editor, json={"language": "vi", "text": text})
    assert answer.status_code == 200, answer.text
    assert client.post(f"{base}/submit", headers=editor).status_code == 200
    assert client.post(f"{base}/publish", headers=reviewer).status_code == 200


SLOTS = {"language": "vi", "id_number": "079203001234"}
GREET = {"response": "utter_greet", "tracker": {"slots": SLOTS}, "channel": {"name": "rest"}}


@pytest.mark.parametrize("text", ["Phí {fee", "giá {", "Mã hồ sơ: {}"])
def test_a_stored_text_rasa_cannot_fill_in_is_served_from_the_domain_never_a_500(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    text: str,
) -> None:
    monkeypatch.setattr(content, "check_content", lambda *args, **kwargs: [])
    with caplog.at_level(logging.ERROR, logger="console"):
        publish_unchecked(client, as_role, "utter_greet", text)
        answer = client.post("/nlg", json=GREET)
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"].startswith("Xin chào!")  # the domain's wording
    assert "utter_greet" in caplog.text
    assert "079203001234" not in caplog.text and text not in caplog.text  # the name only

    # A reply the domain does not have: the stored text as it is, no value filled in.
    client.app.state.console.published.domain.pop("utter_greet")  # type: ignore[attr-defined]
    answer = client.post("/nlg", json=GREET)
    assert answer.status_code == 200 and answer.json()["text"] == text
    assert "079203001234" not in answer.text  # "{}" is not filled with the slots


def test_a_rendering_error_the_checks_did_not_foresee_falls_back_too(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(content, "check_content", lambda *args, **kwargs: [])
    monkeypatch.setattr(published, "fillable", lambda variations: True)  # the check misses it
    publish_unchecked(client, as_role, "utter_greet", "Phí {fee")
    answer = client.post("/nlg", json=GREET)
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"].startswith("Xin chào!")
