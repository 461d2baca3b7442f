"""Rasa started without its one-example training step answers exactly as Rasa's own loader."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
import yaml

from bot.settings import ROOT

pytestmark = pytest.mark.model

MODEL = ROOT / "models" / "current.tar.gz"

# Loads the trained model one way, parses messages, predicts the next action after each, and
# prints the load time and the results as JSON (one process per loader: the patch is global).
_PROBE = textwrap.dedent(
    """
    import asyncio, json, sys, time
    if sys.argv[1] == "fast":
        from bot.fast_load import install_fast_model_loading
        install_fast_model_loading()
    from rasa.core.agent import Agent
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    started = time.monotonic()
    agent = Agent.load(sys.argv[2])
    took = time.monotonic() - started
    messages = json.loads(sys.stdin.read())
    async def probe():
        out = []
        for text in messages:
            parsed = await agent.parse_message(text)
            tracker = DialogueStateTracker("probe", agent.domain.slots)
            tracker.update(ActionExecuted("action_listen"))
            tracker.update(UserUttered(text, parsed["intent"], parsed["entities"], parsed))
            scores = agent.processor.predict_next_with_tracker(tracker)["scores"][:3]
            out.append({
                "intent": parsed["intent"]["name"],
                "confidence": round(parsed["intent"]["confidence"], 5),
                "entities": [(e["entity"], e.get("value")) for e in parsed["entities"]],
                "next": [(s["action"], round(s["score"], 5)) for s in scores],
            })
        return out
    print(json.dumps({"load_seconds": took, "results": asyncio.run(probe())}))
    """
)


def messages() -> list[str]:
    found = []
    for name in ("vi.yml", "en.yml", "vi_nodiacritics.yml"):
        data = yaml.safe_load((ROOT / "tests" / "nlu" / "dev" / name).read_text("utf-8"))
        for item in data["nlu"]:
            lines = [line.strip()[2:] for line in item["examples"].splitlines()]
            found += [line for line in lines if line][:3]
    return found


def load_and_probe(loader: str, texts: list[str]) -> dict[str, Any]:
    import json

    done = subprocess.run(
        [sys.executable, "-c", _PROBE, loader, str(MODEL)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_fast_loading_gives_the_same_answers_as_rasas_loader() -> None:
    if not MODEL.exists():
        pytest.fail("no trained model: run `make train`")
    texts = messages()
    assert len(texts) > 60
    stock, fast = load_and_probe("stock", texts), load_and_probe("fast", texts)
    assert fast["results"] == stock["results"]  # every intent, score, entity and next action
    print(f"model loaded in {stock['load_seconds']:.1f}s by Rasa, {fast['load_seconds']:.1f}s")


def test_the_checkpoint_must_cover_every_weight(tmp_path: Any) -> None:
    """A model whose checkpoint lacks weights is refused, never run with random ones."""
    from bot.fast_load import install_fast_model_loading

    install_fast_model_loading()
    from rasa.utils.tensorflow.models import RasaModel

    class Tiny(RasaModel):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            import tensorflow as tf

            self.dense = tf.keras.layers.Dense(2)

        def run_inference(self, data: Any, batch_size: int = 1, **_: Any) -> Any:
            import tensorflow as tf

            return self.dense(tf.ones((1, 3)))

    import tensorflow as tf

    empty = tf.train.Checkpoint(other=tf.Variable(1.0))
    path = empty.save(str(tmp_path / "ckpt"))
    with pytest.raises(AssertionError):
        Tiny.load(path, model_data_example=object(), predict_data_example=object())
