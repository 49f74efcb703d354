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


def learning_rate(cfg: TrainConfig, total_steps: int | None) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """``cfg.learning_rate``, or with ``cfg.lr_schedule == "cosine"`` a cosine decay from it to
    0 over ``total_steps`` optimizer steps (required then)."""
    if cfg.lr_schedule == "constant":
        return cfg.learning_rate
    if not total_steps or total_steps < 1:
        raise ValueError("lr_schedule 'cosine' needs the run's total number of steps")
    return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=int(total_steps), alpha=0.0)


def make_optimizer(
    cfg: TrainConfig, model: keras.Model, total_steps: int | None = None, **adam: Any
) -> keras.optimizers.Optimizer:
    """Adam at :func:`learning_rate` (``total_steps``: the run's optimizer steps, for a
    schedule; ``adam``: further Adam arguments); ScaledAdam when the model has trainable
    pretrained (``musicnn_``) layers."""
    from iad_tf.training.musicnn import PREFIX

    lr = learning_rate(cfg, total_steps)
    if any(v.path.startswith(PREFIX) for v in model.trainable_variables):
        return ScaledAdam(PREFIX, cfg.finetune_lr_scale, learning_rate=lr, **adam)
    return keras.optimizers.Adam(lr, **adam)
