"""The one place tensorflow-io is imported.

tensorflow-io 0.37.1 is its last release; its compiled kernels (decode_flac, resample,
AudioIOTensor) do not load on TensorFlow 2.21, and importing it prints loader warnings.
Only its graph-level audio ops are used (``time_mask``, ``freq_mask``), imported here with
those warnings kept out of the user's terminal.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from functools import cache
from typing import Any


@cache
def tfio_audio() -> Any:
    """Return ``tensorflow_io.audio`` (imported once, quietly)."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        level = logging.getLogger("tensorflow").level
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        old = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        try:
            import tensorflow_io as tfio
        finally:
            logging.getLogger("tensorflow").setLevel(level)
            if old is None:
                os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
            else:
                os.environ["TF_CPP_MIN_LOG_LEVEL"] = old
        return tfio.audio
