"""Generated tracks belong to all of their source songs: splits and folds use them only where
every source may be used (issue 17, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iad_tf.aam.dataset import DatasetError, read_sources
from iad_tf.data.splits import assign_split, hash_split
from iad_tf.evaluation.folds import fold_split_map, folds_of_songs, song_folds


def test_sources_json_accepts_one_id_or_a_list(tmp_path: Path) -> None:
    (tmp_path / "sources.json").write_text(json.dumps({"a": "0080", "b": ["1014", "2462", "1014"]}))
    assert read_sources(tmp_path) == {"a": ("0080",), "b": ("1014", "2462")}
    for bad in ({"a": []}, {"a": [1]}, {"a": ""}, ["a"]):
        (tmp_path / "sources.json").write_text(json.dumps(bad))
        with pytest.raises(DatasetError, match="sources.json"):
            read_sources(tmp_path)


def test_multi_source_split_only_when_all_sources_agree() -> None:
    songs = [f"{i:04d}" for i in range(200)]
    by_split: dict[str, list[str]] = {}
    for s in songs:
        by_split.setdefault(hash_split(s, 0.2, 0.2), []).append(s)
    tr, va = by_split["train"], by_split["val"]
    assert assign_split("x", tr[0], None, 0.2, 0.2, (tr[0], tr[1])) == "train"
    assert assign_split("x", tr[0], None, 0.2, 0.2, (tr[0], va[0])) is None  # spans splits
    smap = {tr[0]: "train", va[0]: "val", tr[1]: "train"}
    assert assign_split("x", tr[0], smap, 0.2, 0.2, (tr[0], tr[1])) == "train"
    assert assign_split("x", tr[0], smap, 0.2, 0.2, (tr[0], va[0])) is None
    assert assign_split("x", tr[0], smap, 0.2, 0.2, (tr[0], "unlisted")) is None
    assert assign_split("x", tr[0], {**smap, "x": "test"}, 0.2, 0.2, (tr[0], va[0])) == "test"


def test_a_fold_never_trains_on_a_held_out_songs_material() -> None:
    real = ["0080", "1014", "1545", "1941", "2269", "2395"]
    tracks = {s: {"source_id": s} for s in real}
    tracks["0080r01"] = {"source_id": "0080"}  # within-song remix (no "sources": old manifest)
    tracks["x001"] = {"source_id": "1014", "sources": ["1014", "2269", "2395"]}  # cross-song mix
    tracks["x002"] = {"source_id": "1545", "sources": ["1545", "1941"]}
    manifest = {"tracks": tracks}
    folds = song_folds(manifest, 3)
    assert folds == folds_of_songs(real, 3)
    for held in folds:
        split = fold_split_map(manifest, held)
        for tid, meta in tracks.items():
            sources = set(meta.get("sources") or [meta["source_id"]])
            if split[tid] == "train":
                assert not sources & set(held), (tid, held)
            elif split[tid] == "val":
                assert tid in held
            else:
                assert sources & set(held)
    # each generated track trains in at least one fold (its sources are not all held out)
    assert all(any(fold_split_map(manifest, h)[t] == "train" for h in folds) for t in ("x001", "x002"))
