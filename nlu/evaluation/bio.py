"""JointBERT layout (seq.in / seq.out / label) <-> Rasa NLU examples.

Entities are the conlleval chunks of the BIO tags, with character offsets over the
space-joined tokens; predicted entities go back to one tag per token by character overlap, so
a Rasa tokenizer that splits tokens differently (punctuation, "_" compounds) still lines up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlu.evaluation.conlleval import chunks

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Sample:
    """One sentence: tokens, one BIO tag per token, and the intent label string."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    intent: str

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def read_split(folder: Path) -> list[Sample]:
    """Read ``seq.in``, ``seq.out`` and ``label`` of one split, checking they line up.

    A multi-intent label ("atis_airfare#atis_flight") stays one label string, as in the
    published PhoATIS/ATIS results.
    """
    lines = {}
    for name in ("seq.in", "seq.out", "label"):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (JointBERT layout: seq.in, seq.out, label)")
        lines[name] = path.read_text(encoding="utf-8").splitlines()
    # a final blank line is common; blank lines in the middle would shift everything
    for name, rows in lines.items():
        while rows and not rows[-1].strip():
            rows.pop()
        if any(not row.strip() for row in rows):
            raise ValueError(f"{folder / name}: blank line inside the file")
    n = {len(rows) for rows in lines.values()}
    if len(n) != 1:
        counts = ", ".join(f"{k}={len(v)}" for k, v in lines.items())
        raise ValueError(f"{folder}: files have different line counts ({counts})")
    samples = []
    for i, (words, tags, label) in enumerate(
        zip(lines["seq.in"], lines["seq.out"], lines["label"], strict=True), start=1
    ):
        tokens, tag_list = tuple(words.split()), tuple(tags.split())
        if len(tokens) != len(tag_list):
            raise ValueError(
                f"{folder} line {i}: {len(tokens)} tokens but {len(tag_list)} tags: {words!r}"
            )
        samples.append(Sample(tokens, tag_list, label.strip()))
    return samples


def token_offsets(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """Character (start, end) of each token in ``" ".join(tokens)``."""
    offsets, pos = [], 0
    for token in tokens:
        offsets.append((pos, pos + len(token)))
        pos += len(token) + 1
    return offsets


def bio_to_entities(tokens: Sequence[str], tags: Sequence[str]) -> list[dict[str, Any]]:
    """Rasa entity dicts (start, end, value, entity) for the BIO chunks of one sentence."""
    text = " ".join(tokens)
    offsets = token_offsets(tokens)
    entities = []
    for kind, first, last in chunks(tags):
        start, end = offsets[first][0], offsets[last][1]
        entities.append({"start": start, "end": end, "value": text[start:end], "entity": kind})
    return entities


def entities_to_bio(tokens: Sequence[str], entities: Sequence[dict[str, Any]]) -> list[str]:
    """One BIO tag per token: a token is inside an entity when their characters overlap.

    Entities are taken by start offset; where two overlap, the earlier one keeps the token.
    """
    tags = ["O"] * len(tokens)
    offsets = token_offsets(tokens)
    for entity in sorted(entities, key=lambda e: (int(e["start"]), int(e["end"]))):
        start, end, kind = int(entity["start"]), int(entity["end"]), str(entity["entity"])
        inside = [
            i
            for i, (t_start, t_end) in enumerate(offsets)
            if t_start < end and start < t_end and tags[i] == "O"
        ]
        for n, i in enumerate(inside):
            tags[i] = f"{'B' if n == 0 else 'I'}-{kind}"
    return tags


def to_rasa_examples(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Plain dicts (text, intent, entities) in Rasa's message format."""
    return [
        {"text": s.text, "intent": s.intent, "entities": bio_to_entities(s.tokens, s.tags)}
        for s in samples
    ]
