"""Training data in AAM's own format: synthetic songs (``iad-tf synth``) and remixes of real
stems (``iad-tf remix``). No TensorFlow here."""

#: Track ids of generated songs are ``<prefix>0001``, ... (``SynthConfig.prefix``, ``synth
#: --prefix``): the default prefix and what a prefix may be. Here, not in ``corpus``, so the
#: CLI's option reads them without importing the renderer.
DEFAULT_PREFIX = "s"
PREFIX_PATTERN = r"[a-z]{1,8}"
