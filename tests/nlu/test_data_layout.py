"""Training data by feature: one file per feature in each language, named like the domain's and
the stories' files, and each intent's examples in one file, so `git grep` on an intent finds
them in one place. `inform` (an answer to the bot's question) lives with the feature that asks."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("vi", "en")


def intents_by_file(language: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "nlu" / language).glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        found[path.stem] = {item["intent"] for item in data.get("nlu", []) if "intent" in item}
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_file_is_a_feature_of_the_domain(language: str) -> None:
    features = {p.stem for p in (ROOT / "bot" / "domain").glob("*.yml")}
    assert set(intents_by_file(language)) <= features


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_intent_has_its_examples_in_one_file(language: str) -> None:
    files_of: dict[str, list[str]] = defaultdict(list)
    for name, intents in intents_by_file(language).items():
        for intent in intents - {"inform"}:
            files_of[intent].append(name)
    spread = {intent: files for intent, files in files_of.items() if len(files) > 1}
    assert not spread, f"intents in several files of nlu/{language}: {spread}"


def test_both_languages_have_the_same_features() -> None:
    assert set(intents_by_file("vi")) == set(intents_by_file("en"))
