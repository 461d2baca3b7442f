"""Scores and the side-by-side table, kept free of Rasa so they can be unit-tested quickly."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Entities whose written form varies only by separators the contract allows: "0010 9000 1234"
# and "001090001234" are the same ID number. Dots stay in dossier codes (they are structural).
_SEPARATORS: dict[str, str] = {
    "dossier_code": r"\s+",
    "id_number": r"[\s.\-]+",
    "phone_number": r"[\s.\-]+",
    "otp": r"[\s.\-]+",
}
IGNORED_ENTITIES = frozenset({"language"})

Cell = float | str | None


def normalise_value(entity: str, value: object) -> str:
    """Compare entity values as a person would: same Unicode form, case and separators."""
    text = unicodedata.normalize("NFC", str(value)).strip().casefold()
    pattern = _SEPARATORS.get(entity)
    return re.sub(pattern, "", text) if pattern else text


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Percentage of exact matches; 0 for an empty set rather than a division error."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    if not gold:
        return 0.0
    return 100.0 * sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def f1(tp: int, fp: int, fn: int) -> float | None:
    """F1 in percent; None when there is nothing to score (no gold and no prediction)."""
    if tp + fp + fn == 0:
        return None
    return 100.0 * 2 * tp / (2 * tp + fp + fn)


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Mean F1 over the intents present in the gold labels.

    Labels that only appear as predictions (e.g. ``nlu_fallback``) are not averaged in: they
    already cost recall on the gold intent, and counting them as classes would make the score
    depend on how many different wrong labels a model happens to produce.
    """
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    scores = []
    for label in sorted(set(gold)):
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        scores.append(f1(tp, fp, fn) or 0.0)
    return sum(scores) / len(scores) if scores else 0.0


EntityValue = tuple[str, str]  # (entity type, raw value)


@dataclass
class EntityCounts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def f1(self) -> float | None:
        return f1(self.tp, self.fp, self.fn)


def entity_counts(
    gold: Sequence[Iterable[EntityValue]], predicted: Sequence[Iterable[EntityValue]]
) -> dict[str, EntityCounts]:
    """Value-level counts per entity type over a set of utterances.

    Within an utterance a predicted entity is correct when a not yet matched gold entity has the
    same type and normalised value; offsets do not matter (the bot only uses the value).
    Entities of an ignored type (``language``) are skipped on both sides.
    """
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    counts: dict[str, EntityCounts] = {}
    for gold_entities, pred_entities in zip(gold, predicted, strict=True):
        g = Counter(
            (kind, normalise_value(kind, value))
            for kind, value in gold_entities
            if kind not in IGNORED_ENTITIES
        )
        p = Counter(
            (kind, normalise_value(kind, value))
            for kind, value in pred_entities
            if kind not in IGNORED_ENTITIES
        )
        for key in g.keys() | p.keys():
            c = counts.setdefault(key[0], EntityCounts())
            matched = min(g[key], p[key])
            c.tp += matched
            c.fp += p[key] - matched
            c.fn += g[key] - matched
    return counts


def entity_f1(
    gold: Sequence[Iterable[EntityValue]], predicted: Sequence[Iterable[EntityValue]]
) -> dict[str, float | None]:
    """Value-level F1 per entity type (see ``entity_counts``)."""
    return {kind: c.f1 for kind, c in sorted(entity_counts(gold, predicted).items())}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation (numpy's default), without numpy."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def format_cell(value: Cell) -> str:
    """One decimal for numbers, '-' for missing, strings as given."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float | int):
        return f"{value:.1f}"
    return value


def format_table(columns: Sequence[str], rows: Sequence[tuple[str, Sequence[Cell]]]) -> str:
    """The plain-text side-by-side table printed to stdout (metric name, one column per model)."""
    cells = [[format_cell(v) for v in values] for _, values in rows]
    for name, values in rows:
        if len(values) != len(columns):
            raise ValueError(f"row {name!r} has {len(values)} values for {len(columns)} columns")
    name_width = max([len("metric"), *(len(name) for name, _ in rows)]) + 2
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(name: str, values: Sequence[str]) -> str:
        padded = (v.rjust(w) for v, w in zip(values, widths, strict=True))
        return name.ljust(name_width) + "  ".join(padded)

    lines = [line("metric", columns)]
    lines += [line(name, row) for (name, _), row in zip(rows, cells, strict=True)]
    return "\n".join(lines)


def markdown_table(columns: Sequence[str], rows: Sequence[tuple[str, Sequence[Cell]]]) -> str:
    """The same table in Markdown, numbers right-aligned."""
    out = [
        "| metric | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, values in rows:
        out.append(f"| {name} | " + " | ".join(format_cell(v) for v in values) + " |")
    return "\n".join(out)


def confusions(
    gold: Sequence[str], predicted: Sequence[str], top: int = 15
) -> list[tuple[str, str, int]]:
    """The most frequent (gold, predicted) intent errors, worst first."""
    pairs = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    return [(g, p, n) for (g, p), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))][:top]


def parse_table(text: str) -> dict[str, list[str]]:
    """Read back a table printed by ``format_table``: metric name -> cell strings.

    Used by the tests and by anyone scraping the harness output; metric names may contain
    spaces, so cells are taken from the right.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    header = next(i for i, line in enumerate(lines) if line.startswith("metric"))
    n = len(re.split(r"\s{2,}", lines[header].strip())) - 1
    result: dict[str, list[str]] = {}
    for line in lines[header + 1 :]:
        parts = re.split(r"\s{2,}", line.strip())
        if len(parts) < 2:
            break
        name, values = parts[0], parts[1:]
        if len(values) != n:
            break
        result[name] = values
    return result
