"""``iad-tf view --export DIR``: the site as plain static files (the page, LiteRT.js, the
model, ``session.json`` and any predictions), for any static host. TF-free."""

from __future__ import annotations

from pathlib import Path

from iad_tf.fileio import atomic_path
from iad_tf.view.site import Resource


def export_site(site: dict[str, Resource], out_dir: str | Path) -> list[Path]:
    """Write every resource of ``site`` under ``out_dir`` (each to a temporary name, then
    renamed); return the paths written."""
    out = Path(out_dir)
    written = []
    for key, res in sorted(site.items()):
        target = out / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            Path(tmp).write_bytes(res.read())
        written.append(target)
    return written
