"""Export of a trained run: SavedModel with a serving signature, float and quantised TFLite
(builtin ops only), sidecar metadata, and checks of every artifact against the Keras model.

TensorFlow is imported inside functions; :mod:`iad_tf.export.pipeline` is the entry point.
"""
