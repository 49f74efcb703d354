"""Training: input pipeline, models, loss, callbacks and the fit loop (imports TensorFlow)."""
