"""Generic TFRecord tools: one schema for writer and parser, sharded writing, reading, checks.

No dataset knowledge lives here. A records directory holds shards named
``<split>-00003-of-00016.tfrecord`` and a ``manifest.json`` whose ``"schema"`` and
``"shards"`` keys this package reads and writes (other keys belong to the caller).
"""

from tfrecords_tools.schema import FeatureSpec, Schema, SchemaError

__all__ = ["FeatureSpec", "Schema", "SchemaError"]
