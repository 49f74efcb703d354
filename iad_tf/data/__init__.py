"""Records: the schema of iad-tf's TFRecords, building them, reading them back, tf.data."""
