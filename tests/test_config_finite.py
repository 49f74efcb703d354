"""By construction, not by named case: every config dataclass of iad-tf (a frozen dataclass
named ``*Config`` whose fields all have defaults) refuses an inf/NaN in any float field."""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil

import pytest

import iad_tf

SKIP_PREFIXES = ("iad_tf.cli", "iad_tf.export", "iad_tf.training.musicnn", "iad_tf.pretrained")


def _configs() -> list[type]:
    found: dict[str, type] = {}
    for mod in pkgutil.walk_packages(iad_tf.__path__, "iad_tf."):
        if mod.name.startswith(SKIP_PREFIXES):
            continue
        module = importlib.import_module(mod.name)
        for name, obj in vars(module).items():
            if (isinstance(obj, type) and dataclasses.is_dataclass(obj) and name.endswith("Config")
                    and obj.__module__ == mod.name):
                fields = dataclasses.fields(obj)
                if all(f.default is not dataclasses.MISSING
                       or f.default_factory is not dataclasses.MISSING for f in fields):
                    found[f"{mod.name}.{name}"] = obj
    return [found[k] for k in sorted(found)]


CONFIGS = _configs()


def test_the_configs_are_found() -> None:
    names = {c.__name__ for c in CONFIGS}
    assert {"FeatureConfig", "TrainConfig", "ModelConfig", "SynthConfig", "RemixConfig",
            "BankConfig"} <= names


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_float_field_refuses_non_finite_values(cls: type) -> None:
    base = cls()
    floats = [f.name for f in dataclasses.fields(cls) if isinstance(getattr(base, f.name), float)]
    for name in floats:
        for bad in (math.inf, -math.inf, math.nan):
            with pytest.raises(ValueError, match=name):
                dataclasses.replace(base, **{name: bad})
