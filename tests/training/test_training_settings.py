"""TrainConfig: defaults from the schema only, types coerced, bad keys named."""

import pytest

from lstfill.config import load_schema
from lstfill.errors import ConfigError
from lstfill.training.settings import TrainConfig, schema_defaults


def test_defaults_are_the_schemas():
    props = load_schema()["$defs"]["training"]["properties"]
    cfg = TrainConfig()
    assert set(vars(cfg)) == set(props)
    for name, spec in props.items():
        assert getattr(cfg, name) == spec["default"], name
    assert schema_defaults()["epochs"] == cfg.epochs


def test_float_options_are_floats_even_where_the_schema_writes_0():
    cfg = TrainConfig.from_dict({"weight_decay": 0, "learning_rate": "1e-3"})
    assert isinstance(cfg.weight_decay, float) and isinstance(cfg.min_delta, float)
    assert cfg.learning_rate == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ({"epoch": 3}, "epoch"),
        ({"epochs": 2.5}, "training.epochs"),
        ({"lr_schedule": 3}, "training.lr_schedule"),
        ({"patience": 0}, "training.patience"),
        ({"device": "tpu"}, "training.device"),
    ],
)
def test_bad_options_name_their_key(given, key):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(given)
    assert key in str(err.value)
