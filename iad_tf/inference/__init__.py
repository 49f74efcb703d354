"""On-device inference: LiteRT runner, windowing, segments and ``iad-tf predict``.

Nothing in this package imports TensorFlow or Keras (directly or indirectly): it runs with
``ai_edge_litert``, numpy and the TF-free audio front end only, so ``iad-tf predict`` starts
in about a second and works where TensorFlow is not installed.
"""


def __getattr__(name: str) -> object:
    """``iad_tf.inference.Stream``: the streaming API, imported on first use."""
    if name == "Stream":
        from iad_tf.inference.stream import Stream

        return Stream
    raise AttributeError(f"module 'iad_tf.inference' has no attribute {name!r}")
