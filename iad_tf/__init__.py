"""iad-tf: instrument activation detection for music."""
__version__ = "0.1.0"
