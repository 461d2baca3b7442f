"""Everything that touches Rasa: config variants, training in a subprocess, parsing with timing.

Training runs as ``python -m rasa train nlu`` in a child process so TensorFlow's and Rasa's
chatter goes to a log file instead of the table, and so each pipeline starts from a cold,
comparable process. Rasa's training cache is switched off (``RASA_MAX_CACHE_SIZE=0``): a cache
hit would make the training time meaningless and would fill the shared ``.rasa/cache``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nlu.evaluation.metrics import percentile

REPO = Path(__file__).resolve().parents[2]  # defaults work from any working directory
PROJECT_CONFIG = REPO / "config.yml"
DEFAULT_CONFIG = Path(__file__).with_name("default_config.yml")
FALLBACK_INTENT = "nlu_fallback"
# components whose epochs --epochs-scale multiplies, with Rasa's defaults when not configured
EPOCH_COMPONENTS = {"DIETClassifier": 300, "ResponseSelector": 300}


def shown(path: Path) -> str:
    """A path relative to the working directory when it is under it (shorter in the report)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def quiet_environment() -> dict[str, str]:
    """Environment for training and parsing: no TensorFlow C++ logs, no cache, no telemetry."""
    env = dict(os.environ)
    env.update(
        TF_CPP_MIN_LOG_LEVEL="3",
        RASA_MAX_CACHE_SIZE="0",
        RASA_TELEMETRY_ENABLED="false",
        PYTHONWARNINGS="ignore",
    )
    return env


def load_config(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict) or not config.get("pipeline"):
        raise ValueError(f"{path}: no pipeline")
    return config


def prepare_config(
    config: dict[str, Any], epochs_scale: float = 1.0, drop: Sequence[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``config`` with epochs scaled and the named components removed.

    Returns the new config and the names actually dropped, so the caller can say what it did.
    """
    if epochs_scale <= 0:
        raise ValueError("--epochs-scale must be positive")
    pipeline, dropped = [], []
    for component in config["pipeline"]:
        component = dict(component)
        name = component["name"]
        if name in drop:
            dropped.append(name)
            continue
        if name in EPOCH_COMPONENTS and epochs_scale != 1.0:
            epochs = int(component.get("epochs", EPOCH_COMPONENTS[name]))
            component["epochs"] = max(1, round(epochs * epochs_scale))
        pipeline.append(component)
    return {**config, "pipeline": pipeline}, dropped


def write_config(config: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def epochs_summary(config: dict[str, Any]) -> str:
    """'DIETClassifier 80, ResponseSelector 100': what a run actually trained for."""
    parts = [
        f"{c['name']} {c.get('epochs', EPOCH_COMPONENTS[c['name']])}"
        for c in config["pipeline"]
        if c["name"] in EPOCH_COMPONENTS
    ]
    return ", ".join(parts) or "no epoch-based component"


def train_nlu(config: Path, data: Path, out: Path, name: str) -> tuple[Path, float]:
    """Train one NLU model; returns the archive and the wall-clock training time in seconds.

    The log goes to ``out/train_<name>.log``; on failure its tail is shown so the cause is
    visible without opening it.
    """
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / f"train_{name}.log"
    command = [
        sys.executable, "-m", "rasa", "train", "nlu",
        "--config", str(config.resolve()), "--nlu", str(data.resolve()),
        "--out", str(out.resolve()), "--fixed-model-name", name,
    ]  # fmt: skip
    started = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        result = subprocess.run(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=quiet_environment(),
            cwd=REPO,  # the pipeline names the project's own components (nlu.components...)
            check=False,
        )
    seconds = time.perf_counter() - started
    model = out / f"{name}.tar.gz"
    if result.returncode != 0 or not model.is_file():
        tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-30:])
        raise RuntimeError(f"training {name} failed (exit {result.returncode}):\n{tail}")
    return model, seconds


@dataclass
class Parsed:
    """What one model said about one message, and how long it took."""

    text: str
    intent: str  # the intent the pipeline returned (nlu_fallback included)
    classifier_intent: str  # the best intent other than nlu_fallback
    confidence: float
    entities: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0


def silence_rasa() -> None:
    """Keep Rasa's and TensorFlow's loggers and warnings out of the printed table."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    warnings.filterwarnings("ignore")
    # Rasa and its dependencies re-add warning filters while importing; muting the display
    # itself is the only switch they do not touch (logging.captureWarnings is covered below).
    warnings.showwarning = _drop_warning
    for name in ("rasa", "tensorflow", "absl", "py.warnings", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import structlog  # Rasa 3.6 logs every parse through structlog, at debug level by default

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def _drop_warning(*args: Any, **kwargs: Any) -> None:
    return None


def _to_parsed(text: str, result: dict[str, Any], latency_ms: float) -> Parsed:
    intent = result.get("intent") or {}
    ranking = [r for r in result.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    name = str(intent.get("name") or "")
    classifier = str(ranking[0]["name"]) if ranking else name
    return Parsed(
        text=text,
        intent=name,
        classifier_intent=classifier,
        confidence=float(intent.get("confidence") or 0.0),
        entities=list(result.get("entities") or []),
        latency_ms=latency_ms,
    )


def parse_all(model: Path, texts: Sequence[str]) -> list[Parsed]:
    """Load ``model`` and parse every text, timing each message after two warm-up parses.

    The warm-up keeps TensorFlow's one-off graph tracing out of the latency figures.
    """
    import asyncio

    silence_rasa()
    from rasa.core.agent import Agent

    async def run() -> list[Parsed]:
        agent = Agent.load(str(model))
        silence_rasa()  # loading configures Rasa's logging again
        for warm_up in ("xin chào", "hello"):
            await agent.parse_message(warm_up)
        parsed = []
        for text in texts:
            started = time.perf_counter()
            result = await agent.parse_message(text)
            parsed.append(_to_parsed(text, result, (time.perf_counter() - started) * 1000.0))
        return parsed

    return asyncio.run(run())


def latency_summary(parsed: Sequence[Parsed]) -> str:
    """'mean / p95' in milliseconds, for the table."""
    values = [p.latency_ms for p in parsed]
    if not values:
        return "-"
    return f"{sum(values) / len(values):.1f} / {percentile(values, 95):.1f}"
