"""The training optimizer: Adam, with a lower learning rate for fine-tuned pretrained layers.

Keras 3 has no per-layer learning rate; :class:`ScaledAdam` multiplies the learning rate of
every variable whose path starts with ``scaled_prefix`` by ``scale`` (e.g. the fine-tuned
musicnn convolutions of ``musicnn_crnn``). Registered and serializable, so ``model.keras``
and the resume backup reload it.
"""

from __future__ import annotations

from typing import Any

import keras

from iad_tf.training.config import TrainConfig


@keras.saving.register_keras_serializable(package="iad_tf")
class ScaledAdam(keras.optimizers.Adam):
    """Adam whose step for variables under ``scaled_prefix`` uses ``scale`` x the learning rate."""

    def __init__(self, scaled_prefix: str = "", scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scaled_prefix, self.scale = str(scaled_prefix), float(scale)

    def build(self, variables: list[Any]) -> None:
        super().build(variables)
        # update_step receives backend variables (no .path): decide by index, here
        self._scaled = [
            bool(self.scaled_prefix) and v.path.startswith(self.scaled_prefix) for v in variables
        ]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self._scaled[self._get_variable_index(variable)]:
            learning_rate = learning_rate * self.scale
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scaled_prefix": self.scaled_prefix, "scale": self.scale}


def make_optimizer(cfg: TrainConfig, model: keras.Model, **adam: Any) -> keras.optimizers.Optimizer:
    """Adam at ``cfg.learning_rate`` (``adam``: further Adam arguments); ScaledAdam when the
    model has trainable pretrained (``musicnn_``) layers."""
    from iad_tf.training.musicnn import PREFIX

    if any(v.path.startswith(PREFIX) for v in model.trainable_variables):
        return ScaledAdam(PREFIX, cfg.finetune_lr_scale, learning_rate=cfg.learning_rate, **adam)
    return keras.optimizers.Adam(cfg.learning_rate, **adam)
