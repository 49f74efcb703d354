"""Quiet import of TensorFlow: the one place CLI code first loads it.

TensorFlow 2.21 writes C++ start-up lines (oneDNN notes, "Could not find cuda drivers") to
file descriptor 2 before its logging is configured, whatever ``TF_CPP_MIN_LOG_LEVEL`` says.
:func:`tensorflow` silences fd 2 for the duration of the import only; a failed import still
raises its exception. (Used by ``tfrecords-tools`` and, through ``iad_tf._tfio``, ``iad-tf``.)
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from functools import cache
from typing import Any


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Point fd 2 at /dev/null inside the block (C++ writes included), then restore it."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@cache
def tensorflow() -> Any:
    """Import and return ``tensorflow`` without its C++ start-up chatter."""
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf
    with silenced_stderr():
        import tensorflow as tf
    # Python-side INFO chatter ("Assets written to ...") is for TensorFlow developers.
    tf.get_logger().setLevel("ERROR")
    return tf
