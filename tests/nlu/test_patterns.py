from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from nlu.components.extractors import find_pattern_entities
from nlu.components.patterns import id_number_problem, normalise_dossier_code
from nlu.components.text import fold, guess_language, normalise_token


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("001090001234", None),
        ("079185005678", None),
        ("031 200 001 111", None),
        ("123456789", "cmnd"),
        ("00109000123", "length"),
        ("003090001234", "province"),  # 003 is not a province code
        ("001790001234", "century"),
        ("001399001234", "year"),  # a woman born in 2099
    ],
)
def test_id_number_structure(value: str, problem: str | None) -> None:
    assert id_number_problem(value, today=dt.date(2026, 11, 29)) == problem


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("000.00.10.H26-261110-0001", "000.00.10.H26-261110-0001"),
        ("000.00.10.h26-261110-0001", "000.00.10.H26-261110-0001"),
        ("H29.22-261112-0123", "H29.22-261112-0123"),
        ("H56.9-251209-0011", "H56.9-251209-0011"),
        ("000.00.10.H26-261310-0001", None),  # month 13
        ("000-00-10-H26-261110-0001", None),
        ("261110-0001", None),
    ],
)
def test_dossier_code_family(typed: str, code: str | None) -> None:
    assert normalise_dossier_code(typed) == code


def test_entities_found_by_validating_patterns() -> None:
    text = "hs 000.00.10.H26-261110-0001, cccd 001090001234, sdt 0912 345 678, ma 482913"
    found = {e["entity"]: e["value"] for e in find_pattern_entities(text, otp_expected=False)}
    assert found == {
        "dossier_code": "000.00.10.H26-261110-0001",
        "id_number": "001090001234",
        "phone_number": "0912 345 678",
        "otp": "482913",
    }


@pytest.mark.parametrize(
    "typed", ["001090001234", "001 090 001 234", "0010 9000 1234", "0010.9000.1234"]
)
def test_id_number_typed_in_groups(typed: str) -> None:
    found = find_pattern_entities(f"số cccd của em là {typed} ạ", otp_expected=False)
    assert [(e["entity"], e["value"]) for e in found] == [("id_number", "001090001234")]


def test_numbers_that_are_not_codes() -> None:
    assert find_pattern_entities("so 001790001234 trung thuong", otp_expected=False) == []
    assert find_pattern_entities("lệ phí 135000 đ phải không", otp_expected=True) == []
    assert find_pattern_entities("xổ số 123456 trúng không", otp_expected=False) == []


def test_folding_and_abbreviations() -> None:
    assert fold("Căn cước ĐỊNH DANH") == "can cuoc dinh danh"
    assert normalise_token("ko") == "khong"
    assert normalise_token("CCCD") == "can cuoc cong dan"
    # "ktra hs" and "kiểm tra hồ sơ" meet; "kq" is "kết quả"
    assert normalise_token("ktra") == normalise_token("Kiểm") + " " + normalise_token("tra")
    assert normalise_token("KQ") == "ket qua"
    assert {normalise_token(w) for w in ("ko", "k", "hk", "hok", "hông")} == {"khong"}


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("làm căn cước ở đâu", "vi"),
        ("lam can cuoc o dau", "vi"),
        ("How much is a passport?", "en"),
        ("hello", "en"),
        ("001090001234", None),
        ("ok", None),
    ],
)
def test_language_guess(text: str, lang: str | None) -> None:
    assert guess_language(text) == lang


def test_entity_values_outside_the_contract_are_dropped() -> None:
    from rasa.shared.nlu.training_data.message import Message

    from nlu.components.extractors import EntityValueFilter

    message = Message(
        data={
            "text": "mất căn cước thì làm lại thế nào",
            "entities": [
                {"entity": "variant", "value": "reissue_lost"},
                {"entity": "procedure", "value": "id_card"},
                {"entity": "variant", "value": "lại"},
                {"entity": "province", "value": "Hà Nội"},
            ],
        }
    )
    component = EntityValueFilter(
        {"allowed_values": {"procedure": ["id_card"], "variant": ["reissue_lost"]}}
    )
    component.process([message])
    assert [e["value"] for e in message.get("entities")] == ["reissue_lost", "id_card", "Hà Nội"]


def test_input_guard_intents() -> None:
    from rasa.shared.nlu.training_data.message import Message

    from nlu.components.guard import InputGuard

    def intent_of(text: str) -> str | None:
        message = Message(data={"text": text, "intent": {"name": "inform", "confidence": 0.9}})
        InputGuard({"max_characters": 100}).process([message])
        return message.get("intent")["name"]

    assert intent_of("") == "empty_message"
    assert intent_of("😀😀 ?!") == "empty_message"
    assert intent_of("x" * 101) == "message_too_long"
    assert intent_of("mật khẩu vneid của tôi là Abc@12345") == "offer_password"
    assert intent_of("my password is hunter22") == "offer_password"
    assert intent_of("quên mật khẩu vneid thì làm sao") == "inform"
    assert intent_of("quên mk vneid, tk là 027099006731") == "inform"
    assert intent_of("he wanted my VNeID password, is that legit?") == "inform"
    assert intent_of('/inform{"procedure": "passport"}') == "inform"


def test_phone_numbers_as_typed() -> None:
    for typed in [
        "0912345678",
        "0912 345 678",
        "+84912345678",
        "+84 912 004 583",
        "84912345678",
        "+84 903112233",
    ]:
        found = find_pattern_entities(f"sdt {typed} nhé", otp_expected=False)
        assert [e["entity"] for e in found] == ["phone_number"], typed


def test_language_asked_for_when_switching() -> None:
    from rasa.shared.nlu.training_data.message import Message

    from nlu.components.extractors import PatternEntityExtractor

    def language_of(text: str, intent: str = "switch_language") -> list:
        message = Message(data={"text": text, "intent": {"name": intent}, "entities": []})
        PatternEntityExtractor().process([message])
        return [(e["value"], text[e["start"] : e["end"]]) for e in message.get("entities")]

    assert language_of("speak English please") == [("en", "English")]
    assert language_of("nói tiếng Việt đi") == [("vi", "tiếng Việt")]
    assert language_of("đổi ngôn ngữ") == []
    assert language_of("học tiếng anh ở đâu", intent="out_of_scope") == []


def test_keyboard_mashing_goes_to_fallback_and_real_words_do_not(tmp_path: Path) -> None:
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from nlu.components.guard import UnknownWordsGuard

    storage, resource = LocalModelStorage(tmp_path), Resource("unknown_words")
    examples = ["làm căn cước ở đâu", "alo ad ơi", "how much is a passport", "ok"]
    UnknownWordsGuard.create({}, storage, resource, None).train(  # type: ignore[arg-type]
        TrainingData([Message(data={"text": t, "intent": "x"}) for t in examples])
    )
    guard = UnknownWordsGuard.load({}, storage, resource, None)  # type: ignore[arg-type]

    def intent_of(text: str, entities: list[dict] | None = None) -> str:
        message = Message(
            data={
                "text": text,
                "intent": {"name": "inform", "confidence": 0.97},
                "entities": entities or [],
            }
        )
        guard.process([message])
        return message.get("intent")["name"]

    for mashing in ["asdkjh qwe", "lalala", "zxcvbn", "kkkkkk"]:
        assert intent_of(mashing) == "nlu_fallback", mashing
    # folded, drawn out, misspelt or mixed with unknown words: still understood
    for real in ["lam can cuoc o dau", "alooooo", "how much is a pasport", "ok xyzzy", "OK"]:
        assert intent_of(real) == "inform", real
    # a code or number the extractors found is an answer, not noise; so is a button payload
    assert intent_of("h29x", [{"entity": "dossier_code", "value": "H29X"}]) == "inform"
    assert intent_of('/inform{"procedure": "passport"}') == "inform"


def test_numbers_in_a_sum_are_not_id_numbers_and_a_code_before_a_comma_is_a_code() -> None:
    def kinds(text: str) -> list[str]:
        return [e["entity"] for e in find_pattern_entities(text, otp_expected=True)]

    assert kinds("987654321 cộng 123456789 bằng bao nhiêu") == []
    assert kinds("what is 123456789012 divided by 4") == []
    assert kinds("12 x 458812345 = ?") == []
    assert kinds("số 001090123456 - còn hạn ko") == ["id_number"]
    assert kinds("cmnd cũ 272345678 đổi sang căn cước") == ["id_number"]
    assert kinds("i told a caller the code 739204, what now") == ["otp"]
    assert kinds("phí 100,000 đồng") == []
    assert kinds("dinh danh ca nhan 080224000519, be moi lam") == ["id_number"]
    assert kinds("my id 001090123456 times out when i log in") == ["id_number"]
