"""Accent folding for search: "Hộ chiếu" and "ho chieu" find the same reply."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^\w]+")


def fold(text: str) -> str:
    """Lower case, without diacritics (đ becomes d), words separated by single spaces."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", plain.lower()).split())


def words(query: str) -> list[str]:
    return fold(query).split()
