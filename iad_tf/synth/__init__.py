"""Training data in AAM's own format: synthetic songs (``iad-tf synth``) and remixes of real
stems (``iad-tf remix``). No TensorFlow here."""
