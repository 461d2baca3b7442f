"""Benchmark both pipelines on a dataset in JointBERT layout (PhoATIS, ATIS, SNIPS...):
`python -m nlu.evaluation.jointbert <folder>` (or `make bench-nlu DATA=<folder>`).

A public benchmark tells how the pipeline family compares with published joint models, which
our own held-out set cannot. Scores are computed as the papers do: intent accuracy, conlleval
span F1 on slots and sentence accuracy (intent and every slot tag right).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nlu.evaluation import metrics
from nlu.evaluation.bio import Sample, entities_to_bio, read_split, to_rasa_examples
from nlu.evaluation.conlleval import chunk_score
from nlu.evaluation.rasa_runner import (
    DEFAULT_CONFIG,
    FALLBACK_INTENT,
    PROJECT_CONFIG,
    REPO,
    Parsed,
    epochs_summary,
    latency_summary,
    load_config,
    parse_all,
    prepare_config,
    shown,
    silence_rasa,
    train_nlu,
    write_config,
)

# Our domain's parts mean nothing on ATIS-like data: dossier-code/ID patterns, the empty-input
# guard, and the normaliser and filter of procedure/province values (the normaliser would tag
# every city name as a province, over the benchmark's own slots).
DROPPED_COMPONENTS = (
    "nlu.components.extractors.PatternEntityExtractor",
    "nlu.components.normaliser.EntityNormaliser",
    "nlu.components.extractors.EntityValueFilter",
    "nlu.components.guard.InputGuard",
)
# share of training tokens joined by "_" above which the data counts as already word-segmented
SEGMENTED_SHARE = 0.05
PUBLISHED_LABEL = "published*"
# PhoATIS test set, JointIDSF + PhoBERT, word level (Dao, Truong & Nguyen, Interspeech 2021).
PUBLISHED = {"intent accuracy": 97.62, "slot F1 (conlleval)": 94.98, "sentence accuracy": 86.25}
PUBLISHED_NOTE = (
    "* published PhoATIS figures for JointIDSF + PhoBERT (word level, Dao et al. 2021, on a GPU); "
    "quoted from the paper, and only comparable when DATA is PhoATIS word level."
)


def write_training_data(samples: Sequence[Sample], path: Path) -> Path:
    """Rasa NLU YAML for ``samples``, written by Rasa's own writer so it reads back exactly."""
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    messages = [Message(data=example) for example in to_rasa_examples(samples)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TrainingData(training_examples=messages).nlu_as_yaml(), encoding="utf-8")
    return path


def segmented_share(samples: Sequence[Sample]) -> float:
    """Share of tokens that hold "_" (word-level PhoATIS writes "đà_nẵng", "hàng_không")."""
    tokens = [token for sample in samples for token in sample.tokens]
    return sum("_" in token for token in tokens) / len(tokens) if tokens else 0.0


def set_option(config: dict[str, Any], component_name: str, key: str, value: Any) -> None:
    """Set ``key`` on every pipeline component of ``config`` named ``component_name``."""
    for component in config["pipeline"]:
        if component["name"] == component_name:
            component[key] = value


def predicted_tags(sample: Sample, parsed: Parsed) -> list[str]:
    entities = [
        e
        for e in parsed.entities
        if e.get("entity") not in metrics.IGNORED_ENTITIES and "start" in e and "end" in e
    ]
    return entities_to_bio(sample.tokens, entities)


def score(test: Sequence[Sample], parsed: Sequence[Parsed]) -> dict[str, float]:
    """Intent accuracy, conlleval slot F1 and sentence accuracy, all in percent.

    The intent is the classifier's best intent other than ``nlu_fallback``: published joint
    models always answer, and the fallback threshold is a dialogue decision, reported apart.
    """
    gold_intents = [s.intent for s in test]
    intents = [p.classifier_intent for p in parsed]
    tags = [predicted_tags(s, p) for s, p in zip(test, parsed, strict=True)]
    slots = chunk_score([list(s.tags) for s in test], tags)
    sentence = [
        g == i and list(s.tags) == t
        for g, i, s, t in zip(gold_intents, intents, test, tags, strict=True)
    ]
    return {
        "intent accuracy": metrics.accuracy(gold_intents, intents),
        "slot F1 (conlleval)": slots.f1,
        "slot precision": slots.precision,
        "slot recall": slots.recall,
        "sentence accuracy": 100.0 * sum(sentence) / len(sentence) if sentence else 0.0,
        "nlu_fallback rate %": (
            100.0 * sum(p.intent == FALLBACK_INTENT for p in parsed) / len(parsed)
            if parsed
            else 0.0
        ),
    }


def build_rows(
    scores: dict[str, dict[str, float]],
    train_seconds: dict[str, float],
    runs: dict[str, list[Parsed]],
) -> tuple[list[str], list[tuple[str, list[metrics.Cell]]]]:
    """Columns (models, then the published reference) and rows of the benchmark table."""
    models = list(scores)
    columns = [*models, PUBLISHED_LABEL]
    rows: list[tuple[str, list[metrics.Cell]]] = []
    for name in (
        "intent accuracy",
        "slot F1 (conlleval)",
        "slot precision",
        "slot recall",
        "sentence accuracy",
        "nlu_fallback rate %",
    ):
        values: list[metrics.Cell] = [scores[m][name] for m in models]
        published = PUBLISHED.get(name)
        rows.append((name, [*values, None if published is None else f"{published:.2f}"]))
    seconds: list[metrics.Cell] = [train_seconds.get(m) for m in models]
    rows.append(("training time (s)", [*seconds, None]))
    latency: list[metrics.Cell] = [latency_summary(runs[m]) for m in models]
    rows.append(("parse latency mean / p95 (ms)", [*latency, None]))
    return columns, rows


def write_predictions(path: Path, test: Sequence[Sample], parsed: Sequence[Parsed]) -> None:
    """Gold and predicted intent and tags per test sentence, to look at errors by hand."""
    lines = []
    for sample, p in zip(test, parsed, strict=True):
        tags = predicted_tags(sample, p)
        mark = (
            "OK " if sample.intent == p.classifier_intent and list(sample.tags) == tags else "ERR"
        )
        lines.append(f"{mark} {sample.text}")
        lines.append(f"    intent  {sample.intent} -> {p.classifier_intent}")
        lines.append(f"    gold    {' '.join(sample.tags)}")
        lines.append(f"    pred    {' '.join(tags)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m nlu.evaluation.jointbert", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("data", type=Path, help="folder with train/, dev/, test/")
    parser.add_argument("--use-dev", action="store_true", help="train on train + dev")
    parser.add_argument(
        "--epochs-scale",
        type=float,
        default=1.0,
        help="multiply DIET/ResponseSelector epochs of both configs (e.g. 0.1 for a quick run)",
    )
    parser.add_argument("--only", choices=("project", "default", "both"), default="both")
    parser.add_argument("--out", type=Path, help="default: var/bench/<data folder name>")
    parser.add_argument(
        "--no-bilou",
        action="store_true",
        help="plain BIO instead of BILOU entity tags in both pipelines' DIETClassifier (ATIS has "
        "~80 slot types: BILOU's 4x tag set makes DIET's CRF several times slower per epoch)",
    )
    parser.add_argument(
        "--project-config",
        type=Path,
        default=PROJECT_CONFIG,
        help="pipeline to compare with the default one (e.g. a variant of config.yml)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    silence_rasa()
    started = time.perf_counter()
    data: Path = args.data
    out: Path = args.out or REPO / "var" / "bench" / data.resolve().name
    out.mkdir(parents=True, exist_ok=True)

    train = read_split(data / "train")
    if args.use_dev:
        train += read_split(data / "dev")
    test = read_split(data / "test")
    training_file = write_training_data(train, out / "train_data" / "nlu.yml")
    print(
        f"[bench] {data}: {len(train)} training sentences"
        f"{' (train + dev)' if args.use_dev else ''}, {len(test)} test sentences",
        flush=True,
    )

    models = ["project", "default"] if args.only == "both" else [args.only]
    configs: dict[str, dict[str, Any]] = {}
    share = segmented_share(train)
    for name in models:
        source = args.project_config if name == "project" else DEFAULT_CONFIG
        drop = DROPPED_COMPONENTS if name == "project" else ()
        configs[name], dropped = prepare_config(load_config(source), args.epochs_scale, drop)
        if args.no_bilou:
            set_option(configs[name], "DIETClassifier", "BILOU_flag", False)
        if name == "project" and share > SEGMENTED_SHARE:
            set_option(
                configs[name],
                "nlu.components.tokenizer.VietnameseTokenizer",
                "segmenter",
                "whitespace",
            )
            print(
                f"[bench] the data is word-segmented ({100 * share:.0f}% of "
                "tokens joined by _): the project tokenizer keeps its words (segmenter: "
                "whitespace), as re-segmenting would cut across the gold slot boundaries",
                flush=True,
            )
        if dropped:
            print(
                f"[bench] project pipeline: dropped {', '.join(dropped)} "
                "(the public-service domain's patterns, value normaliser and guard do not apply)",
                flush=True,
            )

    train_seconds: dict[str, float] = {}
    runs: dict[str, list[Parsed]] = {}
    for name in models:
        config_path = write_config(configs[name], out / f"config_{name}.yml")
        print(
            f"[bench] training {name} pipeline ({epochs_summary(configs[name])}); "
            f"log: {shown(out / f'train_{name}.log')}",
            flush=True,
        )
        model, train_seconds[name] = train_nlu(config_path, training_file.parent, out, name)
        load = os.getloadavg()[0]  # other people's jobs inflate the time: say how busy it was
        print(
            f"[bench]   done in {train_seconds[name]:.0f} s (load average {load:.1f})", flush=True
        )
        runs[name] = parse_all(model, [s.text for s in test])
        write_predictions(out / f"predictions_{name}.txt", test, runs[name])

    scores = {name: score(test, runs[name]) for name in models}
    columns, rows = build_rows(scores, train_seconds, runs)
    table = metrics.format_table(columns, rows)
    print()
    print(table)
    print(PUBLISHED_NOTE)
    print(
        "  intent = the classifier's best intent other than nlu_fallback; slot F1 counts a "
        "chunk as correct only when its type and both boundaries match (conlleval)."
    )
    print()
    report = out / "report.md"
    tags = "BIO (--no-bilou)" if args.no_bilou else "BILOU"
    report.write_text(
        f"# JointBERT-layout benchmark: {data}\n\n"
        f"{len(train)} training sentences, {len(test)} test sentences; epochs scale "
        f"{args.epochs_scale:g}; DIET entity tags: {tags}.\n\n"
        + metrics.markdown_table(columns, rows)
        + f"\n\n{PUBLISHED_NOTE}\n",
        encoding="utf-8",
    )
    print(f"[bench] report: {shown(report)}; predictions: {shown(out)}/predictions_*.txt")
    print(f"[bench] wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
