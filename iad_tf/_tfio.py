"""Quiet imports of TensorFlow and tensorflow-io: the one place either is first loaded by CLI code.

TensorFlow itself is imported quietly by :func:`tfrecords_tools.quiet_tf.tensorflow` (fd 2
silenced during the import: its C++ start-up lines ignore ``TF_CPP_MIN_LOG_LEVEL``).
tensorflow-io 0.37.1 is its last release; its compiled kernels (decode_flac, resample,
AudioIOTensor) do not load on TensorFlow 2.21 and importing it prints loader warnings. Only its
graph-level audio ops are used (``time_mask``, ``freq_mask``). Its import below silences
fd 2 for the duration of the import only; a failed import still raises its exception.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from tfrecords_tools.quiet_tf import silenced_stderr, tensorflow

__all__ = ["tensorflow", "tfio_audio"]


@cache
def tfio_audio() -> Any:
    """Return ``tensorflow_io.audio`` (imported once, quietly)."""
    tensorflow()
    with silenced_stderr():
        import tensorflow_io as tfio
    return tfio.audio
