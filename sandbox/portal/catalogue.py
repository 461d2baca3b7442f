"""Procedure catalogue: YAML files validated on load, accent-insensitive search, resolution.

A bad file stops the portal from starting (`CatalogueError` names the file and the field).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml
from pydantic import BaseModel, Extra, ValidationError, root_validator, validator

# Fields a variant may override; the procedure gives each one unless every variant does.
OVERRIDABLE = (
    "documents",
    "fee",
    "processing_time",
    "where_to_submit",
    "online",
    "who_can_file",
    "common_return_reasons",
    "province_notes",
)
_REQUIRED_RESOLVED = tuple(f for f in OVERRIDABLE if f != "province_notes")


class CatalogueError(ValueError):
    """A procedure file is missing, unreadable or does not match the schema."""


class StrictModel(BaseModel):
    """Unknown fields refused, texts stripped and never empty."""

    class Config:
        extra = Extra.forbid
        anystr_strip_whitespace = True
        min_anystr_length = 1


class Text(StrictModel):
    """A text in both languages."""

    vi: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.vi


class TextList(StrictModel):
    """A list of texts in both languages."""

    vi: List[str]
    en: List[str]

    def get(self, lang: str) -> List[str]:
        return list(self.en if lang == "en" else self.vi)


class Online(StrictModel):
    available: bool
    channels: List[str] = []
    url: str | None = None
    note: Text | None = None


class Variant(StrictModel):
    id: str
    name: Text
    documents: TextList | None = None
    fee: Text | None = None
    processing_time: Text | None = None
    where_to_submit: Text | None = None
    online: Online | None = None
    who_can_file: Text | None = None
    common_return_reasons: TextList | None = None
    province_notes: Dict[str, Text] | None = None


class Procedure(StrictModel):
    id: str
    sample_data: bool
    source: str
    reviewed_on: dt.date
    keywords: TextList
    name: Text
    summary: Text
    default_variant: str | None = None
    variants: List[Variant] = []
    documents: TextList | None = None
    fee: Text | None = None
    processing_time: Text | None = None
    where_to_submit: Text | None = None
    online: Online | None = None
    who_can_file: Text | None = None
    common_return_reasons: TextList | None = None
    province_notes: Dict[str, Text] | None = None

    @validator("variants", pre=True)
    def _none_is_empty(cls, value: Any) -> Any:  # noqa: N805
        return [] if value is None else value

    @root_validator(skip_on_failure=True)
    def _consistent(cls, values: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N805
        variants: List[Variant] = values.get("variants") or []
        ids = [v.id for v in variants]
        if len(ids) != len(set(ids)):
            raise ValueError(f"variant ids must be unique, got {ids}")
        default = values.get("default_variant")
        if default is not None and default not in ids:
            raise ValueError(f"default_variant {default!r} is not one of the variants {ids}")
        for field in _REQUIRED_RESOLVED:
            if values.get(field) is None and (
                not variants or any(getattr(v, field) is None for v in variants)
            ):
                raise ValueError(f"{field} is required (at procedure level or in every variant)")
        return values

    def variant(self, variant_id: str | None) -> Variant | None:
        """The variant asked for, else the default one; KeyError when it does not exist."""
        wanted = variant_id or self.default_variant
        if wanted is None:
            return None
        for variant in self.variants:
            if variant.id == wanted:
                return variant
        raise KeyError(wanted)


def load_procedure(path: Path) -> Procedure:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"{path}: cannot read YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogueError(f"{path}: expected a mapping at the top level")
    try:
        procedure = Procedure.parse_obj(raw)
    except ValidationError as exc:
        raise CatalogueError(f"{path}: invalid procedure:\n{exc}") from exc
    if procedure.id != path.stem:
        raise CatalogueError(f"{path}: id {procedure.id!r} does not match the file name")
    return procedure


def load_catalogue(directory: Path) -> Dict[str, Procedure]:
    """Every `*.yml` file of the folder, by procedure id."""
    if not directory.is_dir():
        raise CatalogueError(f"procedure catalogue folder not found: {directory}")
    procedures: Dict[str, Procedure] = {}
    for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
        procedure = load_procedure(path)
        if procedure.id in procedures:
            raise CatalogueError(f"{path}: duplicate procedure id {procedure.id!r}")
        procedures[procedure.id] = procedure
    return procedures


# --- search ----------------------------------------------------------------------------------

_NON_WORD = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower case, no accents, words separated by one space: 'Hộ chiếu!' -> 'ho chieu'."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", stripped.lower()).strip()


def _phrases(procedure: Procedure) -> List[str]:
    texts = [
        procedure.name.vi,
        procedure.name.en,
        *procedure.keywords.vi,
        *procedure.keywords.en,
        *(v.name.vi for v in procedure.variants),
        *(v.name.en for v in procedure.variants),
    ]
    return [f for f in (fold(t) for t in texts) if f]


def _score_phrase(query: str, query_words: List[str], phrase: str) -> float:
    if query == phrase:
        return 100.0
    padded_phrase, padded_query = f" {phrase} ", f" {query} "
    if padded_query in padded_phrase:
        return 80.0 + 10.0 * len(query) / len(phrase)
    if padded_phrase in padded_query:
        return 60.0 + 10.0 * len(phrase) / len(query)
    words = phrase.split()
    matched = sum(
        1
        for q in query_words
        if q in words or (len(q) >= 3 and any(w.startswith(q) for w in words))
    )
    share = matched / len(query_words)
    return 40.0 * share if share > 0.5 else 0.0


def score(procedure: Procedure, query: str) -> float:
    """How well the procedure's names and keywords match the (folded) query; 0 is no match."""
    words = query.split()
    if not words:
        return 0.0
    return max((_score_phrase(query, words, p) for p in _phrases(procedure)), default=0.0)


def search(procedures: Dict[str, Procedure], q: str | None) -> List[Procedure]:
    """Best match first; without a query, every procedure in id order."""
    query = fold(q or "")
    if not query:
        return [procedures[k] for k in sorted(procedures)]
    scored: List[Tuple[float, str]] = []
    for pid, procedure in procedures.items():
        value = score(procedure, query)
        if value > 0:
            scored.append((-value, pid))
    return [procedures[pid] for _, pid in sorted(scored)]


# --- resolution ------------------------------------------------------------------------------

_PROVINCE_PREFIXES = ("thanh pho ", "tp ", "tinh ")


def province_key(name: str) -> str:
    """Folded name without a leading "Thành phố"/"TP."/"Tỉnh": 'TP. Hà Nội' -> 'ha noi'."""
    folded = fold(name)
    for prefix in _PROVINCE_PREFIXES:
        if folded.startswith(prefix):
            return folded[len(prefix) :]
    return folded


def resolve(
    procedure: Procedure,
    lang: str,
    variant_id: str | None,
    province: str | Sequence[str] | None,
) -> Dict[str, Any]:
    """The detail a citizen sees: variant fields override the procedure's. KeyError: variant.

    `province` is a name, or names to try in order (the first with a note wins).
    """
    variant = procedure.variant(variant_id)

    def pick(field: str) -> Any:
        value = getattr(variant, field) if variant is not None else None
        return value if value is not None else getattr(procedure, field)

    online: Online = pick("online")
    notes: Dict[str, Text] | None = pick("province_notes")
    province_note: str | None = None
    wanted = [province] if isinstance(province, str) else list(province or [])
    by_key: Dict[str, Text] = {}
    for key, note in (notes or {}).items():
        by_key.setdefault(province_key(key), note)
    for name in wanted:
        match = by_key.get(province_key(name)) if name else None
        if match is not None:
            province_note = match.get(lang)
            break
    return {
        "id": procedure.id,
        "name": procedure.name.get(lang),
        "summary": procedure.summary.get(lang),
        "variant": (
            {"id": variant.id, "name": variant.name.get(lang)} if variant is not None else None
        ),
        "variants": [{"id": v.id, "name": v.name.get(lang)} for v in procedure.variants],
        "documents": pick("documents").get(lang),
        "fee": pick("fee").get(lang),
        "processing_time": pick("processing_time").get(lang),
        "where_to_submit": pick("where_to_submit").get(lang),
        "online": {
            "available": online.available,
            "channels": list(online.channels),
            "url": online.url,
            "note": online.note.get(lang) if online.note is not None else None,
        },
        "who_can_file": pick("who_can_file").get(lang),
        "common_return_reasons": pick("common_return_reasons").get(lang),
        "province_note": province_note,
        "source": procedure.source,
        "reviewed_on": procedure.reviewed_on.isoformat(),
        "sample_data": procedure.sample_data,
    }
