"""The storage layer (iad_tf.storage) and the one path type of every command: memory:// for
the unit tests, the S3 and GCS emulators (tests/storage_fixtures.py) for the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from iad_tf import storage
from iad_tf.cli.build_records import build_records as build_cmd
from iad_tf.data.build import BuildOptions, build_records
from tests.storage_fixtures import gcs_bucket, s3_bucket  # noqa: F401
from tests.tiny_aam import make_tiny_aam
from tfrecords_tools.cli import cli as tfr_cli

pytest.importorskip("upath")

QUIET = BuildOptions(workers=1, progress=False)
REPO = Path(__file__).resolve().parents[1]


def _local_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.name.startswith(".")}


# ----------------------------------------------------------------------------- unit (memory://)


def test_to_path_keeps_local_paths_local_and_urls_urls(tmp_path: Path) -> None:
    assert storage.to_path(str(tmp_path)) == tmp_path
    assert type(storage.to_path(str(tmp_path))) is type(Path())
    assert storage.to_path(f"file://{tmp_path}") == tmp_path
    url = storage.to_path("memory://bkt/a") / "b.txt"
    assert str(url) == "memory://bkt/a/b.txt" and storage.is_remote(url)
    with pytest.raises(TypeError):  # a URL can never be opened as a local file by accident
        os.fspath(url)


def test_unknown_or_missing_scheme_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(storage.StorageError, match=r"^nope://b/x: unknown storage scheme nope://$"):
        storage.to_path("nope://b/x")
    import fsspec

    real = fsspec.get_filesystem_class

    def no_s3(protocol: str) -> type:
        if protocol == "s3":
            raise ImportError("Install s3fs to access S3")
        return real(protocol)

    monkeypatch.setattr(fsspec, "get_filesystem_class", no_s3)
    with pytest.raises(storage.StorageError) as err:
        storage.to_path("s3://b/rec")
    assert str(err.value) == (
        "s3://b/rec: s3:// needs s3fs, which this install lacks: pip install 'iad-tf[cloud]'")


def test_atomic_write_upload_download_and_staged_dir(tmp_path: Path) -> None:
    dest = storage.to_path("memory://bkt/stage-test")
    with storage.atomic_write(dest / "x.txt") as tmp:
        tmp.write_text("one")
    assert (dest / "x.txt").read_text() == "one"
    with pytest.raises(RuntimeError), storage.atomic_write(dest / "y.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert not (dest / "y.txt").exists()  # a failed write leaves nothing behind

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.bin").write_bytes(b"\x00\x01")
    (src / "manifest.json").write_text("{}")
    assert storage.upload_tree(src, dest / "tree") == 2
    back = tmp_path / "back"
    assert storage.download_tree(dest / "tree", back) == 2
    assert (back / "sub" / "a.bin").read_bytes() == b"\x00\x01"

    with storage.staged_dir(dest / "tree") as st:  # downloaded, then changes uploaded
        assert (st.local / "sub" / "a.bin").is_file()
        (st.local / "new.txt").write_text("new")
        assert st.sync() == 1 and st.sync() == 0
        (st.local / "later.txt").write_text("later")
    assert (dest / "tree" / "later.txt").read_text() == "later"


def test_local_records_checks_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    root = make_tiny_aam(tmp_path / "aam", n_tracks=3, seconds=3.0)
    local = build_records([root], tmp_path / "rec", QUIET)
    url = storage.to_path("memory://bkt/records-check")
    storage.upload_tree(tmp_path / "rec", url)
    copy = storage.local_records(url)
    assert _local_files(copy) == _local_files(tmp_path / "rec")
    for name in local.manifest["shards"]:
        assert (copy / name).read_bytes() == (tmp_path / "rec" / name).read_bytes()
    shard = next(iter(local.manifest["shards"]))
    (url / shard).write_bytes(b"damaged")
    with pytest.raises(storage.StorageError, match=rf"^memory://bkt/records-check/{shard}: sha256 differs"):
        storage.local_records(url)
    with pytest.raises(storage.StorageError, match="no manifest.json"):
        storage.local_records("memory://bkt/nothing-here")


def test_build_to_and_from_memory_urls_equals_local_and_resumes(tmp_path: Path) -> None:
    root = make_tiny_aam(tmp_path / "aam", n_tracks=4, seconds=3.0)
    storage.upload_tree(root, storage.to_path("memory://bkt/aam"))
    local = build_records([root], tmp_path / "rec", QUIET)
    opts = BuildOptions(workers=1, progress=False, keep_cache=True)
    remote = build_records(["memory://bkt/aam"], "memory://bkt/rec", opts)
    assert remote.manifest["shards"] == local.manifest["shards"]  # same bytes (sha256)
    assert remote.computed == 4 and remote.reused == 0
    assert remote.manifest["tracks"]["0001"]["audio"] == "memory://bkt/aam/audio-mixes-flac/0001_mix.flac"
    assert sorted(remote.manifest["splits"].items()) == sorted(local.manifest["splits"].items())
    # resume: finished tracks in OUT/.work are checked and kept, a damaged one is redone
    (storage.to_path("memory://bkt/rec/.work") / "0002.npz").write_bytes(b"not an npz")
    again = build_records(["memory://bkt/aam"], "memory://bkt/rec", BuildOptions(workers=1, progress=False))
    assert (again.computed, again.reused) == (1, 3)
    assert again.manifest["shards"] == local.manifest["shards"]
    assert not storage.to_path("memory://bkt/rec/.work").exists()


# ----------------------------------------------------------------------------- CLI, emulators


def test_url_out_never_writes_a_scheme_folder(
    tiny_aam: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_bucket: str  # noqa: F811
) -> None:
    """Regression: `--out s3://bucket/rec` wrote ./s3:/bucket/rec/ and exited 0."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    out = f"{s3_bucket}/regression/rec"
    res = CliRunner().invoke(build_cmd, ["--aam-root", str(tiny_aam), "--out", out, "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert list(work.iterdir()) == []
    manifest = json.loads(storage.to_path(f"{out}/manifest.json").read_text())
    for name in manifest["shards"]:
        assert storage.to_path(f"{out}/{name}").is_file()



@pytest.mark.slow
def test_beam_build_to_and_from_s3_equals_local(
    tiny_aam: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_bucket: str  # noqa: F811
) -> None:
    """--runner beam (DirectRunner) reading audio from s3:// and writing shards through Beam's
    S3 file system: the same records as the local runner (a shard's order is Beam's)."""
    pytest.importorskip("apache_beam")
    from tfrecords_tools.reader import iter_records

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    local = build_records([tiny_aam], tmp_path / "rec", QUIET)
    storage.upload_tree(tiny_aam, storage.to_path(f"{s3_bucket}/beam/aam"))
    out = f"{s3_bucket}/beam/rec"
    res = CliRunner().invoke(build_cmd, ["--aam-root", f"{s3_bucket}/beam/aam", "--out", out,
                                         "--runner", "beam", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("s3")] == []
    assert "(4 computed, 0 from cache)" in res.output  # workers cached each track in the bucket,
    assert not storage.to_path(f"{out}/.work").exists()  # removed once the manifest was written
    remote = json.loads(storage.to_path(f"{out}/manifest.json").read_text())
    assert remote["splits"] == local.manifest["splits"]
    assert remote["mel_stats"] == local.manifest["mel_stats"]
    copy = storage.local_records(out)  # also checks every shard's sha256 from the pipeline

    def records(root: Path, names: dict) -> set[bytes]:
        return {r for n in names for r in iter_records(root / n)}

    assert records(copy, remote["shards"]) == records(tmp_path / "rec", local.manifest["shards"])


def test_missing_extra_and_bad_bucket_are_one_line(
    tiny_aam: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_bucket: str  # noqa: F811
) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(build_cmd, ["--aam-root", str(tiny_aam), "--out", "s3://iad-nope/rec"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == (
        "Error: --out s3://iad-nope/rec: bucket s3://iad-nope does not exist or is not reachable")
    res = CliRunner().invoke(tfr_cli, ["verify", "s3://iad-nope/rec"])
    assert res.exit_code == 2 and "bucket s3://iad-nope does not exist" in res.output
    import fsspec

    real = fsspec.get_filesystem_class

    def no_gcs(protocol: str) -> type:
        if protocol in ("gs", "gcs"):
            raise ImportError("Install gcsfs to access Google Storage")
        return real(protocol)

    monkeypatch.setattr(fsspec, "get_filesystem_class", no_gcs)
    res = CliRunner().invoke(build_cmd, ["--aam-root", str(tiny_aam), "--out", "gs://b/rec"])
    assert res.exit_code == 2
    assert "gs://b/rec: gs:// needs gcsfs, which this install lacks: pip install 'iad-tf[cloud]'" in res.output
    assert list(tmp_path.iterdir()) == [] or not (tmp_path / "gs:").exists()


@pytest.mark.parametrize("bucket", ["s3_bucket", "gcs_bucket"])
def test_verify_and_inspect_urls(
    bucket: str, tiny_aam: Path, tmp_path: Path, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    base = request.getfixturevalue(bucket)
    build_records([tiny_aam], tmp_path / "rec", QUIET)
    url = storage.to_path(f"{base}/verify/rec")
    storage.upload_tree(tmp_path / "rec", url)
    ok = CliRunner().invoke(tfr_cli, ["verify", str(url)])
    assert ok.exit_code == 0 and f"{url}: OK" in ok.output, ok.output
    info = CliRunner().invoke(tfr_cli, ["inspect", "--json", str(url)])
    assert info.exit_code == 0 and json.loads(info.output)["total_records"] == 4
    shard = sorted(json.loads((url / "manifest.json").read_text())["shards"])[0]
    (url / shard).write_bytes((tmp_path / "rec" / shard).read_bytes()[:-7])
    bad = CliRunner().invoke(tfr_cli, ["verify", str(url)])
    assert bad.exit_code == 1 and shard in bad.output


# ----------------------------------------------------------------------------- end to end

FIT_ARGS = ["--model", "mlp", "--epochs", "1", "--batch-size", "2", "--batching", "windows",
            "--window-seconds", "1.0", "--no-augment", "--seed", "0"]


def _e2e(root: Path, split_file: str, records: str, run: str, audio: str, pred: str) -> dict:
    """build-records (local runner, 2 workers) -> verify -> fit -> predict; what they wrote."""
    from iad_tf.cli.main import cli

    # a subprocess, as a user runs it: its worker processes start with the emulators' settings
    proc = subprocess.run(
        [sys.executable, "-m", "iad_tf", "build-records", "--aam-root", str(root), "--out",
         records, "--split-file", split_file, "--workers", "2"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runner = CliRunner()
    res = runner.invoke(tfr_cli, ["verify", records])
    assert res.exit_code == 0 and f"{records}: OK" in res.output, res.output
    res = runner.invoke(cli, ["fit", "--records", records, "--run-dir", run, *FIT_ARGS])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["predict", audio, "--out", pred])
    assert res.exit_code == 0, res.output
    run_p, pred_p = storage.to_path(run), storage.to_path(pred)
    manifest = json.loads((storage.to_path(records) / "manifest.json").read_text())
    with storage.open_file(pred_p / "0004_mix.npz") as fh:
        import numpy as np

        probs = np.load(fh)["probs"]
    return {
        "shards": manifest["shards"],
        "metrics": [json.loads(line) for line in (run_p / "metrics.jsonl").read_text().splitlines()],
        "run_files": sorted(p.name for p in run_p.iterdir()),
        "probs": probs,
    }


E2E_AUDIO = "audio-mixes-flac/0004_mix.flac"


@pytest.fixture(scope="module")
def e2e_local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The tiny AAM folder (3 train songs, 1 val) and what the local run of _e2e wrote."""
    tmp = tmp_path_factory.mktemp("e2e")
    root = make_tiny_aam(tmp / "aam", n_tracks=4, seconds=4.0)
    (tmp / "splits.txt").write_text("0001 train\n0002 train\n0003 train\n0004 val\n")
    return root, _e2e(root, str(tmp / "splits.txt"), str(tmp / "rec"), str(tmp / "run"),
                      str(root / E2E_AUDIO), str(tmp / "pred"))


@pytest.mark.slow
@pytest.mark.parametrize("bucket", ["s3_bucket", "gcs_bucket"])
def test_build_verify_fit_predict_on_urls_equals_local(
    bucket: str, e2e_local: tuple[Path, dict], tmp_path: Path, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np

    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    base = f"{request.getfixturevalue(bucket)}/e2e"
    root, local = e2e_local
    storage.upload_tree(root, storage.to_path(f"{base}/aam"))
    storage.put_file(root.parent / "splits.txt", storage.to_path(f"{base}/splits.txt"))
    remote = _e2e(storage.to_path(f"{base}/aam"), f"{base}/splits.txt", f"{base}/rec",
                  f"{base}/run", f"{base}/aam/{E2E_AUDIO}", f"{base}/pred")
    assert remote["shards"] == local["shards"]  # the same records, byte for byte
    assert remote["run_files"] == local["run_files"]
    assert "model.keras" in remote["run_files"]
    # (training itself is not bit-reproducible run to run, so its numbers are not compared)
    assert [m["epoch"] for m in remote["metrics"]] == [m["epoch"] for m in local["metrics"]] == [1]
    assert remote["metrics"][0].keys() == local["metrics"][0].keys()
    np.testing.assert_array_equal(remote["probs"], local["probs"])


def test_a_run_from_url_records_names_the_url_and_export_reads_it_from_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """fit trains from the verified local copy of a URL, but config.json records the URL (not
    the cache folder), so export on a machine without that copy finds the records."""
    import shutil

    from iad_tf.cli.main import cli
    from tests.records_factory import make_records

    monkeypatch.setenv(storage.CACHE_ENV, str(tmp_path / "cache"))
    url = "memory://run-records/rec"
    storage.upload_tree(make_records(tmp_path / "rec", n_frames=300), storage.to_path(url))
    run = tmp_path / "run"
    res = CliRunner().invoke(cli, ["fit", "--records", url, "--run-dir", str(run), *FIT_ARGS])
    assert res.exit_code == 0, res.output
    assert json.loads((run / "config.json").read_text())["records_dir"] == url
    shutil.rmtree(tmp_path / "cache")  # another machine: no local copy
    res = CliRunner().invoke(cli, ["export", "--run", str(run), "--out", str(tmp_path / "out"),
                                   "--quantize", "none", "--window-frames", "64"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "out" / "model.json").read_text())
    assert meta["training_data"]["records_dir"] == meta["training_data"]["checked_on"] == url
