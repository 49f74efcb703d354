"""The one writer of benchmark results (bench/results/*.json).

Results are published with the repository, so every absolute local path in them is cut to its
last part (:func:`iad_tf.fileio.portable_paths`: the sample's and the work folders mean nothing
on another machine), and the file is written atomically (:func:`iad_tf.fileio.write_json`: an
interrupted benchmark never leaves half a results file).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # this checkout's iad_tf, as the bench scripts import it
    sys.path.insert(0, str(REPO))

from iad_tf.fileio import portable_paths, write_json  # noqa: E402


def write_result(path: str | Path, result: Any) -> Path:
    """Write ``result`` to ``path`` as JSON (indented by 2, NaN/inf as null) with absolute
    local paths cut to their last part; return ``path``. The parent folders are created (by
    the atomic writer)."""
    return write_json(path, portable_paths(result))
