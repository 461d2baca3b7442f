"""Tests of the NLU evaluation harness: data conversion, the metrics and the printed table.

Only the last test trains a model (marked ``model``; `make unit` skips it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nlu.evaluation import metrics
from nlu.evaluation.bio import (
    Sample,
    bio_to_entities,
    entities_to_bio,
    read_split,
    to_rasa_examples,
)
from nlu.evaluation.compare import Example, build_rows
from nlu.evaluation.compare import main as compare_main
from nlu.evaluation.conlleval import chunk_score, chunks
from nlu.evaluation.jointbert import score, segmented_share
from nlu.evaluation.rasa_runner import Parsed, prepare_config

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "nlu" / "fixtures" / "jointbert_tiny"


# --- BIO <-> Rasa -------------------------------------------------------------------------


def test_bio_to_entities_uses_character_offsets_of_the_joined_tokens() -> None:
    tokens = ["phí", "làm", "hộ", "chiếu", "ở", "Hà", "Nội"]
    tags = ["O", "O", "B-procedure", "I-procedure", "O", "B-province", "I-province"]
    text = " ".join(tokens)
    entities = bio_to_entities(tokens, tags)
    assert entities == [
        {"start": 8, "end": 16, "value": "hộ chiếu", "entity": "procedure"},
        {"start": 19, "end": 25, "value": "Hà Nội", "entity": "province"},
    ]
    assert [text[e["start"] : e["end"]] for e in entities] == ["hộ chiếu", "Hà Nội"]


def test_bio_to_entities_follows_conlleval_chunks() -> None:
    # I- without B- starts a chunk; a type change inside a run starts another; B after B too
    tokens = ["a", "b", "c", "d", "e"]
    tags = ["I-x", "I-x", "I-y", "B-y", "B-y"]
    assert [(e["entity"], e["value"]) for e in bio_to_entities(tokens, tags)] == [
        ("x", "a b"),
        ("y", "c"),
        ("y", "d"),
        ("y", "e"),
    ]


def test_entities_to_bio_round_trips() -> None:
    tokens = ["bay", "từ", "hà_nội", "đến", "đà", "nẵng", "lúc", "9", "giờ"]
    tags = ["O", "O", "B-fromloc", "O", "B-toloc", "I-toloc", "O", "B-time", "I-time"]
    assert entities_to_bio(tokens, bio_to_entities(tokens, tags)) == tags


def test_entities_to_bio_aligns_by_overlap() -> None:
    tokens = ["flights", "to", "st.", "louis,", "please"]
    # a tokenizer that drops punctuation gives spans that cover only part of a token
    entities = [
        {"start": 11, "end": 13, "entity": "city"},  # "st"
        {"start": 15, "end": 20, "entity": "city2"},  # "louis" without the comma
    ]
    assert entities_to_bio(tokens, entities) == ["O", "O", "B-city", "B-city2", "O"]
    # overlapping predictions: the earlier entity keeps the shared token
    overlapping = [{"start": 11, "end": 20, "entity": "a"}, {"start": 15, "end": 27, "entity": "b"}]
    assert entities_to_bio(tokens, overlapping) == ["O", "O", "B-a", "I-a", "B-b"]
    assert entities_to_bio(tokens, []) == ["O"] * 5


def test_read_split_keeps_multi_intent_labels_and_checks_alignment(tmp_path: Path) -> None:
    split = tmp_path / "train"
    split.mkdir()
    (split / "seq.in").write_text("giá vé đi huế\nchuyến bay\n", encoding="utf-8")
    (split / "seq.out").write_text("O O O B-toloc\nO O\n", encoding="utf-8")
    (split / "label").write_text("airfare#flight\nflight\n", encoding="utf-8")
    samples = read_split(split)
    assert samples[0] == Sample(
        ("giá", "vé", "đi", "huế"), ("O", "O", "O", "B-toloc"), "airfare#flight"
    )
    assert to_rasa_examples(samples)[0]["intent"] == "airfare#flight"

    (split / "seq.out").write_text("O O O\nO O\n", encoding="utf-8")
    with pytest.raises(ValueError, match="4 tokens but 3 tags"):
        read_split(split)
    (split / "label").write_text("flight\n", encoding="utf-8")
    with pytest.raises(ValueError, match="different line counts"):
        read_split(split)


def test_tiny_fixture_is_in_jointbert_layout() -> None:
    sizes = {name: len(read_split(TINY / name)) for name in ("train", "dev", "test")}
    assert sizes == {"train": 60, "dev": 10, "test": 20}
    train = read_split(TINY / "train")
    assert {s.intent for s in train} == {"ask_fee", "ask_requirements", "check_status"}
    kinds = {e["entity"] for ex in to_rasa_examples(train) for e in ex["entities"]}
    assert kinds == {"procedure", "province", "variant"}


def test_written_training_data_reads_back_with_the_same_entities(tmp_path: Path) -> None:
    from rasa.shared.nlu.training_data.loading import load_data

    from nlu.evaluation.jointbert import write_training_data

    samples = read_split(TINY / "train")[:12]
    path = write_training_data(samples, tmp_path / "nlu.yml")
    loaded = load_data(str(path)).intent_examples
    expected = to_rasa_examples(samples)
    assert len(loaded) == len(expected)
    by_text = {m.get("text"): m for m in loaded}
    for ex in expected:
        message = by_text[ex["text"]]
        assert message.get("intent") == ex["intent"]
        got = [(e["entity"], e["start"], e["end"], e["value"]) for e in message.get("entities")]
        assert got == [(e["entity"], e["start"], e["end"], e["value"]) for e in ex["entities"]]


# --- conlleval ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["B-a", "I-a", "O"], [("a", 0, 1)]),
        (["I-a", "I-a", "O"], [("a", 0, 1)]),  # I- without B- starts a chunk
        (["O", "I-a", "B-a", "I-a"], [("a", 1, 1), ("a", 2, 3)]),
        (["B-a", "I-b"], [("a", 0, 0), ("b", 1, 1)]),  # type change ends and starts
        (["B-a", "B-a"], [("a", 0, 0), ("a", 1, 1)]),
        (["B-a", "O", "I-a"], [("a", 0, 0), ("a", 2, 2)]),
        (["B-fromloc.city_name", "I-fromloc.city_name"], [("fromloc.city_name", 0, 1)]),
        (["B-a-b", "I-a-b"], [("a-b", 0, 1)]),  # hyphens in the type (conlleval 2004 fix)
        (["O", "O"], []),
    ],
)
def test_chunks_follow_conlleval(tags: list[str], expected: list[tuple[str, int, int]]) -> None:
    assert chunks(tags) == expected


def test_chunk_score_needs_type_and_both_boundaries() -> None:
    gold = [["B-x", "I-x", "O", "B-y"]]
    predicted = [["B-x", "O", "O", "I-y"]]  # x too short; I-y alone is a correct chunk
    score_ = chunk_score(gold, predicted)
    assert (score_.correct, score_.predicted, score_.gold) == (1, 2, 2)
    assert score_.f1 == pytest.approx(50.0)


def test_chunk_score_counts_over_the_corpus() -> None:
    gold = [["B-a", "I-a", "O"], ["B-b", "O", "B-c"], ["O", "O", "O"]]
    predicted = [["B-a", "I-a", "O"], ["B-c", "O", "B-c"], ["O", "B-a", "O"]]
    s = chunk_score(gold, predicted)
    # correct: a(0-1), c(2); predicted: 4; gold: 3
    assert (s.correct, s.predicted, s.gold) == (2, 4, 3)
    assert s.precision == pytest.approx(50.0)
    assert s.recall == pytest.approx(200 / 3)
    assert s.f1 == pytest.approx(2 * 50 * (200 / 3) / (50 + 200 / 3))


def test_chunk_score_edge_cases() -> None:
    assert chunk_score([["O"]], [["O"]]).f1 == 0.0  # nothing to find: conlleval prints 0
    with pytest.raises(ValueError):
        chunk_score([["O", "O"]], [["O"]])


def test_jointbert_score_sentence_accuracy_needs_intent_and_every_tag() -> None:
    test = [
        Sample(("hộ", "chiếu"), ("B-procedure", "I-procedure"), "ask_fee"),
        Sample(("hộ", "chiếu"), ("B-procedure", "I-procedure"), "ask_fee"),
        Sample(("xin", "chào"), ("O", "O"), "greet"),
    ]
    span = {"entity": "procedure", "start": 0, "end": 8, "value": "hộ chiếu"}
    parsed = [
        Parsed("hộ chiếu", "ask_fee", "ask_fee", 0.9, [span]),
        Parsed("hộ chiếu", "nlu_fallback", "ask_requirements", 0.4, [span]),
        Parsed("xin chào", "nlu_fallback", "greet", 0.4, [{**span, "entity": "language"}]),
    ]
    result = score(test, parsed)
    assert result["intent accuracy"] == pytest.approx(200 / 3)  # fallback ignored
    assert result["slot F1 (conlleval)"] == pytest.approx(100.0)
    assert result["sentence accuracy"] == pytest.approx(200 / 3)
    assert result["nlu_fallback rate %"] == pytest.approx(200 / 3)


# --- value-level entity F1 ----------------------------------------------------------------


def test_normalise_value() -> None:
    assert metrics.normalise_value("id_number", " 0010 9000.1234 ") == "001090001234"
    assert metrics.normalise_value("phone_number", "+84 912.345.678") == "+84912345678"
    assert metrics.normalise_value("otp", "123 456") == "123456"
    # dots are part of a dossier code; spaces and case are not
    assert metrics.normalise_value("dossier_code", "h29.22-251112-0123 ") == "h29.22-251112-0123"
    assert metrics.normalise_value("province", "TP. Hồ Chí Minh") == "tp. hồ chí minh"
    decomposed = "Ha\u0300 No\u0302\u0323i"  # combining accents, as some keyboards send them
    assert metrics.normalise_value("province", decomposed) == "hà nội"


def test_entity_f1_matches_type_and_normalised_value() -> None:
    gold = [
        [("procedure", "passport"), ("id_number", "001090001234")],
        [("procedure", "id_card"), ("procedure", "id_card")],
        [("province", "Hà Nội")],
        [],
    ]
    predicted = [
        [("procedure", "passport"), ("id_number", "0010 9000 1234"), ("language", "vi")],
        [("procedure", "id_card")],  # one of two mentions found
        [("province", "Đà Nẵng")],  # wrong value: a false positive and a miss
        [("otp", "123456")],  # invented
    ]
    counts = metrics.entity_counts(gold, predicted)
    assert "language" not in counts
    assert (counts["procedure"].tp, counts["procedure"].fp, counts["procedure"].fn) == (2, 0, 1)
    assert metrics.entity_f1(gold, predicted) == {
        "id_number": 100.0,
        "otp": 0.0,
        "procedure": pytest.approx(80.0),
        "province": 0.0,
    }
    assert metrics.f1(0, 0, 0) is None


def test_entity_f1_type_must_match() -> None:
    # the same digits as phone_number do not count for id_number
    gold = [[("id_number", "036099001234")]]
    predicted = [[("phone_number", "036099001234")]]
    assert metrics.entity_f1(gold, predicted) == {"id_number": 0.0, "phone_number": 0.0}


def test_intent_accuracy_and_macro_f1() -> None:
    gold = ["a", "a", "b", "c"]
    predicted = ["a", "b", "b", "nlu_fallback"]
    assert metrics.accuracy(gold, predicted) == 50.0
    # a: P 1 R .5 -> 66.7; b: P .5 R 1 -> 66.7; c: 0; nlu_fallback is not a class
    assert metrics.macro_f1(gold, predicted) == pytest.approx((200 / 3 + 200 / 3 + 0) / 3)
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)


# --- the table ----------------------------------------------------------------------------


def test_format_table_aligns_and_reads_back() -> None:
    rows: list[tuple[str, list[metrics.Cell]]] = [
        ("intent accuracy (all)", [97.43, 91.2]),
        ("entity F1 otp (all)", [None, 50.0]),
        ("parse latency mean / p95 (ms)", ["12.3 / 20.1", "8.0 / 9.5"]),
    ]
    text = metrics.format_table(["project", "default"], rows)
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "project", "default"]
    assert len({len(line) for line in lines}) == 1  # right-aligned columns
    assert lines[1].startswith("intent accuracy (all)")
    assert lines[1].split()[-2:] == ["97.4", "91.2"]
    assert metrics.parse_table(text) == {
        "intent accuracy (all)": ["97.4", "91.2"],
        "entity F1 otp (all)": ["-", "50.0"],
        "parse latency mean / p95 (ms)": ["12.3 / 20.1", "8.0 / 9.5"],
    }
    markdown = metrics.markdown_table(["project", "default"], rows)
    assert "| entity F1 otp (all) | - | 50.0 |" in markdown
    with pytest.raises(ValueError):
        metrics.format_table(["project"], rows)


def test_compare_rows_cover_subsets_entities_and_timing() -> None:
    examples = [
        Example("vi", "phí hộ chiếu", "ask_fee", (("procedure", "passport"),)),
        Example(
            "vi",
            "hồ sơ H29.22-251112-0123",
            "check_status",
            (("dossier_code", "H29.22-251112-0123"),),
        ),
        Example("en", "passport fee", "ask_fee", (("procedure", "passport"),)),
        Example("en", "hi", "greet", ()),
    ]

    def parsed(intent: str, entities: list[tuple[str, str]]) -> Parsed:
        return Parsed("", intent, intent, 0.9, [{"entity": k, "value": v} for k, v in entities])

    runs = {
        "project": [
            parsed("ask_fee", [("procedure", "passport")]),
            parsed("check_status", [("dossier_code", "h29.22-251112-0123")]),
            parsed("ask_fee", [("procedure", "passport")]),
            parsed("nlu_fallback", []),
        ],
        "default": [
            parsed("ask_fee", [("procedure", "passport")]),
            parsed("ask_fee", []),
            parsed("ask_requirements", [("procedure", "id_card")]),
            parsed("greet", []),
        ],
    }
    rows = dict(build_rows(examples, runs, {"project": 12.0, "default": 10.0}))
    assert rows["intent accuracy (all)"] == [75.0, 50.0]
    assert rows["intent accuracy (vi)"] == [100.0, 50.0]
    assert rows["intent accuracy (en)"] == [50.0, 50.0]
    assert rows["nlu_fallback rate % (all)"] == [25.0, 0.0]
    assert rows["entity F1 procedure (all)"] == [100.0, 50.0]  # 1 right, 1 wrong, 1 missed
    assert rows["entity F1 dossier_code (all)"] == [100.0, 0.0]
    assert rows["entity F1 dossier_code (en)"] == [None, None]
    assert rows["training time (s)"] == [12.0, 10.0]
    assert list(rows)[-1] == "parse latency mean / p95 (ms)"


def test_prepare_config_scales_epochs_and_drops_components() -> None:
    config = {
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "DIETClassifier", "epochs": 80},
            {"name": "ResponseSelector"},  # Rasa's default: 300
            {"name": "nlu.components.guard.InputGuard"},
        ]
    }
    scaled, dropped = prepare_config(config, 0.05, drop=["nlu.components.guard.InputGuard"])
    assert dropped == ["nlu.components.guard.InputGuard"]
    assert [c.get("epochs") for c in scaled["pipeline"]] == [None, 4, 15]
    assert config["pipeline"][1]["epochs"] == 80  # the original is untouched
    tiny, _ = prepare_config(config, 0.001)
    assert tiny["pipeline"][1]["epochs"] == 1


def test_word_segmented_data_is_recognised() -> None:
    segmented = [Sample(("bay", "từ", "đà_nẵng", "đến", "hà_nội"), ("O",) * 5, "flight")]
    syllables = [Sample(("bay", "từ", "đà", "nẵng", "đến", "hà", "nội"), ("O",) * 7, "flight")]
    assert segmented_share(segmented) == pytest.approx(0.4)
    assert segmented_share(syllables) == 0.0
    assert segmented_share([]) == 0.0


def test_reuse_without_models_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--reuse"):
        compare_main(["--reuse", "--only", "project", "--out", str(tmp_path)])


# --- end to end -----------------------------------------------------------------------------


@pytest.mark.model
def test_jointbert_harness_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nlu.evaluation.jointbert",
            str(TINY),
            "--epochs-scale",
            "0.05",
            "--only",
            "project",
            "--out",
            str(tmp_path),
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "dropped nlu.components.extractors.PatternEntityExtractor" in result.stdout
    table = metrics.parse_table(result.stdout)
    for name in ("intent accuracy", "slot F1 (conlleval)", "sentence accuracy"):
        project, published = table[name]
        assert 0.0 <= float(project) <= 100.0, (name, project)
        assert 0.0 <= float(published) <= 100.0
    assert table["intent accuracy"][1] == "97.62"
    assert (tmp_path / "report.md").is_file()


def test_seeds_combine_into_mean_spread_and_range_and_seed_every_classifier() -> None:
    from nlu.evaluation.compare import combine_rows, set_seed

    first = [("intent accuracy (all)", [96.0, 95.0]), ("parse latency", ["12 / 15", "14 / 18"])]
    second = [("intent accuracy (all)", [98.0, 97.0]), ("parse latency", ["13 / 16", "15 / 19"])]
    third = [("intent accuracy (all)", [97.0, 99.0]), ("parse latency", ["11 / 14", "16 / 20"])]
    assert combine_rows([first, second, third]) == [
        ("intent accuracy (all)", ["97.0 ± 1.0 [96.0-98.0]", "97.0 ± 2.0 [95.0-99.0]"]),
        ("parse latency", ["12 / 15", "14 / 18"]),
    ]
    config = {"pipeline": [{"name": "DIETClassifier"}, {"name": "ResponseSelector"}, {"name": "X"}]}
    set_seed(config, 7)
    assert [c.get("random_seed") for c in config["pipeline"]] == [7, 7, None]
