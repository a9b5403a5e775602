"""`TrainConfig`: the options of the shared training loop, the `training` section of a job.

Its defaults are read from `$defs/training` in `config/schema.yaml`, the one place that writes
them. In the workflow a job's own schema default (e.g. `superres.training.default`) applies on
top of those; code that builds a `TrainConfig` directly gets the schema's shared defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from lstfill.config import load_schema
from lstfill.device import DEVICES
from lstfill.errors import ConfigError

LR_SCHEDULES = ("plateau", "step", "inverse_time", "none")


@cache
def schema_defaults() -> dict[str, Any]:
    """The default of every option of `$defs/training` in the schema."""
    props = load_schema()["$defs"]["training"]["properties"]
    missing = [name for name, spec in props.items() if "default" not in spec]
    if missing:
        raise ConfigError("$defs.training", f"the schema gives no default for {missing}")
    return {name: spec["default"] for name, spec in props.items()}


def _default(name: str) -> Any:
    return dataclasses.field(default=schema_defaults()[name])


@dataclass
class TrainConfig:
    """Options of `fit`; the `training` section of a model's config."""

    epochs: int = _default("epochs")
    batch_size: int = _default("batch_size")
    learning_rate: float = _default("learning_rate")
    weight_decay: float = _default("weight_decay")
    # "plateau": ReduceLROnPlateau on val loss (factor lr_gamma, patience lr_patience);
    # "step": times lr_gamma every lr_step_epochs; "inverse_time": lr0 / (1 + lr_gamma * e)
    # with e the 0-based epoch; "none": constant.
    lr_schedule: str = _default("lr_schedule")
    lr_gamma: float = _default("lr_gamma")
    lr_step_epochs: int = _default("lr_step_epochs")
    lr_patience: int = _default("lr_patience")
    # Early stopping: stop after `patience` epochs without val_loss < best - min_delta.
    patience: int = _default("patience")
    min_delta: float = _default("min_delta")
    seed: int = _default("seed")
    device: str = _default("device")
    # Cap on training batches per epoch (a seeded random subset of the samples each epoch).
    max_batches_per_epoch: int | None = _default("max_batches_per_epoch")
    num_workers: int = _default("num_workers")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # the schema writes 0 for float options too
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), f.type))

        def need(ok: bool, name: str, problem: str) -> None:
            if not ok:
                raise ConfigError(f"training.{name}", f"{problem}, got {getattr(self, name)!r}")

        need(self.epochs >= 1, "epochs", "must be >= 1")
        need(self.batch_size >= 1, "batch_size", "must be >= 1")
        need(self.learning_rate >= 0, "learning_rate", "must be >= 0")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(self.lr_schedule in LR_SCHEDULES, "lr_schedule", f"must be one of {LR_SCHEDULES}")
        need(self.lr_gamma > 0, "lr_gamma", "must be > 0")
        need(self.lr_step_epochs >= 1, "lr_step_epochs", "must be >= 1")
        need(self.lr_patience >= 0, "lr_patience", "must be >= 0")
        need(self.patience >= 1, "patience", "must be >= 1")
        need(self.min_delta >= 0, "min_delta", "must be >= 0")
        need(self.device in DEVICES, "device", f"must be one of {DEVICES}")
        need(
            self.max_batches_per_epoch is None or self.max_batches_per_epoch >= 1,
            "max_batches_per_epoch",
            "must be null or >= 1",
        )
        need(self.num_workers >= 0, "num_workers", "must be >= 0")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Build from a config mapping; unknown keys and values of the wrong type are errors.

        Numbers written as strings (PyYAML reads `1e-3` as a string) are accepted for floats.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(key, "unknown training option")
        return cls(**d)


def _coerce(name: str, value: Any, kind: str) -> Any:
    """Convert `value` to the option's annotated type (`kind`), or raise ConfigError."""
    key = f"training.{name}"
    if kind.endswith("| None") and value is None:
        return None
    if kind == "float":
        if isinstance(value, bool):
            raise ConfigError(key, f"must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"must be a number, got {value!r}") from None
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    # int options (and max_batches_per_epoch when not None)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ConfigError(key, f"must be an integer, got {value!r}")
    return int(value)
