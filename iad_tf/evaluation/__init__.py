"""Evaluation of trained runs: inference over records, metrics report, tuned thresholds,
confusion analysis and run comparison.

Only :mod:`iad_tf.evaluation.inference` (and :mod:`~iad_tf.evaluation.evaluate`, through it)
uses TensorFlow/Keras, imported inside functions; the rest is numpy/scikit-learn.
"""
