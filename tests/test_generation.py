"""One generation per output folder (issue 21, item 2): synth, remix and remix --across-songs
refuse to write over another generation's files, and resume their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from iad_tf.cli.main import cli
from iad_tf.synth.generation import GenerationError, claim
from tests.tiny_aam import make_tiny_aam


def _synth(out: Path, seed: int, tracks: int = 1) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["synth", "--out", str(out), "--tracks", str(tracks), "--seed", str(seed),
                                   "--duration", "2", "--sample-rate", "22050", "--workers", "1"])
    return res.exit_code, res.output


def test_synth_refuses_another_seed_and_resumes_its_own(tmp_path: Path) -> None:
    pytest.importorskip("tinysoundfont")
    d = tmp_path / "D"
    assert _synth(d, 1)[0] == 0
    stems = sorted(p.name for p in (d / "audio-multitracks-flac").iterdir())
    code, out = _synth(d, 2)
    assert code == 1 and "Traceback" not in out
    assert out.strip().splitlines()[-1].startswith(f"Error: {d}: holds another generation (synth, seed 1)")
    assert "this run is synth, seed 2" in out
    assert sorted(p.name for p in (d / "audio-multitracks-flac").iterdir()) == stems  # nothing written
    mix = d / "audio-mixes-flac" / "s0001_mix.flac"
    stamp = mix.stat().st_mtime_ns
    code, out = _synth(d, 1)  # the same generation again: a no-op
    assert code == 0 and "wrote 0 songs" in out and "1 kept from an earlier run" in out
    code, out = _synth(d, 1, tracks=2)  # more tracks of the same generation: extends
    assert code == 0 and "wrote 1 songs" in out and mix.stat().st_mtime_ns == stamp
    assert _synth(d, 1)[0] == 0  # a shorter rerun keeps both
    gen = json.loads((d / "generator.json").read_text())
    assert (gen["generator"], gen["seed"], gen["config"]["tracks"]) == ("synth", 1, 2)
    assert sorted(json.loads((d / "synth.json").read_text())["tracks"]) == ["s0001", "s0002"]
    assert _synth(tmp_path / "S", 3)[0] == 0
    res = CliRunner().invoke(cli, ["remix", "--aam-root", str(tmp_path / "S"), "--out", str(d),
                                   "--sample-rate", "22050", "--workers", "1"])
    assert res.exit_code == 1 and "holds another generation (synth, seed 1); this run is remix" in res.output
    assert not (d / "remixes.json").exists()


def test_claim_refuses_other_generators_and_unknown_folders(tmp_path: Path) -> None:
    d = tmp_path / "D"
    claim(d, "remix", {"per_track": 4, "seed": 0}, 0)
    claim(d, "remix", {"per_track": 4, "seed": 0}, 0)
    with pytest.raises(GenerationError, match=r"holds another generation \(remix, seed 0\); this run is synth"):
        claim(d, "synth", {"tracks": 1}, 0)
    with pytest.raises(GenerationError, match=r"config per_track differ"):
        claim(d, "remix", {"per_track": 2, "seed": 0}, 0)
    aam = make_tiny_aam(tmp_path / "aam", n_tracks=1, seconds=2.0)  # AAM files, no generator.json
    with pytest.raises(GenerationError, match=rf"{aam}: holds AAM files of an unknown generation"):
        claim(aam, "remix", {}, 0)
    with pytest.raises(ValueError, match="unknown generator"):
        claim(tmp_path / "E", "bank", {}, 0)


def test_remix_resumes_its_own_generation_and_refuses_another(tmp_path: Path) -> None:
    from iad_tf.synth.remix import RemixConfig, remix_corpus
    from tests.tiny_aam import make_tiny_stem_aam

    src = make_tiny_stem_aam(tmp_path / "src", n_songs=2, seconds=3.0, sr=22050)
    cfg = RemixConfig(per_track=2, seed=4, sample_rate=22050)
    first, _ = remix_corpus(src, tmp_path / "D", cfg)
    mix = tmp_path / "D" / "audio-mixes-flac" / "0001r01_mix.flac"
    stamp = mix.stat().st_mtime_ns
    again, _ = remix_corpus(src, tmp_path / "D", cfg)
    assert again == first and mix.stat().st_mtime_ns == stamp  # finished: kept, not redone
    with pytest.raises(GenerationError, match=r"holds another generation \(remix, seed 4\); this run is remix, seed 5"):
        remix_corpus(src, tmp_path / "D", RemixConfig(per_track=2, seed=5, sample_rate=22050))
