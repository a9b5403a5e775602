"""The resume folder of a training run: `last.pt` (the whole training state after an epoch),
`best.pt` (the best weights so far) and `fingerprint.json` (what was trained there).

A rerun after an interruption resumes from the folder; a rerun after a change of anything the
training reads (input files, by content digest; config; file formats) empties it first
(`reset_stale_workdir`), and `fit` refuses a resume state written with other training options
(`check_resume_options`). A damaged resume state, or one written by an older lstfill, makes the
training start afresh; one holding objects that loading would run is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lstfill.errors import InputError, LstfillError
from lstfill.training.settings import TrainConfig
from lstfill.training.storage import LoadFailure, atomic_save, load_plain

__all__ = [
    "BEST",
    "LAST",
    "RESUME_FORMAT",
    "atomic_save",
    "check_resume_options",
    "input_digests",
    "read_resume_state",
    "reset_stale_workdir",
]

LAST = "last.pt"
BEST = "best.pt"
FINGERPRINT = "fingerprint.json"
RESUME_FORMAT = "lstfill-resume-2"  # 1: the unnamed, numpy-holding states before it
RESUME_KEYS = (
    "model",
    "optimiser",
    "scheduler",
    "history",
    "best_state",
    "best_val_loss",
    "best_epoch",
    "bad_epochs",
    "stopped_early",
    "rng",
    "config",
)
_CHUNK = 1 << 20

log = logging.getLogger("lstfill.training")


def read_resume_state(path: Path) -> dict[str, Any] | None:
    """The resume state `path`, or None (with a warning, the file removed) when it is damaged,
    cut short or written by an older lstfill, so that training starts afresh. InputError when it
    holds objects that loading would run: such a file was not written by lstfill."""
    try:
        state = load_plain(path)
    except LoadFailure as exc:
        found = exc.diagnosis
        if found.kind == "code":
            raise InputError(
                path,
                f"not an lstfill resume state: {found.detail}; refused to load it. "
                f"Delete the folder {path.parent} to train afresh",
            ) from exc
        problem = {
            "truncated": "is truncated or damaged",
            "legacy": "was written by an older lstfill and cannot be loaded safely",
            "not-torch": "is not a PyTorch file",
        }[found.kind]
        return _discard(path, f"{problem} ({found.detail})")
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        fmt = state.get("format") if isinstance(state, dict) else type(state).__name__
        return _discard(path, f"is not a {RESUME_FORMAT} resume state (found {fmt!r})")
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing:
        return _discard(path, f"lacks {missing}")
    return state


def _discard(path: Path, problem: str) -> None:
    """Remove an unusable resume state, saying why; training then starts afresh."""
    path.unlink(missing_ok=True)
    log.warning("the resume state %s %s; removed it, training starts afresh", path, problem)


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


def input_digests(paths: Iterable[str | Path]) -> list[list[str]]:
    """[file name, sha256 of its content] of each input file, in order (a folder: of its files,
    by relative name), so a fingerprint changes whenever the data a training reads does."""
    start, size = time.perf_counter(), 0
    digests = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(p, "training input does not exist")
        digest = hashlib.sha256()
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            if p.is_dir():
                digest.update(f.relative_to(p).as_posix().encode() + b"\0")
            with f.open("rb") as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        digests.append([p.name, digest.hexdigest()])
    if digests:
        log.info(
            "fingerprint of %d input files (%.1f MB) in %.1f s",
            len(digests),
            size / 1e6,
            time.perf_counter() - start,
        )
    return digests


def reset_stale_workdir(workdir: str | Path, fingerprint: Mapping[str, Any]) -> None:
    """Empty a resume folder whose `fingerprint.json` differs from `fingerprint` (everything the
    training reads: input digests, config keys, formats), so that a rerun after any change
    trains afresh and a rerun after an interruption resumes.

    A `training` entry of the fingerprint is compared without `epochs` (raising the epochs
    continues a finished run, as `fit` allows).
    """
    workdir = Path(workdir)
    stamp = workdir / FINGERPRINT
    fingerprint = dict(fingerprint)
    training = fingerprint.get("training")
    if isinstance(training, Mapping):
        fingerprint["training"] = {k: v for k, v in training.items() if k != "epochs"}
    text = json.dumps(fingerprint, sort_keys=True, default=str)
    if workdir.exists() and (not stamp.exists() or stamp.read_text() != text):
        log.info(
            "%s holds training of other inputs or settings (changed: %s); starting afresh",
            workdir,
            ", ".join(_changed_keys(stamp, text)),
        )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(text)


def _changed_keys(stamp: Path, text: str) -> list[str]:
    """The top-level fingerprint entries that differ between the file `stamp` and `text`."""
    try:
        old = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return ["no readable fingerprint"]
    new = json.loads(text)
    if not isinstance(old, dict):
        return ["no readable fingerprint"]
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
