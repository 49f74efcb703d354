"""The recipe files in ``recipes/`` (the shipped model's model settings) load as configs and
build their models: a typo there would otherwise surface only in a long training run."""

from __future__ import annotations

from pathlib import Path

import pytest

from iad_tf.training.config import load_toml

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))


def test_recipes_exist() -> None:
    assert "crnn_wide.toml" in [p.name for p in RECIPES]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_and_builds(path: Path) -> None:
    from iad_tf.training.models import build_model

    cfg = load_toml(path)
    model = build_model("crnn", cfg.model)
    if path.stem == "crnn_wide":  # the shipped model's architecture (model card)
        assert [list(b) for b in cfg.model.conv_blocks] == [[24, 4], [48, 4], [96, 2]]
        assert model.count_params() == 229_527
    if path.stem == "crnn_wide_gru96":  # the capacity candidate: the same convolutions, GRU 96
        assert [list(b) for b in cfg.model.conv_blocks] == [[24, 4], [48, 4], [96, 2]]
        assert cfg.model.gru_units == 96
