"""`fit`: the training loop every lstfill model shares (patch CNN, context U-Net, SIF-NN-SR, MLP).

One loop keeps all models on the same footing: seeded Adam training with a learning-rate
schedule, early stopping on the validation loss, the whole training state saved after every epoch
so that an interrupted Snakemake job resumes where it stopped (and ends with the same result),
and the best epoch's weights loaded into the model at the end.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from lstfill.device import resolve_device
from lstfill.errors import LstfillError
from lstfill.training.rng import get_rng_state, seed_everything, set_rng_state
from lstfill.training.settings import TrainConfig
from lstfill.training.workdir import (
    BEST,
    LAST,
    RESUME_FORMAT,
    atomic_save,
    check_resume_options,
    read_resume_state,
)


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

    last_path = workdir / LAST
    ckpt = read_resume_state(last_path) if last_path.exists() else None
    if ckpt is not None:
        check_resume_options(ckpt["config"], cfg, workdir)
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
        set_rng_state(ckpt["rng"])
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
            atomic_save(state.best_state, workdir / BEST)
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
        atomic_save(
            {
                "format": RESUME_FORMAT,
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
                "rng": get_rng_state(),
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
