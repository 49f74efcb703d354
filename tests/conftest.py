"""Shared fixtures: the real AAM sample (optional locally, required in CI) and tiny AAM folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.records_factory import make_records
from tests.tiny_aam import make_tiny_aam

REPO = Path(__file__).resolve().parents[1]

#: ``@pytest.mark.slow`` tests run only with IAD_TF_RUN_SLOW=1 (``make test-all``, CI), so the
#: default ``make test`` stays near ten minutes.
RUN_SLOW_ENV = "IAD_TF_RUN_SLOW"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(RUN_SLOW_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"slow: set {RUN_SLOW_ENV}=1 (make test-all) to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def find_aam_sample() -> Path | None:
    """``$IAD_TF_AAM_SAMPLE`` or ``../shared/aam-sample`` beside the checkout."""
    env = os.environ.get("IAD_TF_AAM_SAMPLE")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "aam-sample")
    for c in candidates:
        if (c / "annotations").is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def aam_sample() -> Path:
    """The 12-track real AAM sample; skipped where absent unless IAD_TF_REQUIRE_SAMPLE=1 (CI)."""
    path = find_aam_sample()
    if path is None:
        if os.environ.get("IAD_TF_REQUIRE_SAMPLE") == "1":
            pytest.fail("IAD_TF_REQUIRE_SAMPLE=1 but the AAM sample was not found")
        pytest.skip("AAM sample not found (set IAD_TF_AAM_SAMPLE)")
    return path


@pytest.fixture
def tiny_aam(tmp_path: Path) -> Path:
    """A 4-track AAM-format folder of 6-second tone songs, written fresh for the test."""
    return make_tiny_aam(tmp_path / "aam", n_tracks=4, seconds=6.0, seed=0)


@pytest.fixture(scope="session")
def detector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding the hand-wired tone detector exported once by the real exporter:
    ``detector.tflite`` (log-mel in) and ``detector_waveform.tflite`` (audio in), each with
    its metadata embedded and as a sidecar (tests/detector_model.py)."""
    from tests.detector_model import export_detector

    return export_detector(tmp_path_factory.mktemp("detector")).parent


@pytest.fixture(scope="session")
def cv_records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # songs 0001-0006 (real), 0007-0010 remixes of 0001, 0002, 0003, 0003
    rows = [[0, 8], [8, 9], [0, 9, 22], [22, 8], [1, 8], [0, 22], [0, 8], [9], [22], [0, 9]]
    sources = {"0007": "0001", "0008": "0002", "0009": "0003", "0010": "0003"}
    return make_records(
        tmp_path_factory.mktemp("cv") / "rec", {"train": rows}, n_frames=90, sources=sources
    )
