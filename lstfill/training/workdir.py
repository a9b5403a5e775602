"""The resume folder of a training run: `last.pt` (the whole training state after an epoch),
`best.pt` (the best weights so far) and `fingerprint.json` (what was trained there).

A rerun after an interruption resumes from the folder; a rerun after a change of dataset, model
or options empties it first (`reset_stale_workdir`), and `fit` refuses a resume state written
with other training options (`check_resume_options`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lstfill.errors import InputError, LstfillError
from lstfill.io import atomic_output
from lstfill.training.settings import TrainConfig

LAST = "last.pt"
BEST = "best.pt"


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file beside `path`, then rename it into place."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def read_resume_state(path: Path) -> dict[str, Any]:
    """Load a resume checkpoint, with a clear error if it is unreadable."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(
            path, f"cannot read the resume checkpoint ({exc}); delete it to start afresh"
        ) from exc
    if not isinstance(ckpt, dict) or "config" not in ckpt:
        raise InputError(path, "not an lstfill resume checkpoint; delete it to start afresh")
    return ckpt


def check_resume_options(stored: Mapping[str, Any], cfg: TrainConfig, workdir: Path) -> None:
    """Refuse to resume a run made with other options (only `epochs` may change)."""
    current = dataclasses.asdict(cfg)
    changed = sorted(
        k for k in set(stored) | set(current) if k != "epochs" and stored.get(k) != current.get(k)
    )
    if changed:
        details = ", ".join(f"{k}: {stored.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise LstfillError(
            f"{workdir} holds a training run made with other options ({details}); "
            f"delete the folder {workdir} to train afresh"
        )


def reset_stale_workdir(workdir: str | Path, fingerprint: dict[str, Any]) -> None:
    """Empty a resume folder that belongs to another dataset, model or training config, so that
    a rerun after a config change trains afresh and a rerun after an interruption resumes.

    A `training` entry of the fingerprint is compared without `epochs` (raising the epochs
    continues a finished run, as `fit` allows).
    """
    workdir = Path(workdir)
    stamp = workdir / "fingerprint.json"
    fingerprint = dict(fingerprint)
    training = fingerprint.get("training")
    if isinstance(training, Mapping):
        fingerprint["training"] = {k: v for k, v in training.items() if k != "epochs"}
    text = json.dumps(fingerprint, sort_keys=True, default=str)
    if workdir.exists() and (not stamp.exists() or stamp.read_text() != text):
        logging.getLogger("lstfill.training").info(
            "%s holds training of another dataset or model; starting afresh", workdir
        )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(text)
