"""The model checkpoint format: the weights on the CPU and everything needed to rebuild the model
(its class name and arguments, input normalisation, features, config), in one file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import torch

import lstfill
from lstfill.errors import InputError
from lstfill.training.workdir import atomic_save

CHECKPOINT_FORMAT = "lstfill-checkpoint-1"


def save_checkpoint(
    path: str | Path,
    *,
    model_name: str,
    model_kwargs: dict,
    state_dict: dict,
    normalisation: dict,
    features: dict,
    config: dict,
    extra: dict | None = None,
) -> None:
    """Write a self-describing model checkpoint (weights on CPU plus all needed to rebuild it)."""
    atomic_save(
        {
            "format": CHECKPOINT_FORMAT,
            "model_name": model_name,
            "model_kwargs": dict(model_kwargs),
            "state_dict": {
                k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
                for k, v in state_dict.items()
            },
            "normalisation": normalisation,
            "features": features,
            "config": config,
            "extra": extra if extra is not None else {},
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "lstfill_version": getattr(lstfill, "__version__", "unknown"),
        },
        Path(path),
    )


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by `save_checkpoint`; InputError if missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model checkpoint does not exist; train the model first")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(path, f"cannot read model checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(
            path,
            f"not an lstfill model checkpoint (expected format {CHECKPOINT_FORMAT!r}, "
            f"found {found!r})",
        )
    return ckpt
