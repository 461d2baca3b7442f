"""Span-level slot F1 exactly as conlleval.pl counts it.

The chunk boundaries follow conlleval's startOfChunk/endOfChunk rules (IOB1/IOB2/IOBES and the
bracket tags), so an I- tag after O or after a different type starts a chunk, as in the perl
script. Published slot F1 figures (ATIS, PhoATIS) are computed this way; a looser count would make
our numbers incomparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Chunk = tuple[str, int, int]  # (type, first token, last token), inclusive


def split_tag(tag: str) -> tuple[str, str]:
    """('B', 'fromloc.city_name') for 'B-fromloc.city_name'; ('O', '') for 'O'."""
    if "-" in tag:
        prefix, _, kind = tag.partition("-")
        return prefix, kind
    return tag, ""


def end_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    """conlleval's endOfChunk: does a chunk end between the previous token and this one?"""
    return (
        (prev_tag in ("B", "I") and tag in ("B", "O"))
        or (prev_tag == "E" and tag in ("E", "I", "O"))
        or (prev_tag not in ("O", ".") and prev_type != kind)
        or prev_tag in ("[", "]")  # conlleval: these chunks have length 1
    )


def start_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    """conlleval's startOfChunk: does a chunk start at this token? (I- after O does.)"""
    return (
        (prev_tag in ("B", "I", "O") and tag == "B")
        or (prev_tag in ("O", "E") and tag in ("I", "E"))
        or (tag not in ("O", ".") and prev_type != kind)
        or tag in ("[", "]")
    )


def chunks(tags: Sequence[str]) -> list[Chunk]:
    """The chunks of one sentence's tag sequence, in order."""
    found: list[Chunk] = []
    prev_tag, prev_type = "O", ""
    start: int | None = None
    for i, raw in enumerate([*tags, "O"]):  # the trailing O closes a chunk at sentence end
        tag, kind = split_tag(raw)
        starts = i < len(tags) and start_of_chunk(prev_tag, tag, prev_type, kind)
        # conlleval counts every start as a chunk, so a start without an end closes the open one
        if start is not None and (starts or end_of_chunk(prev_tag, tag, prev_type, kind)):
            found.append((prev_type, start, i - 1))
            start = None
        if starts:
            start = i
        prev_tag, prev_type = tag, kind
    return found


@dataclass(frozen=True)
class ChunkScore:
    """Counts over a corpus; precision/recall/F1 in percent like conlleval prints them."""

    correct: int
    predicted: int
    gold: int

    @property
    def precision(self) -> float:
        return 100.0 * self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return 100.0 * self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def chunk_score(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> ChunkScore:
    """Corpus-level chunk counts: a chunk is correct only if type and both boundaries match."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    correct = n_pred = n_gold = 0
    for g, p in zip(gold, predicted, strict=True):
        if len(g) != len(p):
            raise ValueError(f"tag sequences differ in length: {list(g)} vs {list(p)}")
        gold_chunks, pred_chunks = set(chunks(g)), set(chunks(p))
        correct += len(gold_chunks & pred_chunks)
        n_pred += len(pred_chunks)
        n_gold += len(gold_chunks)
    return ChunkScore(correct, n_pred, n_gold)
