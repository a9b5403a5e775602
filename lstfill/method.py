"""The one interface every job's method implements, and the train step they all share.

A method is one class: `fit` learns from the job's training data (a method without trained state,
such as EFAST, does nothing there), `predict` makes the job's product from the job's inputs,
`state` is everything prediction needs (the keyword arguments of
`lstfill.training.checkpoint.save_checkpoint`), and `from_state` rebuilds the method from it.
A job's `method.py` lists its methods in a `METHODS` mapping from the config value that selects
one to its class, so adding a method is one class and one entry.

`train_method` is the train step of every job: empty a resume folder that holds training on other
inputs or settings, fit, write the checkpoint and the training curve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import torch

from lstfill.errors import InputError
from lstfill.training.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from lstfill.training.curves import plot_training_curve
from lstfill.training.loop import TrainResult
from lstfill.training.workdir import RESUME_FORMAT, input_digests, reset_stale_workdir


@runtime_checkable
class Method(Protocol):
    """A job's method: trained by `fit`, applied by `predict`, stored as `state`."""

    name: ClassVar[str]

    def fit(self, data: Any, workdir: str | Path, *, progress: bool = True) -> TrainResult | None:
        """Learn from `data` (the job's training set), resuming from `workdir`."""
        ...

    def predict(self, *inputs: Any, **options: Any) -> Any:
        """The job's product from the job's inputs."""
        ...

    def state(self) -> dict[str, Any]:
        """Everything `from_state` needs: the keyword arguments of `save_checkpoint`."""
        ...

    @classmethod
    def from_state(cls, state: Mapping[str, Any], device: str | torch.device = "cpu") -> Self:
        """The method rebuilt from `state` (a checkpoint), its network on `device`."""
        ...


def train_method(
    method: Method,
    data: Any,
    fingerprint: Mapping[str, Any],
    workdir: str | Path,
    checkpoint_out: str | Path,
    curve_out: str | Path,
    *,
    title: str,
    inputs: Sequence[str | Path] = (),
    extra: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Fit `method` on `data` in `workdir`, then write its checkpoint (with the history, the best
    epoch and `extra` among its extras) and its training curve.

    The work folder is resumed only when everything the training reads is unchanged: the
    content of the `inputs` files (every dataset file `data` was read from), the job's
    `fingerprint` (the config keys the step reads), the method and the file formats. Otherwise
    it is emptied first and training starts afresh; only `training.epochs` may change without
    a restart."""
    reserved = {"inputs", "formats", "model_name"} & set(fingerprint)
    if reserved:
        raise ValueError(f"fingerprint keys {sorted(reserved)} are train_method's own")
    stamp = {
        **fingerprint,
        "inputs": input_digests(inputs),
        "formats": {"checkpoint": CHECKPOINT_FORMAT, "resume": RESUME_FORMAT},
        "model_name": method.name,
    }
    reset_stale_workdir(workdir, stamp)
    result = method.fit(data, workdir, progress=progress)
    if result is None:
        raise TypeError(f"{type(method).__name__} has nothing to train")
    state = method.state()
    state["extra"] = {
        **state.get("extra", {}),
        "history": result.history,
        "best_epoch": result.best_epoch,
        **(extra or {}),
    }
    save_checkpoint(checkpoint_out, **state)
    plot_training_curve(result.history, curve_out, title=title)
    return result


def load_method(
    path: str | Path, methods: Mapping[str, type[Method]], device: str | torch.device = "cpu"
) -> Method:
    """The method stored in the checkpoint `path`, looked up by its model name in `methods`."""
    state = load_checkpoint(path)
    by_model = {cls.name: cls for cls in methods.values()}
    cls = by_model.get(state["model_name"])
    if cls is None:
        raise InputError(
            path, f"holds a {state['model_name']!r} model, not one of {sorted(by_model)}"
        )
    state["path"] = str(path)
    return cls.from_state(state, device)
