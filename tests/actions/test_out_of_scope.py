"""A question about a neighbouring service (land, tax, traffic fines, visas, ...) gets the reply
that says where to go, unless a published FAQ entry answers it; without a known service the
out-of-scope and fallback steps are as before. The table of replies agrees with the config's
allowed values, the contract and the domain, so no service is tagged without a reply."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import (
    ActionAnswerFaqOrFallback,
    background_frequencies,
    faq_source,
    set_faq_source,
)
from actions.out_of_scope import ENTITY, RESPONSES, named_in
from tests.actions.helpers import make_tracker, responses
from tests.actions.test_faq import HEALTH_CARD, Clock, FakeContentService

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def warm_background() -> None:
    background_frequencies()


@pytest.fixture()
def service() -> Iterator[FakeContentService]:
    fake = FakeContentService([HEALTH_CARD])
    set_faq_source(fake.source(Clock()))
    yield fake
    set_faq_source(None)


def service_named(value: str, text: str) -> list[dict[str, object]]:
    return [{"entity": ENTITY, "value": value, "start": 0, "end": len(text)}]


async def ask(
    text: str, value: str | None, intent: str = "out_of_scope", language: str = "vi"
) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        slots={"language": language},
        intent=intent,
        text=text,
        entities=service_named(value, text) if value else [],
    )
    await ActionAnswerFaqOrFallback().run(dispatcher, tracker, {"responses": {}})
    return dispatcher


@pytest.mark.parametrize(
    ("text", "value", "reply"),
    [
        ("làm sổ đỏ cần giấy tờ gì", "land", "utter_out_of_scope_land"),
        ("nop phat nguoi online the nao", "traffic_fine", "utter_out_of_scope_traffic_fine"),
        ("how do I extend my visa", "visa_foreigner", "utter_out_of_scope_visa_foreigner"),
        ("where do I file my income tax", "tax", "utter_out_of_scope_tax"),
    ],
)
async def test_a_neighbouring_service_gets_where_to_go(
    service: FakeContentService, text: str, value: str, reply: str
) -> None:
    dispatcher = await ask(text, value)
    assert responses(dispatcher) == [reply]
    assert service.reported == []  # answered, so not an unanswered question


async def test_a_published_entry_comes_first(service: FakeContentService) -> None:
    dispatcher = await ask("mat the bhyt xin cap lai o dau", "social_insurance")
    assert responses(dispatcher) == []
    assert [m["text"] for m in dispatcher.messages] == [
        f"{HEALTH_CARD['answer']['vi']}\n{HEALTH_CARD['source']}"
    ]


async def test_without_a_known_service_out_of_scope_is_as_before(
    service: FakeContentService,
) -> None:
    assert responses(await ask("giá vàng hôm nay", None)) == ["utter_out_of_scope"]
    assert responses(await ask("thủ tục làm vàng", "gold")) == ["utter_out_of_scope"]
    await faq_source().drain()
    assert [r["text"] for r in service.reported] == ["giá vàng hôm nay", "thủ tục làm vàng"]


async def test_a_fallback_that_names_a_service_gets_where_to_go(
    service: FakeContentService,
) -> None:
    dispatcher = await ask("so do", "land", intent="nlu_fallback")
    assert responses(dispatcher) == ["utter_out_of_scope_land"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Mở tài khoản ngân hàng online có mất phí không em?", "bank"),
        ("xin visa du lich nhat ban mat bao lau", "visa_foreigner"),
        ("How long does a PIT refund take?", "tax"),
        ("Sổ hồng căn hộ bao giờ mới có", "land"),
    ],
)
async def test_a_service_the_tagger_missed_is_found_by_the_lookups_phrases(
    service: FakeContentService, text: str, value: str
) -> None:
    assert named_in(text) == value
    assert responses(await ask(text, None)) == [RESPONSES[value]]


@pytest.mark.parametrize(
    "text",
    [
        "kết hôn với người nước ngoài thì sao",  # "nước" (water) of "nước ngoài" (abroad)
        "thue tro gan truong thi sao",  # "thuê" (rent) typed without diacritics
        "/out_of_scope",  # a button's payload is not the citizen's words
    ],
)
async def test_words_an_in_scope_question_also_uses_name_no_service(
    service: FakeContentService, text: str
) -> None:
    assert responses(await ask(text, None)) == ["utter_out_of_scope"]


async def test_the_nlus_entity_wins_over_the_phrases(service: FakeContentService) -> None:
    dispatcher = await ask("vay ngân hàng để làm sổ đỏ", "land")
    assert responses(dispatcher) == ["utter_out_of_scope_land"]


def allowed_in_config() -> list[str]:
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    component = next(c for c in config["pipeline"] if c["name"].endswith("EntityValueFilter"))
    assert component["only_with_intents"][ENTITY] == ["out_of_scope"]
    return list(component["allowed_values"][ENTITY])


def values_in_contract() -> list[str]:
    contract = (ROOT / "docs" / "CONTRACT.md").read_text(encoding="utf-8")
    found = re.search(r"- other_service .*?values: (.*?)\. Each value", contract, re.S)
    assert found, "docs/CONTRACT.md names the other_service values"
    return [v.strip() for v in found.group(1).replace("\n", " ").split(",")]


def test_every_service_has_a_reply_in_both_languages() -> None:
    domain = yaml.safe_load((ROOT / "bot" / "domain" / "out_of_scope.yml").read_text("utf-8"))
    assert ENTITY in domain["entities"]
    assert allowed_in_config() == list(RESPONSES) == values_in_contract()
    for value, name in RESPONSES.items():
        assert name == f"utter_out_of_scope_{value}"
        variations = domain["responses"][name]
        assert [v.get("condition", [{}])[0].get("value") for v in variations] == [None, "en"]


def test_the_training_data_names_only_known_services() -> None:
    annotated = set()
    for path in (ROOT / "nlu").glob("*/*.yml"):
        text = path.read_text(encoding="utf-8")
        annotated |= set(re.findall(r'"entity": "other_service", "value": "(\w+)"', text))
    synonyms = yaml.safe_load((ROOT / "nlu" / "lookups" / "other_service.yml").read_text("utf-8"))
    values = {item["synonym"] for item in synonyms["nlu"] if "synonym" in item}
    assert annotated == values == set(RESPONSES)
    assert [item["lookup"] for item in synonyms["nlu"] if "lookup" in item] == [ENTITY]
