"""On-device inference: LiteRT runner, windowing, segments and ``iad-tf predict``.

Nothing in this package imports TensorFlow or Keras (directly or indirectly): it runs with
``ai_edge_litert``, numpy and the TF-free audio front end only, so ``iad-tf predict`` starts
in about a second and works where TensorFlow is not installed.
"""
