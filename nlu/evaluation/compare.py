"""Train the project pipeline and Rasa's default pipeline on the same data and compare them on
the held-out set and the independent set: `python -m nlu.evaluation.compare` (or `make eval`).

Both sets were written apart from the training data, so these are the numbers that tell
whether a pipeline change helps citizens rather than the training set. The independent set
(tests/nlu/independent/, one file per persona) also marks each block with the kind of message it
is (`metadata: {kind: ...}`), and gets a row per kind.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlu.evaluation import metrics
from nlu.evaluation.rasa_runner import (
    DEFAULT_CONFIG,
    EPOCH_COMPONENTS,
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

TRAINING_DATA = (REPO / "nlu" / "vi", REPO / "nlu" / "en", REPO / "nlu" / "lookups")
HELDOUT = REPO / "tests" / "nlu" / "heldout"
INDEPENDENT = REPO / "tests" / "nlu" / "independent"
OUT = REPO / "var" / "eval"
SUBSET_ORDER = ("vi", "vi_nodiacritics", "en")
# contract order first; any other type found in the data follows alphabetically
ENTITY_ORDER = (
    "procedure", "dossier_code", "id_number", "phone_number", "otp", "province", "variant",
)  # fmt: skip
PER_SUBSET_ENTITIES = ("procedure", "dossier_code", "id_number")
MAX_EXAMPLES = 40


@dataclass(frozen=True)
class Example:
    """A held-out utterance with its gold intent and (type, value) entities."""

    subset: str
    text: str
    intent: str
    entities: tuple[tuple[str, str], ...]
    kind: str = ""  # the independent set's `metadata: {kind: ...}` of the example's block


def load_heldout(folder: Path) -> list[Example]:
    """Every utterance of ``folder/*.yml``, one file at a time.

    Rasa's ``load_data(folder)`` stops at the README, hence the loop. The gold value is the
    annotation's value, which Rasa already sets to the span text when none is given.
    """
    from rasa.shared.nlu.training_data.loading import load_data

    files = sorted(folder.glob("*.yml"), key=lambda p: _subset_key(p.stem))
    if not files:
        raise FileNotFoundError(f"no *.yml files in {folder}")
    examples = []
    for path in files:
        for message in load_data(str(path)).intent_examples:
            block = (message.get("metadata") or {}).get("intent") or {}
            examples.append(
                Example(
                    subset=path.stem,
                    text=str(message.get("text")),
                    intent=str(message.get("intent")),
                    entities=tuple(
                        (str(e["entity"]), str(e.get("value", "")))
                        for e in message.get("entities") or []
                    ),
                    kind=str(block.get("kind") or "") if isinstance(block, dict) else "",
                )
            )
    return examples


def _subset_key(name: str) -> tuple[int, str]:
    return (SUBSET_ORDER.index(name) if name in SUBSET_ORDER else len(SUBSET_ORDER), name)


def predicted_values(parsed: Parsed) -> list[tuple[str, str]]:
    return [(str(e.get("entity")), str(e.get("value", ""))) for e in parsed.entities]


def entity_types(examples: Sequence[Example], runs: dict[str, list[Parsed]]) -> list[str]:
    found = {kind for ex in examples for kind, _ in ex.entities}
    for parsed in runs.values():
        found |= {kind for p in parsed for kind, _ in predicted_values(p)}
    found -= metrics.IGNORED_ENTITIES
    return [k for k in ENTITY_ORDER if k in found] + sorted(found - set(ENTITY_ORDER))


def build_rows(
    examples: Sequence[Example],
    runs: dict[str, list[Parsed]],
    train_seconds: dict[str, float],
) -> list[tuple[str, list[metrics.Cell]]]:
    """The comparison table: one row per metric, one value per model (in ``runs`` order)."""
    models = list(runs)
    subsets = sorted({ex.subset for ex in examples}, key=_subset_key)
    rows: list[tuple[str, list[metrics.Cell]]] = []

    def pick(subset: str | None) -> list[int]:
        return [i for i, ex in enumerate(examples) if subset is None or ex.subset == subset]

    for subset in [None, *subsets]:
        idx = pick(subset)
        label = subset or "all"
        gold = [examples[i].intent for i in idx]
        acc, mf1 = [], []
        for m in models:
            predicted = [runs[m][i].intent for i in idx]
            acc.append(metrics.accuracy(gold, predicted))
            mf1.append(metrics.macro_f1(gold, predicted))
        rows.append((f"intent accuracy ({label})", list(acc)))
        rows.append((f"intent macro-F1 ({label})", list(mf1)))

    for kind in sorted({ex.kind for ex in examples if ex.kind}):
        idx = [i for i, ex in enumerate(examples) if ex.kind == kind]
        gold = [examples[i].intent for i in idx]
        rows.append(
            (
                f"intent accuracy (kind {kind}, {len(idx)})",
                [metrics.accuracy(gold, [runs[m][i].intent for i in idx]) for m in models],
            )
        )

    gold_all = [ex.intent for ex in examples]
    rows.append(
        (
            "nlu_fallback rate % (all)",
            [
                100.0 * sum(p.intent == FALLBACK_INTENT for p in runs[m]) / len(examples)
                for m in models
            ],
        )
    )
    rows.append(
        (
            "intent acc. ignoring fallback (all)",
            [metrics.accuracy(gold_all, [p.classifier_intent for p in runs[m]]) for m in models],
        )
    )

    kinds = entity_types(examples, runs)
    for subset in [None, *subsets]:
        idx = pick(subset)
        gold_entities = [examples[i].entities for i in idx]
        scores = {
            m: metrics.entity_f1(gold_entities, [predicted_values(runs[m][i]) for i in idx])
            for m in models
        }
        for kind in kinds if subset is None else [k for k in PER_SUBSET_ENTITIES if k in kinds]:
            rows.append(
                (f"entity F1 {kind} ({subset or 'all'})", [scores[m].get(kind) for m in models])
            )

    rows.append(("training time (s)", [train_seconds.get(m) for m in models]))
    rows.append(("parse latency mean / p95 (ms)", [latency_summary(runs[m]) for m in models]))
    return rows


def set_seed(config: dict[str, Any], seed: int) -> None:
    """The same ``random_seed`` on every trainable classifier of ``config``."""
    for component in config["pipeline"]:
        if component["name"] in EPOCH_COMPONENTS:
            component["random_seed"] = seed


def combine_rows(
    per_seed: Sequence[Sequence[tuple[str, Sequence[metrics.Cell]]]],
) -> list[tuple[str, list[metrics.Cell]]]:
    """One table from one table per seed: numbers as "mean ± sample standard deviation
    [lowest-highest]", text from the first seed (latency), missing where any seed is missing."""
    combined: list[tuple[str, list[metrics.Cell]]] = []
    for i, (name, first) in enumerate(per_seed[0]):
        cells: list[metrics.Cell] = []
        for j, value in enumerate(first):
            values = [table[i][1][j] for table in per_seed]
            numbers = [float(v) for v in values if isinstance(v, float | int)]
            if len(numbers) != len(values):
                cells.append(value if not numbers else None)
                continue
            mean = sum(numbers) / len(numbers)
            sd = statistics.stdev(numbers) if len(numbers) > 1 else 0.0
            cells.append(f"{mean:.1f} ± {sd:.1f} [{min(numbers):.1f}-{max(numbers):.1f}]")
        combined.append((name, cells))
    return combined


def entity_errors(example: Example, parsed: Parsed) -> tuple[list[str], list[str]]:
    """Gold entities the model missed and entities it invented, as 'type=value' strings."""
    norm = metrics.normalise_value
    gold = [(k, norm(k, v)) for k, v in example.entities]
    pred = [
        (k, norm(k, v)) for k, v in predicted_values(parsed) if k not in metrics.IGNORED_ENTITIES
    ]
    missed, spurious = list(gold), []
    for item in pred:
        if item in missed:
            missed.remove(item)
        else:
            spurious.append(item)
    return [f"{k}={v}" for k, v in missed], [f"{k}={v}" for k, v in spurious]


def _where(example: Example) -> str:
    return f"{example.subset} / {example.kind}" if example.kind else example.subset


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(
    path: Path,
    examples: Sequence[Example],
    runs: dict[str, list[Parsed]],
    rows: Sequence[tuple[str, Sequence[metrics.Cell]]],
    notes: Sequence[str],
    title: str = "the held-out set",
) -> None:
    """Markdown report: the table, then per model the worst confusions and the errors."""
    counts = {s: sum(ex.subset == s for ex in examples) for s in {ex.subset for ex in examples}}
    lines = [
        f"# NLU evaluation on {title}",
        "",
        f"Generated {_dt.datetime.now().isoformat(timespec='seconds')} by "
        "`python -m nlu.evaluation.compare`.",
        "Utterances: "
        + ", ".join(f"{s} {counts[s]}" for s in sorted(counts, key=_subset_key))
        + f" (total {len(examples)}).",
        "",
        *[f"- {n}" for n in notes],
        "",
        metrics.markdown_table(list(runs), rows),
        "",
        "Intent accuracy and macro-F1 use the intent the pipeline returned, so `nlu_fallback` "
        "counts as an error; *ignoring fallback* takes the classifier's best other intent. "
        "Macro-F1 averages over the gold intents. Entity F1 is value-level: a predicted entity "
        "is correct when its type and normalised value (NFC, stripped, case-folded; spaces, dots "
        "and dashes removed for id_number, phone_number and otp, spaces for dossier_code) match "
        "a gold entity of the same utterance; `-` means no gold and no prediction.",
    ]
    for model, parsed in runs.items():
        gold = [ex.intent for ex in examples]
        predicted = [p.intent for p in parsed]
        lines += ["", f"## {model}: worst intent confusions", ""]
        worst = metrics.confusions(gold, predicted, top=15)
        if worst:
            lines += ["| gold | predicted | count |", "|---|---|---:|"]
            lines += [f"| {g} | {p} | {n} |" for g, p, n in worst]
        else:
            lines.append("No intent errors.")
        wrong = [(ex, p) for ex, p in zip(examples, parsed, strict=True) if ex.intent != p.intent]
        lines += [
            "",
            f"## {model}: misclassified examples ({min(len(wrong), MAX_EXAMPLES)} of {len(wrong)})",
            "",
            "| subset | text | gold | predicted | confidence |",
            "|---|---|---|---|---:|",
        ]
        lines += [
            f"| {_where(ex)} | {_md(ex.text)} | {ex.intent} | {p.intent} | {p.confidence:.2f} |"
            for ex, p in wrong[:MAX_EXAMPLES]
        ]
        errors = []
        for ex, p in zip(examples, parsed, strict=True):
            missed, spurious = entity_errors(ex, p)
            if missed or spurious:
                errors.append((ex, missed, spurious))
        lines += [
            "",
            f"## {model}: entity errors ({min(len(errors), MAX_EXAMPLES)} of {len(errors)} "
            "utterances)",
            "",
            "| subset | text | missed | spurious |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {_where(ex)} | {_md(ex.text)} | {_md(', '.join(m))} | {_md(', '.join(s))} |"
            for ex, m, s in errors[:MAX_EXAMPLES]
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot_confusion(path: Path, gold: Sequence[str], predicted: Sequence[str], title: str) -> None:
    """Intent confusion matrix, rows = gold; colour is the row share so small intents show."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted(set(gold)) + sorted(set(predicted) - set(gold))
    index = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        counts[index[g]][index[p]] += 1
    shares = [[c / max(1, sum(row)) for c in row] for row in counts]
    size = max(6.0, 0.42 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("gold intent")
    ax.set_title(title)
    for i, row in enumerate(counts):
        for j, c in enumerate(row):
            if c:
                colour = "white" if shares[i][j] > 0.6 else ("black" if i == j else "firebrick")
                ax.text(j, i, str(c), ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of gold intent")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def copy_training_data(paths: Sequence[Path], target: Path) -> Path:
    """One folder holding every training file: `rasa train nlu --nlu` takes a single path."""
    if target.exists():
        shutil.rmtree(target)
    for path in paths:
        if not path.is_dir():
            raise FileNotFoundError(f"training data folder {path} is missing")
        shutil.copytree(path, target / path.name)
    return target


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m nlu.evaluation.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--epochs-scale",
        type=float,
        default=1.0,
        help="multiply DIET/ResponseSelector epochs of both configs (e.g. 0.1 for a quick run)",
    )
    parser.add_argument("--only", choices=("project", "default", "both"), default="both")
    parser.add_argument("--heldout", type=Path, default=HELDOUT, help="folder of *.yml files")
    parser.add_argument(
        "--independent",
        type=Path,
        default=INDEPENDENT,
        help="a second set scored with the same models, with a row per kind ('none' to skip)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="models, logs and report")
    parser.add_argument(
        "--project-config",
        type=Path,
        default=PROJECT_CONFIG,
        help="pipeline to compare with the default one (e.g. a variant of config.yml)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="train each pipeline once per seed (DIET/ResponseSelector random_seed) and print the "
        "mean with the lowest and highest value: one run differs from the next by a few utterances",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="score the models an earlier run left in --out instead of training (e.g. on --heldout "
        "tests/nlu/dev); training times are then not shown",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    silence_rasa()
    started = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    models = ["project", "default"] if args.only == "both" else [args.only]
    sources = {"project": args.project_config, "default": DEFAULT_CONFIG}

    sets: dict[str, list[Example]] = {"held-out": load_heldout(args.heldout)}
    if str(args.independent) != "none" and any(Path(args.independent).glob("*.yml")):
        sets["independent"] = load_heldout(args.independent)
    for set_name, folder in (("held-out", args.heldout), ("independent", args.independent)):
        if set_name in sets:
            print(
                f"[eval] {set_name} set {shown(folder)}: {len(sets[set_name])} utterances",
                flush=True,
            )
    examples = [ex for chosen in sets.values() for ex in chosen]
    data = None if args.reuse else copy_training_data(TRAINING_DATA, out / "train_data")

    notes = [
        f"Training data: {' '.join(shown(p) for p in TRAINING_DATA)} (NLU only).",
        f"Epochs scale: {args.epochs_scale:g}.",
    ]
    if args.reuse and args.seeds:
        raise ValueError("--reuse scores saved models; it cannot train other seeds")
    seeds: list[int | None] = list(args.seeds) if args.seeds else [None]
    texts = [ex.text for ex in examples]
    runs_by_seed: list[dict[str, list[Parsed]]] = []
    seconds_by_seed: list[dict[str, float]] = []
    for seed in seeds:
        tag = "" if seed is None else f"_seed{seed}"
        if seed is not None:
            print(f"[eval] seed {seed}", flush=True)
            notes.append(
                f"Seed {seed}: random_seed {seed} in both pipelines' DIET/ResponseSelector."
            )
        model_paths: dict[str, Path] = {}
        train_seconds: dict[str, float] = {}
        for name in models:
            if args.reuse:
                model_paths[name] = out / f"{name}.tar.gz"
                if not model_paths[name].is_file():
                    raise FileNotFoundError(
                        f"--reuse: no {shown(model_paths[name])}; run without it"
                    )
                print(
                    f"[eval] reusing {shown(model_paths[name])} (not trained in this run)",
                    flush=True,
                )
                notes.append(
                    f"{name}: reused {shown(model_paths[name])}, trained by an earlier run."
                )
                continue
            config, _ = prepare_config(load_config(sources[name]), args.epochs_scale)
            if seed is not None:
                set_seed(config, seed)
            config_path = write_config(config, out / f"config_{name}{tag}.yml")
            print(
                f"[eval] training {name} pipeline ({shown(sources[name])}; "
                f"{epochs_summary(config)}); log: {shown(out / f'train_{name}{tag}.log')}",
                flush=True,
            )
            assert data is not None
            model_paths[name], train_seconds[name] = train_nlu(
                config_path, data, out, f"{name}{tag}"
            )
            load = os.getloadavg()[0]  # other people's jobs inflate the time: say how busy it was
            print(
                f"[eval]   done in {train_seconds[name]:.0f} s (load average {load:.1f})",
                flush=True,
            )
            notes.append(
                f"{name}{tag}: {shown(sources[name])} ({epochs_summary(config)}); trained in "
                f"{train_seconds[name]:.0f} s, 1-min load average {load:.1f} when it finished "
                f"({os.cpu_count()} CPUs)."
            )
        runs: dict[str, list[Parsed]] = {}
        for name in models:
            print(f"[eval] parsing the evaluation sets with {name}", flush=True)
            runs[name] = parse_all(model_paths[name], texts)
        runs_by_seed.append(runs)
        seconds_by_seed.append(train_seconds)

    if len(seeds) > 1:
        notes.append(
            f"Figures are the mean ± sample standard deviation over seeds "
            f"{', '.join(map(str, seeds))} with [lowest-highest]; the errors and confusion "
            f"matrices below are those of seed {seeds[0]}."
        )
    start = 0
    for set_name, chosen in sets.items():
        span = range(start, start + len(chosen))
        start += len(chosen)
        set_runs = [{m: [r[m][i] for i in span] for m in r} for r in runs_by_seed]
        all_rows = [
            build_rows(chosen, r, t) for r, t in zip(set_runs, seconds_by_seed, strict=True)
        ]
        rows = all_rows[0] if len(all_rows) == 1 else combine_rows(all_rows)
        print(f"\n[eval] {set_name} set")
        print(metrics.format_table(models, rows))
        print()
        tag = "" if set_name == "held-out" else f"_{set_name}"
        report = out / f"report{tag}.md"
        write_report(report, chosen, set_runs[0], rows, notes, title=f"the {set_name} set")
        for name in models:
            plot_confusion(
                out / f"confusion_{name}{tag}.png",
                [ex.intent for ex in chosen],
                [p.intent for p in set_runs[0][name]],
                f"{name} pipeline: {set_name} intents",
            )
        print(f"[eval] report: {shown(report)}; confusion matrices: {shown(out)}/confusion_*.png")
    print(f"[eval] wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
