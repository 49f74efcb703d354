"""tfrecords_tools on a generic (non-AAM) records directory written by ShardedWriter."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tfrecords_tools import FeatureSpec, Schema
from tfrecords_tools.cli import cli
from tfrecords_tools.reader import read_dataset, shard_files, write_manifest
from tfrecords_tools.summary import inspect_dir, stats_dir
from tfrecords_tools.verify import verify_dir
from tfrecords_tools.writer import ShardedWriter

SCHEMA = Schema(
    (
        FeatureSpec("name", "bytes"),
        FeatureSpec("count", "int64"),
        FeatureSpec("x", "tensor", "float32", (None, 3)),
    )
)


@pytest.fixture
def records(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """7 records of x (k+1, 3) = k + arange, in 3 shards, with a manifest."""
    out = tmp_path / "rec"
    xs = [np.arange((k + 1) * 3, dtype=np.float32).reshape(k + 1, 3) + k for k in range(7)]
    with ShardedWriter(out, "part", 3, SCHEMA) as w:
        for k, x in enumerate(xs):
            w.write({"name": f"r{k}", "count": k * 10, "x": x})
        shards = w.close()
    write_manifest(out, {"schema": SCHEMA.to_json(), "shards": shards})
    return out, xs


def test_writer_and_reader_round_trip(records: tuple[Path, list[np.ndarray]]) -> None:
    out, xs = records
    files = shard_files(out)
    assert [f.name for f in files] == [f"part-0000{i}-of-00003.tfrecord" for i in range(3)]
    got = {r["name"].numpy().decode(): r for r in read_dataset(files, SCHEMA)}
    assert sorted(got) == [f"r{k}" for k in range(7)]
    for k, x in enumerate(xs):
        np.testing.assert_array_equal(got[f"r{k}"]["x"].numpy(), x)
        assert int(got[f"r{k}"]["count"]) == k * 10


def test_inspect(records: tuple[Path, list[np.ndarray]]) -> None:
    out, _ = records
    info = inspect_dir(out)
    assert [s["records"] for s in info["shards"]] == [3, 2, 2]  # round robin
    assert info["total_records"] == 7
    assert [(f["name"], f["kind"], f["dtype"], f["shape"]) for f in info["features"]] == [
        ("name", "bytes", "bytes", []),
        ("count", "int64", "int64", []),
        ("x", "tensor", "float32", [None, 3]),
    ]
    assert info["features"][2]["example_shape"] == [1, 3]
    res = CliRunner().invoke(cli, ["inspect", str(out)])
    assert res.exit_code == 0, res.output
    assert "7 record(s)" in res.output and "(?, 3)" in res.output
    assert "part-00000-of-00003.tfrecord" in res.output


def test_stats(records: tuple[Path, list[np.ndarray]]) -> None:
    out, xs = records
    st = stats_dir(out)
    allx = np.concatenate(xs).astype(np.float64)
    x = st["features"]["x"]
    assert st["records"] == 7
    assert x["values"] == allx.size and x["min"] == allx.min() and x["max"] == allx.max()
    assert x["mean"] == pytest.approx(allx.mean()) and x["std"] == pytest.approx(allx.std())
    assert (x["dim0_total"], x["dim0_min"], x["dim0_max"]) == (28, 1, 7)
    assert st["features"]["count"]["mean"] == pytest.approx(30.0)
    assert st["features"]["name"] == {"distinct": 7}
    res = CliRunner().invoke(cli, ["stats", str(out), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.output)["features"]["x"]["dim0_total"] == 28


def test_verify_ok(records: tuple[Path, list[np.ndarray]]) -> None:
    out, _ = records
    report = verify_dir(out)
    assert report.ok and report.total_records == 7
    res = CliRunner().invoke(cli, ["verify", str(out)])
    assert res.exit_code == 0 and "OK (3 shard(s), 7 record(s))" in res.output


def test_verify_names_corrupted_shard(records: tuple[Path, list[np.ndarray]]) -> None:
    out, _ = records
    bad = out / "part-00001-of-00003.tfrecord"
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip a byte inside a record's payload
    bad.write_bytes(bytes(data))
    report = verify_dir(out)
    assert not report.ok
    problems = report.problems()
    assert problems and all(p.startswith("part-00001-of-00003.tfrecord") for p in problems)
    assert any("corrupted record" in p for p in problems)  # the CRC check, not only sha256
    assert any("sha256" in p for p in problems)
    res = CliRunner().invoke(cli, ["verify", str(out)])
    assert res.exit_code == 1
    assert "part-00001-of-00003.tfrecord: unreadable" in res.output
    assert "Traceback" not in res.output


def test_verify_counts_missing_and_stray_shards(records: tuple[Path, list[np.ndarray]]) -> None:
    out, _ = records
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"]["part-00000-of-00003.tfrecord"]["records"] = 4
    write_manifest(out, manifest)
    (out / "part-00002-of-00003.tfrecord").rename(out / "part-00002-of-00009.tfrecord")
    problems = verify_dir(out).problems()
    assert "part-00000-of-00003.tfrecord: 3 records, manifest says 4" in problems
    assert "part-00002-of-00003.tfrecord: listed in the manifest but missing" in problems
    assert "part-00002-of-00009.tfrecord: shard not listed in the manifest" in problems


def test_cli_errors(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["verify", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = CliRunner().invoke(cli, ["verify", str(tmp_path)])
    assert res.exit_code == 1 and "no manifest.json" in res.output
    res = CliRunner().invoke(cli, ["inspect", str(tmp_path)])
    assert res.exit_code == 1 and "no manifest.json" in res.output


def test_wire_crc32c_and_example_match_tensorflow(tmp_path: Path) -> None:
    import tensorflow as tf

    from tfrecords_tools import wire

    assert wire.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert wire.crc32c(b"") == 0
    blob = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    assert wire.crc32c(blob) == wire._crc32c_py(np.frombuffer(blob, np.uint8), wire._TABLE)
    rec = {"name": "é-1", "count": -(2**40), "x": np.full((2, 3), -1.5, np.float32)}
    ex = tf.train.Example.FromString(SCHEMA.encode(rec))
    assert ex.features.feature["name"].bytes_list.value == ["é-1".encode()]
    assert ex.features.feature["count"].int64_list.value == [-(2**40)]
    assert np.frombuffer(ex.features.feature["x"].bytes_list.value[0], "<f4").tolist() == [-1.5] * 6
    floats = tf.train.Feature.FromString(wire.float_feature([0.5, -2.0]))
    assert list(floats.float_list.value) == [0.5, -2.0]
    # the framing (both CRCs) is checked by TensorFlow's reader
    path = tmp_path / "x.tfrecord"
    w = wire.RecordFileWriter(path)
    for k in range(3):
        w.write(SCHEMA.encode({**rec, "count": k}))
    w.close()
    got = [SCHEMA.decode(r.numpy())["count"] for r in tf.data.TFRecordDataset(str(path))]
    assert got == [0, 1, 2]
    assert w.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
