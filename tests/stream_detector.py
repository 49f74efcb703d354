"""A hand-wired ``crnn_stream`` tone detector, exported by the real streaming exporter.

It is a genuine :func:`~iad_tf.training.models.build_crnn_stream` model (one 1-filter causal
conv, a 31-unit GRU, the Dense output) whose weights make frame t's probability depend on
frame t's log-mel only: the conv passes the current frame through (mel + 100 dB, via the
Normalization layer), the GRU's update gate is shut (z ~ 0, so h_t = tanh(W x_t + b)) with
``W, b`` the tone detector of tests/detector_model.py, and the Dense layer scales h by 10.
So the true activity of a tone song is known exactly, as for the offline predict tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from iad_tf.config import AAM_CLASSES
from tests.detector_model import FEATURE, build_detector

CHUNK_FRAMES = 16
SILENCE_DB = -100.0


def model_config() -> Any:
    from iad_tf.training.config import ModelConfig

    return ModelConfig(conv_blocks=((1, 1),), gru_units=len(AAM_CLASSES), dropout=0.0)


MEL_STATS = {"mean": [SILENCE_DB] * FEATURE.n_mels, "std": [1.0] * FEATURE.n_mels}


def build_stream_detector() -> Any:
    """The crnn_stream model (mel -> logits) described in the module docstring."""
    from iad_tf.training.models import build_crnn_stream

    kernel, bias = build_detector().get_layer("logits").get_weights()  # (128, 31), (31,)
    n, c = kernel.shape
    model = build_crnn_stream(model_config(), MEL_STATS)
    conv = np.zeros((3, 3, 1, 1), np.float32)
    conv[2, 1, 0, 0] = 1.0  # current frame (time index 2: causal), same mel bin
    model.get_layer("causal0_conv").set_weights([conv])
    bn = model.get_layer("causal0_bn")
    eps = bn.epsilon
    bn.set_weights([np.ones(1), np.zeros(1), np.zeros(1), np.full(1, 1.0 - eps)])
    gru_kernel = np.zeros((n, 3 * c), np.float32)  # columns: update z | reset r | candidate h
    gru_bias = np.zeros((2, 3 * c), np.float32)
    gru_kernel[:, 2 * c :] = kernel / 2.0  # x = mel + 100: logit = kernel . x + bias'
    gru_bias[0, :c] = -30.0  # update gate shut: h_t = candidate
    gru_bias[0, 2 * c :] = (bias + SILENCE_DB * kernel.sum(axis=0)) / 2.0
    # small recurrent weights (all zeros made the int8 file abort LiteRT: zero scales)
    recurrent = np.random.default_rng(0).normal(0.0, 0.01, (c, 3 * c)).astype(np.float32)
    model.get_layer("gru").set_weights([gru_kernel, recurrent, gru_bias])
    model.get_layer("logits").set_weights([10.0 * np.eye(c, dtype=np.float32), np.zeros(c)])
    return model
