"""``iad-tf view``: a page that runs the exported model in the browser (LiteRT.js, WASM) and
plays the song under its piano roll. TF-free.

:mod:`~iad_tf.view.site` builds the set of files the page may fetch (its own static files,
the model, ``session.json``, what ``predict`` wrote); :mod:`~iad_tf.view.server` serves
exactly that set on loopback; :mod:`~iad_tf.view.export` writes it as static files.
"""
