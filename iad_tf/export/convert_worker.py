"""Child process of :func:`iad_tf.export.tflite.convert_isolated`.

``python -m iad_tf.export.convert_worker SAVED_MODEL MODE REPRESENTATIVE.npy|.npz OUT.tflite [--dense-per-tensor]``
"""

from __future__ import annotations

import os
import sys

import numpy as np

from iad_tf.fileio import write_bytes


def main(argv: list[str]) -> int:
    saved, mode, rep_path, out, *flags = argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from iad_tf.export.tflite import ConversionError, convert

    if rep_path.endswith(".npz"):  # {input name: (N, ...)}
        with np.load(rep_path) as npz:
            rep = {k: npz[k] for k in npz.files}
    else:
        rep = np.load(rep_path)
        rep = rep if rep.size else None
    try:
        data = convert(saved, mode, rep, dense_per_channel="--dense-per-tensor" not in flags)
    except ConversionError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    write_bytes(out, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
