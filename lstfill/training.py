"""Training loop shared by every lstfill model (gap-fill CNN, super-resolution U-Net, MLP).

One `fit` keeps all models on the same footing: seeded Adam training with a learning-rate
schedule, early stopping on the validation loss, a checkpoint after every epoch so that an
interrupted Snakemake job resumes where it stopped (and ends with the same result), and the best
epoch's weights loaded into the model at the end. Model checkpoints for inference are written by
`save_checkpoint` in one self-describing format.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

import lstfill
from lstfill.device import DEVICES, resolve_device
from lstfill.errors import ConfigError, InputError, LstfillError
from lstfill.io import atomic_output
from lstfill.plotting import pyplot

CHECKPOINT_FORMAT = "lstfill-checkpoint-1"
LR_SCHEDULES = ("plateau", "step", "inverse_time", "none")
_LAST = "last.pt"
_BEST = "best.pt"


@dataclass
class TrainConfig:
    """Options of `fit`; the `training` section of a model's config."""

    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    # "plateau": ReduceLROnPlateau on val loss (factor lr_gamma, patience lr_patience);
    # "step": times lr_gamma every lr_step_epochs; "inverse_time": lr0 / (1 + lr_gamma * e)
    # with e the 0-based epoch; "none": constant.
    lr_schedule: str = "plateau"
    lr_gamma: float = 0.5
    lr_step_epochs: int = 10
    lr_patience: int = 2
    # Early stopping: stop after `patience` epochs without val_loss < best - min_delta.
    patience: int = 5
    min_delta: float = 0.0
    seed: int = 0
    device: str = "auto"
    # Cap on training batches per epoch (a seeded random subset of the samples each epoch).
    max_batches_per_epoch: int | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
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
        defaults = cls()
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in known:
                raise ConfigError(key, "unknown training option")
            kwargs[key] = _coerce(key, value, getattr(defaults, key))
        return cls(**kwargs)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Convert `value` to the type of the option's default, or raise ConfigError."""
    key = f"training.{name}"
    if name == "max_batches_per_epoch" and value is None:
        return None
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ConfigError(key, f"must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"must be a number, got {value!r}") from None
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    # int options (and max_batches_per_epoch, whose default is None)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ConfigError(key, f"must be an integer, got {value!r}")
    return int(value)


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (CPU and CUDA) global random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - models and datasets may use the global RNG
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@dataclass
class TrainResult:
    """Outcome of `fit`: per-epoch history and the best epoch's weights (on CPU)."""

    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    best_state: dict[str, torch.Tensor]
    stopped_early: bool


@dataclass
class _Progress:
    """Everything besides model/optimiser/scheduler that a resumed run must continue from."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    stopped_early: bool = False

    @property
    def epoch(self) -> int:
        return len(self.history)

    def result(self) -> TrainResult:
        if self.best_state is None:
            raise LstfillError("training produced no epoch with a finite validation loss")
        return TrainResult(
            history=[dict(h) for h in self.history],
            best_epoch=self.best_epoch,
            best_val_loss=self.best_val_loss,
            best_state=self.best_state,
            stopped_early=self.stopped_early,
        )


def fit(
    model: torch.nn.Module,
    train_data: Dataset,
    val_data: Dataset,
    loss_fn: Callable[..., torch.Tensor],
    cfg: TrainConfig,
    workdir: str | Path,
    *,
    progress: bool = True,
    logger: logging.Logger | None = None,
) -> TrainResult:
    """Train `model` with Adam and early stopping; resume from `workdir/last.pt` if present.

    Dataset items are tuples of tensors, the last being the target: the loss of a batch is
    `loss_fn(model(*inputs), target)`. After every epoch `workdir/last.pt` holds the complete
    training state and `workdir/best.pt` the best weights so far. On return the model holds the
    weights of the epoch with the lowest validation loss.
    """
    log = logger or logging.getLogger("lstfill.training")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    for name, data in (("training", train_data), ("validation", val_data)):
        if len(data) == 0:  # type: ignore[arg-type]
            raise LstfillError(f"the {name} set is empty")

    seed_everything(cfg.seed)
    model.to(device)
    optimiser = torch.optim.Adam(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    scheduler = _make_scheduler(optimiser, cfg)
    state = _Progress()

    last_path = workdir / _LAST
    if last_path.exists():
        ckpt = _read_last(last_path)
        _check_fingerprint(ckpt["config"], cfg, workdir)
        state = _Progress(
            history=ckpt["history"],
            best_epoch=ckpt["best_epoch"],
            best_val_loss=ckpt["best_val_loss"],
            best_state=ckpt["best_state"],
            bad_epochs=ckpt["bad_epochs"],
            stopped_early=ckpt["stopped_early"],
        )
        if state.stopped_early or state.epoch >= cfg.epochs:
            log.info(
                "training in %s already finished at epoch %d (best epoch %d, val loss %.5g)",
                workdir,
                state.epoch,
                state.best_epoch,
                state.best_val_loss,
            )
            result = state.result()
            model.load_state_dict(result.best_state)
            return result
        model.load_state_dict(ckpt["model"])
        optimiser.load_state_dict(ckpt["optimiser"])
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"])
        log.info("resuming from epoch %d", state.epoch)

    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        start = time.perf_counter()
        lr = float(optimiser.param_groups[0]["lr"])
        loader = _train_loader(train_data, cfg, epoch, device)
        train_loss = _train_epoch(
            model, loader, loss_fn, optimiser, device, epoch, cfg.epochs, progress
        )
        val_loss = _evaluate(model, val_data, loss_fn, cfg, device)
        if not math.isfinite(val_loss):
            raise LstfillError(
                f"validation loss is {val_loss} at epoch {epoch}: check the validation inputs "
                "for NaN or infinite values"
            )
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val_loss)
            else:
                scheduler.step()

        improved = val_loss < state.best_val_loss - cfg.min_delta
        if improved:
            state.best_val_loss = val_loss
            state.best_epoch = epoch
            state.best_state = _cpu_state(model)
            state.bad_epochs = 0
            _atomic_save(state.best_state, workdir / _BEST)
        else:
            state.bad_epochs += 1
        seconds = time.perf_counter() - start
        state.history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": lr,
                "seconds": seconds,
            }
        )
        state.stopped_early = state.bad_epochs >= cfg.patience
        log.info(
            "epoch %d/%d  train loss %.5g  val loss %.5g%s  lr %.3g  %.1f s",
            epoch,
            cfg.epochs,
            train_loss,
            val_loss,
            " *" if improved else "",
            lr,
            seconds,
        )
        _atomic_save(
            {
                "model": _cpu_state(model),
                "optimiser": optimiser.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "epoch": epoch,
                "history": state.history,
                "best_state": state.best_state,
                "best_val_loss": state.best_val_loss,
                "best_epoch": state.best_epoch,
                "bad_epochs": state.bad_epochs,
                "stopped_early": state.stopped_early,
                "rng": _get_rng_state(),
                "config": dataclasses.asdict(cfg),
            },
            last_path,
        )
        if state.stopped_early:
            log.info(
                "early stopping after epoch %d: no improvement for %d epochs",
                epoch,
                state.bad_epochs,
            )
            break

    result = state.result()
    model.load_state_dict(result.best_state)
    log.info("best epoch %d, val loss %.5g", result.best_epoch, result.best_val_loss)
    return result


def _make_scheduler(
    optimiser: torch.optim.Optimizer, cfg: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """The learning-rate scheduler named by cfg.lr_schedule (None for "none")."""
    sched = torch.optim.lr_scheduler
    if cfg.lr_schedule == "plateau":
        return sched.ReduceLROnPlateau(
            optimiser, mode="min", factor=cfg.lr_gamma, patience=cfg.lr_patience
        )
    if cfg.lr_schedule == "step":
        return sched.StepLR(optimiser, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "inverse_time":
        gamma = cfg.lr_gamma
        return sched.LambdaLR(optimiser, lambda e: 1.0 / (1.0 + gamma * e))
    return None


def _epoch_seed(seed: int, epoch: int) -> int:
    """Seed of an epoch's shuffling, derived from (seed, epoch) so that resuming needs no state."""
    return (seed * 1_000_003 + epoch) % 2**63


class _TensorBatches:
    """Batches of a TensorDataset in a given order, gathered by one indexing per tensor (much
    faster than collating single items when the samples are small)."""

    def __init__(self, data: TensorDataset, order: torch.Tensor, batch_size: int) -> None:
        self.tensors = data.tensors
        self.chunks = torch.split(order, batch_size)

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Any:
        for idx in self.chunks:
            yield tuple(t[idx] for t in self.tensors)


def _train_loader(
    data: Dataset, cfg: TrainConfig, epoch: int, device: torch.device
) -> DataLoader | _TensorBatches:
    """A loader over a seeded random order (and subset, with max_batches_per_epoch) of `data`."""
    generator = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch))
    order = torch.randperm(len(data), generator=generator)  # type: ignore[arg-type]
    if cfg.max_batches_per_epoch is not None:
        order = order[: cfg.max_batches_per_epoch * cfg.batch_size]
    if isinstance(data, TensorDataset) and cfg.num_workers == 0:
        return _TensorBatches(data, order, cfg.batch_size)
    return DataLoader(
        data,
        batch_size=cfg.batch_size,
        sampler=order.tolist(),
        num_workers=cfg.num_workers,
        generator=generator,
        pin_memory=device.type == "cuda",
    )


def _to_device(batch: Any, device: torch.device) -> list[Any]:
    """The batch as a list of its elements, tensors moved to `device`."""
    if not isinstance(batch, list | tuple) or len(batch) < 2:
        raise LstfillError(
            "dataset items must be tuples (inputs..., target) with at least two elements"
        )
    non_blocking = device.type == "cuda"
    return [
        t.to(device, non_blocking=non_blocking) if isinstance(t, torch.Tensor) else t for t in batch
    ]


def _scalar(loss: torch.Tensor) -> torch.Tensor:
    """The loss as a scalar (mean of a per-element loss)."""
    return loss if loss.ndim == 0 else loss.mean()


def _train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    loss_fn: Callable[..., torch.Tensor],
    optimiser: torch.optim.Optimizer,
    device: torch.device,
    epoch: int,
    epochs: int,
    progress: bool,
) -> float:
    """One pass of optimisation; returns the sample-weighted mean training loss."""
    model.train()
    total, count = 0.0, 0
    bar = tqdm(
        loader,
        desc=f"epoch {epoch}/{epochs}",
        unit="batch",
        leave=False,
        disable=not progress,
        mininterval=0.1 if sys.stderr.isatty() else 15.0,  # keep rule logs short
    )
    for i, batch in enumerate(bar):
        *inputs, target = _to_device(batch, device)
        optimiser.zero_grad(set_to_none=True)
        loss = _scalar(loss_fn(model(*inputs), target))
        value = float(loss.item())
        if not math.isfinite(value):
            raise LstfillError(
                f"training loss is {value} at epoch {epoch}, batch {i + 1}: check the training "
                "inputs and targets for NaN or infinite values, or lower the learning rate"
            )
        loss.backward()
        optimiser.step()
        n = len(target)
        total += value * n
        count += n
        bar.set_postfix(loss=f"{total / count:.4g}", refresh=False)
    bar.close()
    return total / count


def _evaluate(
    model: torch.nn.Module,
    data: Dataset,
    loss_fn: Callable[..., torch.Tensor],
    cfg: TrainConfig,
    device: torch.device,
) -> float:
    """Sample-weighted mean loss over the whole of `data`, in eval mode."""
    loader: DataLoader | _TensorBatches
    if isinstance(data, TensorDataset) and cfg.num_workers == 0:
        loader = _TensorBatches(data, torch.arange(len(data)), cfg.batch_size)
    else:
        loader = DataLoader(
            data,
            batch_size=cfg.batch_size,
            shuffle=False,
            num_workers=cfg.num_workers,
            pin_memory=device.type == "cuda",
        )
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            *inputs, target = _to_device(batch, device)
            n = len(target)
            total += float(_scalar(loss_fn(model(*inputs), target)).item()) * n
            count += n
    return total / count


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's state dict on the CPU, unaffected by further training."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file beside `path`, then rename it into place."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def _get_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _read_last(path: Path) -> dict[str, Any]:
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


def _check_fingerprint(stored: Mapping[str, Any], cfg: TrainConfig, workdir: Path) -> None:
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


def plot_training_curve(history: list[dict[str, float]], path: str | Path, title: str = "") -> None:
    """PNG of train/val loss per epoch (log y if positive), best epoch marked, lr on a twin axis."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    if history:
        epochs = np.array([h["epoch"] for h in history], dtype=float)
        train = np.array([h["train_loss"] for h in history], dtype=float)
        val = np.array([h["val_loss"] for h in history], dtype=float)
        lr = np.array([h["lr"] for h in history], dtype=float)
        ax.plot(epochs, train, "o-", ms=3, label="train loss")
        ax.plot(epochs, val, "s-", ms=3, label="validation loss")
        losses = np.concatenate([train, val])
        finite = losses[np.isfinite(losses)]
        if finite.size and (finite > 0).all():
            ax.set_yscale("log")
        if np.isfinite(val).any():
            best = int(np.nanargmin(np.where(np.isfinite(val), val, np.inf)))
            ax.axvline(epochs[best], color="grey", ls=":", lw=1)
            ax.plot(
                epochs[best],
                val[best],
                "*",
                ms=12,
                color="C3",
                label=f"best: epoch {epochs[best]:.0f}, {val[best]:.4g}",
            )
        ax_lr = ax.twinx()
        ax_lr.step(epochs, lr, where="mid", color="C2", alpha=0.6, lw=1)
        ax_lr.set_ylabel("learning rate", color="C2")
        ax_lr.tick_params(axis="y", colors="C2")
        if (lr > 0).all() and lr.max() / lr.min() > 10:
            ax_lr.set_yscale("log")
        ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, "no epochs", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)


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
    _atomic_save(
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
