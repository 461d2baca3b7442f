"""The Vietnamese tokenizer: what the featurizers see for what citizens type."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from nlu.components.tokenizer import VietnameseTokenizer


def lemmas(text: str, segmenter: str = "whitespace") -> list[str]:
    tokenizer = VietnameseTokenizer(
        {**VietnameseTokenizer.get_default_config(), "segmenter": segmenter}
    )
    return [t.lemma for t in tokenizer.tokenize(Message(data={"text": text}), "text")]


def words(text: str) -> list[str]:
    return " ".join(lemmas(text)).split()


def test_accents_and_abbreviations_meet() -> None:
    assert words("Làm CCCD ở đâu") == words("lam can cuoc cong dan o dau")
    assert lemmas("ko dc") == ["khong", "duoc"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # the classifier sees "a code", whatever its format, so no code is memorised
        ("tra mã 000.00.10.H26-261110-0001 giúp em", "tra mã h29.22-261112-0123 giúp em"),
        ("số cccd 001090001234", "số cccd 079185005678"),
        ("sdt 0912334871 nhé", "sdt +84387221904 nhé"),
        ("mã 123456", "mã 654321"),
    ],
)
def test_codes_and_numbers_are_one_class(first: str, second: str) -> None:
    assert lemmas(first) == lemmas(second)
    assert lemmas(first, "pyvi") == lemmas(second, "pyvi")


def test_other_numbers_stay_as_typed() -> None:
    assert lemmas("năm 2026 lệ phí 50") == ["nam", "2026", "le", "phi", "50"]
    # a 12-digit number and a dossier code are different classes
    assert lemmas("001090001234") != lemmas("000.00.10.H26-261110-0001")


def test_pyvi_joins_compounds_and_keeps_offsets() -> None:
    tokenizer = VietnameseTokenizer(
        {**VietnameseTokenizer.get_default_config(), "segmenter": "pyvi"}
    )
    text = "đăng ký khai sinh cho con"
    tokens = tokenizer.tokenize(Message(data={"text": text}), "text")
    assert any(" " in t.text for t in tokens)  # at least one compound word
    for token in tokens:
        assert text[token.start : token.end] == token.text
