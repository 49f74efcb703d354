"""Custom Keras layers of the attention model (registered, serializable).

Both work for any number of frames and use only ops that TFLite converts to builtins when the
input shape is fixed.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops


@keras.saving.register_keras_serializable(package="iad_tf")
class SinusoidalPositionalEncoding(layers.Layer):
    """Adds the transformer's sine/cosine position code: (batch, frames, dim) -> same shape.

    Computed from ``arange(frames)``, so any number of frames works.
    """

    def __init__(self, max_wavelength: float = 10000.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_wavelength = float(max_wavelength)

    def call(self, x: Any) -> Any:
        dim = int(x.shape[-1])
        frames = ops.shape(x)[1]
        pos = ops.cast(ops.arange(frames), x.dtype)[:, None]  # (frames, 1)
        idx = np.arange(dim // 2, dtype=np.float32)
        inv = ops.cast(1.0 / (self.max_wavelength ** (2.0 * idx / dim)), x.dtype)[None, :]
        angle = pos * inv  # (frames, dim // 2)
        code = ops.concatenate([ops.sin(angle), ops.cos(angle)], axis=-1)  # (frames, 2*(dim//2))
        if dim % 2:
            code = ops.pad(code, [[0, 0], [0, 1]])
        return x + code[None, :, :]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_wavelength": self.max_wavelength}


@keras.saving.register_keras_serializable(package="iad_tf")
class BlockTransformerEncoder(layers.Layer):
    """One post-norm transformer encoder layer whose self-attention stays inside blocks.

    (batch, frames, dim) -> same shape. Frames are padded to a multiple of ``block_frames``
    and folded to (batch * blocks, block_frames, dim); padding keys are masked out of the
    attention; the result is unfolded and cut back to ``frames``. With whole 3-minute tracks
    (~7800 frames) full attention would need ~7800^2 scores per head; blocks keep it linear.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        ff: int,
        block_frames: int = 256,
        dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dim, self.heads, self.ff = int(dim), int(heads), int(ff)
        self.block_frames, self.dropout = int(block_frames), float(dropout)
        self.attn = layers.MultiHeadAttention(heads, dim // heads, dropout=dropout, name="mha")
        self.ff1 = layers.Dense(ff, activation="relu", name="ff1")
        self.ff2 = layers.Dense(dim, name="ff2")
        self.norm1 = layers.LayerNormalization(epsilon=1e-5, name="norm1")
        self.norm2 = layers.LayerNormalization(epsilon=1e-5, name="norm2")
        self.drop = layers.Dropout(dropout)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        block = (None, self.block_frames, self.dim)
        self.attn.build(block, block)
        self.norm1.build(block)
        self.ff1.build(block)
        self.ff2.build((None, self.block_frames, self.ff))
        self.norm2.build(block)
        super().build(input_shape)

    def call(self, x: Any, training: bool | None = None) -> Any:
        b = self.block_frames
        batch, frames = ops.shape(x)[0], ops.shape(x)[1]
        pad = (b - frames % b) % b
        xp = ops.pad(x, [[0, 0], [0, pad], [0, 0]])  # (batch, frames + pad, dim)
        n_blocks = (frames + pad) // b
        xb = ops.reshape(xp, (batch * n_blocks, b, self.dim))  # (batch * blocks, b, dim)
        valid = ops.arange(frames + pad) < frames  # (frames + pad,)
        valid = ops.reshape(ops.tile(valid[None, :], (batch, 1)), (batch * n_blocks, 1, b))
        mask = ops.broadcast_to(valid, (batch * n_blocks, b, b))  # query x key
        h = self.attn(xb, xb, attention_mask=mask, training=training)
        xb = self.norm1(xb + self.drop(h, training=training))
        h = self.ff2(self.drop(self.ff1(xb), training=training))
        xb = self.norm2(xb + self.drop(h, training=training))
        out = ops.reshape(xb, (batch, n_blocks * b, self.dim))
        return out[:, :frames, :]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "dim": self.dim,
            "heads": self.heads,
            "ff": self.ff,
            "block_frames": self.block_frames,
            "dropout": self.dropout,
        }
