"""Rasa loads each TensorFlow model (DIET, TED) by *training it on one example* first, so that
Keras creates its weights, then overwrites them from the checkpoint. Compiling the training
graph is most of Rasa's start-up (docs/PERFORMANCE.md). The weights can be made by the first
inference call instead: the checkpoint is read first and TensorFlow restores each variable as
it is created (deferred restoration), so the model is the same without the training step.

``install_fast_model_loading()`` replaces ``RasaModel.load`` with that; tests/bot/test_fast_load.py
checks that both loaders give the same predictions.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def install_fast_model_loading() -> None:
    from rasa.utils.tensorflow.models import RasaModel

    original = RasaModel.load.__func__  # type: ignore[attr-defined]

    @classmethod  # type: ignore[misc]
    def load(
        cls: type[RasaModel],
        model_file_name: str,
        model_data_example: Any,
        predict_data_example: Any = None,
        finetune_mode: bool = False,
        *args: Any,
        **kwargs: Any,
    ) -> RasaModel:
        if finetune_mode or predict_data_example is None:
            return original(  # type: ignore[no-any-return]
                cls,
                model_file_name,
                model_data_example,
                predict_data_example,
                finetune_mode,
                *args,
                **kwargs,
            )
        model = cls(*args, **kwargs)
        # Read first; each variable is restored when the inference call below creates it.
        restore = model.load_weights(model_file_name)
        model.run_inference(predict_data_example)
        # Every variable the model has came from the checkpoint (the optimizer's slots in it
        # are not needed for inference: expect_partial silences them).
        restore.assert_existing_objects_matched().expect_partial()
        return model

    RasaModel.load = load  # type: ignore[method-assign]
