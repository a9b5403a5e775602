"""The model checkpoint format: the weights on the CPU and everything needed to rebuild the model
(its class name and arguments, input normalisation, features, config), in one file.

A checkpoint holds tensors and plain values only and is read without running code (see
`lstfill.training.storage`): numpy arrays in the normalisation, features, config or extras are
stored as tensors and come back as numpy arrays. A checkpoint that is cut short, or that an
older lstfill wrote with numpy objects inside, is moved aside when read, so that a rerun of the
workflow trains it again; a file holding objects that loading would run is refused and left.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import lstfill
from lstfill.errors import InputError
from lstfill.training.storage import LoadFailure, atomic_save, load_plain, tensors_to_numpy

CHECKPOINT_FORMAT = "lstfill-checkpoint-2"
# 1 may hold numpy objects (then it does not load safely); one that loads is read like 2
READABLE_FORMATS = ("lstfill-checkpoint-1", CHECKPOINT_FORMAT)
# the parts of a checkpoint whose tensors are numpy arrays given to `save_checkpoint`
NUMPY_PARTS = ("model_kwargs", "normalisation", "features", "config", "extra")


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
    """Write a self-describing model checkpoint (weights on CPU plus all needed to rebuild it);
    everything besides the weights must be numbers, strings, lists, dicts or numpy arrays."""
    atomic_save(
        {
            "format": CHECKPOINT_FORMAT,
            "model_name": model_name,
            "model_kwargs": dict(model_kwargs),
            "state_dict": dict(state_dict),
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
    """Read a checkpoint written by `save_checkpoint` without running code; InputError if it is
    missing, not an lstfill checkpoint, of another format, or damaged (then moved aside)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model checkpoint does not exist; train the model first")
    try:
        ckpt = load_plain(path)
    except LoadFailure as exc:
        raise _refusal(path, exc) from exc
    found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
    if isinstance(found, str) and found.startswith("lstfill-checkpoint-"):
        if found not in READABLE_FORMATS:
            raise InputError(
                path,
                f"written by another lstfill version (format {found!r}; this one reads "
                f"{', '.join(READABLE_FORMATS)}); use that version or retrain the model",
            )
    else:
        raise InputError(
            path,
            f"not an lstfill model checkpoint (expected format {CHECKPOINT_FORMAT!r}, "
            f"found {found!r})",
        )
    for part in NUMPY_PARTS:
        ckpt[part] = tensors_to_numpy(ckpt.get(part, {}))
    return ckpt


def _refusal(path: Path, failure: LoadFailure) -> InputError:
    """The error for a checkpoint that does not load; a truncated one, or one an older lstfill
    wrote, is first moved aside so that the workflow sees it missing and retrains it."""
    found = failure.diagnosis
    if found.kind == "truncated":
        aside = _move_aside(path, ".corrupt")
        return InputError(
            path,
            f"the model checkpoint is truncated or damaged ({found.detail}); moved to "
            f"{aside.name}; rerun the workflow to retrain it",
        )
    if found.kind == "legacy" and found.marked:
        aside = _move_aside(path, ".legacy")
        return InputError(
            path,
            f"the model checkpoint was written by an older lstfill and cannot be loaded safely "
            f"({found.detail}); moved to {aside.name}; rerun the workflow to retrain it",
        )
    if found.kind == "not-torch":
        return InputError(
            path, f"cannot read model checkpoint: {found.detail}; delete it and retrain the model"
        )
    return InputError(
        path,
        f"not an lstfill model checkpoint: {found.detail}; refused to load it (lstfill never "
        "writes such objects). Delete it and rerun the workflow to train the model here",
    )


def _move_aside(path: Path, suffix: str) -> Path:
    """Rename `path` to `path` + `suffix` (replacing an older one); another job reading the
    same file may have done so already."""
    aside = path.with_name(path.name + suffix)
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        pass
    return aside
