"""Stable read-back API: ``iad_tf.records.load_track`` (lives in :mod:`iad_tf.data.records`)."""

from iad_tf.data.records import load_track

__all__ = ["load_track"]
