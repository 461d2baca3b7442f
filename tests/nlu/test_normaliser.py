from __future__ import annotations

from pathlib import Path

from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.components.normaliser import EntityNormaliser


def annotated(text: str, phrase: str, value: str, kind: str = "procedure") -> Message:
    start = text.index(phrase)
    entity = {"entity": kind, "start": start, "end": start + len(phrase), "value": value}
    return Message(data={"text": text, "entities": [entity]})


def trained(tmp_path: Path) -> EntityNormaliser:
    component = EntityNormaliser({}, LocalModelStorage(tmp_path), Resource("normaliser"))
    component.train(
        TrainingData(
            [
                annotated("làm hộ chiếu ở đâu", "hộ chiếu", "passport"),
                annotated("xin lý lịch tư pháp", "lý lịch tư pháp", "judicial_record"),
                annotated("làm cccd mất bao lâu", "cccd", "id_card"),
            ]
        )
    )
    return component


def run(component: EntityNormaliser, text: str, entities: list[dict]) -> list[tuple]:
    message = Message(data={"text": text, "entities": entities})
    component.process([message])
    return [(e["entity"], e["value"]) for e in message.get("entities")]


def test_tagged_spellings_map_to_the_id(tmp_path: Path) -> None:
    component = trained(tmp_path)
    tagged = [{"entity": "procedure", "start": 0, "end": 8, "value": "hộ chiêu"}]
    assert run(component, "hộ chiêu cần gì", tagged) == [("procedure", "passport")]
    tagged = [{"entity": "procedure", "start": 0, "end": 15, "value": "li lich tu phap"}]
    assert run(component, "li lich tu phap", tagged) == [("procedure", "judicial_record")]


def test_untagged_known_phrase_is_found(tmp_path: Path) -> None:
    component = trained(tmp_path)
    assert run(component, "xin LY LICH TU PHAP o dau", []) == [("procedure", "judicial_record")]
    assert run(component, "hc", []) == []  # too short to find on its own


def test_id_number_reference_is_not_a_procedure(tmp_path: Path) -> None:
    component = trained(tmp_path)
    entities = [
        {"entity": "procedure", "start": 3, "end": 7, "value": "id_card"},
        {"entity": "id_number", "start": 8, "end": 20, "value": "079185005678"},
    ]
    assert run(component, "số cccd 079185005678", entities) == [("id_number", "079185005678")]


def test_survives_a_reload(tmp_path: Path) -> None:
    trained(tmp_path)
    storage = LocalModelStorage(tmp_path)
    loaded = EntityNormaliser.load({}, storage, Resource("normaliser"), None)  # type: ignore[arg-type]
    assert run(loaded, "ho chieu", []) == [("procedure", "passport")]


def test_number_given_right_after_the_card_name_is_not_a_procedure(tmp_path: Path) -> None:
    component = trained(tmp_path)
    for text in ["cccd: 079185005678", "cccd em 079185005678 nhé"]:
        start = text.index("079")
        entities = [
            {"entity": "procedure", "start": 0, "end": 4, "value": "id_card"},
            {"entity": "id_number", "start": start, "end": start + 12, "value": "079185005678"},
        ]
        assert run(component, text, entities) == [("id_number", "079185005678")], text


def test_fragments_that_name_nothing_are_dropped(tmp_path: Path) -> None:
    component = EntityNormaliser({}, LocalModelStorage(tmp_path), Resource("n"))
    component.train(TrainingData([annotated("ở hà nội nhé", "hà nội", "Hà Nội", "province")]))
    fragment = [{"entity": "province", "start": 8, "end": 10, "value": "hà"}]
    assert run(component, "nộp ở hà nội", fragment) == [("province", "Hà Nội")]


def test_province_from_the_lookup_table_is_found_where_the_extractor_missed_it(
    tmp_path: Path,
) -> None:
    component = EntityNormaliser({}, LocalModelStorage(tmp_path), Resource("normaliser"))
    component.train(
        TrainingData(
            [annotated("làm hộ chiếu ở Hà Nội", "Hà Nội", "Hà Nội", kind="province")],
            lookup_tables=[{"name": "province", "elements": ["Lào Cai", "Lao Cai", "lao cai"]}],
        )
    )
    for text in ["mất căn cước khi đi công tác Lào Cai thì sao", "lam lai cccd o lao cai"]:
        message = Message(data={"text": text, "entities": []})
        component.process([message])
        assert [(e["entity"], e["value"]) for e in message.get("entities")] == [
            ("province", "Lào Cai")
        ], text


def test_every_province_named_is_found_but_an_alias_alone_names_none(tmp_path: Path) -> None:
    component = EntityNormaliser({}, LocalModelStorage(tmp_path), Resource("normaliser"))
    component.train(
        TrainingData(
            [annotated("làm hộ chiếu ở Hà Nội", "Hà Nội", "Hà Nội", kind="province")],
            lookup_tables=[
                {"name": "province", "elements": ["Lào Cai", "Lao Cai", "lao cai", "Danang"]}
            ],
        )
    )
    text = "đặt vé tàu từ Hà Nội đi Lào Cai"
    start = text.index("Hà Nội")
    hanoi = {"entity": "province", "start": start, "end": start + 6, "value": "Hà Nội"}
    message = Message(data={"text": text, "entities": [hanoi]})
    component.process([message])
    assert [e["value"] for e in message.get("entities")] == ["Hà Nội", "Lào Cai"]
    message = Message(data={"text": "where is the office in danang", "entities": []})
    component.process([message])
    assert message.get("entities") == []
