"""Tests of the shared training loop on a tiny linear-regression problem."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lstfill.device import resolve_device
from lstfill.errors import ConfigError, InputError, LstfillError
from lstfill.training.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from lstfill.training.curves import plot_training_curve
from lstfill.training.loop import fit
from lstfill.training.settings import TrainConfig
from lstfill.training.workdir import reset_stale_workdir

W_TRUE = torch.tensor([[1.5, -2.0, 0.5]])
B_TRUE = 0.3


def _regression(n: int, seed: int, noise: float = 0.01) -> TensorDataset:
    """y = x @ W_TRUE.T + B_TRUE + noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ W_TRUE.T + B_TRUE + noise * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def _model(seed: int = 123) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(3, 1)


def _cfg(**kwargs) -> TrainConfig:
    base = {"epochs": 3, "batch_size": 32, "learning_rate": 0.05, "device": "cpu"}
    return TrainConfig(**(base | kwargs))


def _fit(model: nn.Module, workdir: Path, cfg: TrainConfig, train=None, val=None, loss=None):
    return fit(
        model,
        train if train is not None else _regression(256, 1),
        val if val is not None else _regression(128, 2),
        loss or nn.functional.mse_loss,
        cfg,
        workdir,
        progress=False,
    )


def _losses(history: list[dict[str, float]]) -> list[tuple[float, float, float]]:
    return [(h["train_loss"], h["val_loss"], h["lr"]) for h in history]


def test_learning_recovers_weights(tmp_path: Path) -> None:
    model = _model()
    cfg = _cfg(epochs=25, patience=25, learning_rate=0.05)
    result = _fit(model, tmp_path, cfg, train=_regression(512, 1))
    vals = [h["val_loss"] for h in result.history]
    assert vals[-1] < vals[0] / 10
    assert result.best_val_loss < 1e-3
    assert result.best_val_loss == min(vals)
    torch.testing.assert_close(model.weight.detach(), W_TRUE, atol=0.03, rtol=0)
    assert abs(float(model.bias.detach()) - B_TRUE) < 0.03
    assert set(result.history[0]) == {"epoch", "train_loss", "val_loss", "lr", "seconds"}
    assert [h["epoch"] for h in result.history] == list(range(1, len(vals) + 1))
    assert all(v.device.type == "cpu" for v in result.best_state.values())
    assert (tmp_path / "last.pt").is_file()
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    torch.testing.assert_close(best["weight"], result.best_state["weight"])


def test_same_seed_same_history(tmp_path: Path) -> None:
    a = _fit(_model(), tmp_path / "a", _cfg(seed=7))
    b = _fit(_model(), tmp_path / "b", _cfg(seed=7))
    c = _fit(_model(), tmp_path / "c", _cfg(seed=8))
    assert _losses(a.history) == _losses(b.history)
    assert _losses(a.history) != _losses(c.history)


def _diverging(model: nn.Linear, workdir: Path, cfg: TrainConfig):
    """Trained towards w = +2 from w = 0 but validated against w = -2.

    Every epoch moves w further from -2, so the validation loss rises after the first epoch.
    """
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    nn.init.zeros_(model.weight)
    return _fit(model, workdir, cfg, TensorDataset(x, 2 * x), TensorDataset(x, -2 * x))


def test_early_stopping_loads_best_state(tmp_path: Path) -> None:
    model = nn.Linear(1, 1, bias=False)
    cfg = _cfg(epochs=20, patience=2, learning_rate=0.05, lr_schedule="none", batch_size=16)
    result = _diverging(model, tmp_path, cfg)
    assert result.stopped_early
    assert len(result.history) == 3
    assert result.best_epoch == 1
    vals = [h["val_loss"] for h in result.history]
    assert vals == sorted(vals)
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert float(last["model"]["weight"]) > float(result.best_state["weight"]) > 0
    torch.testing.assert_close(model.weight.detach(), result.best_state["weight"])


def test_plateau_schedule_reduces_lr_when_val_stalls(tmp_path: Path) -> None:
    cfg = _cfg(
        epochs=4,
        patience=10,
        learning_rate=0.05,
        lr_schedule="plateau",
        lr_patience=1,
        lr_gamma=0.5,
    )
    result = _diverging(nn.Linear(1, 1, bias=False), tmp_path, cfg)
    # best at epoch 1; epochs 2 and 3 without improvement exceed lr_patience=1 -> halve
    assert [h["lr"] for h in result.history] == pytest.approx([0.05, 0.05, 0.05, 0.025])


@pytest.mark.parametrize("schedule", ["plateau", "step"])
def test_resume_matches_uninterrupted_run(tmp_path: Path, caplog, schedule: str) -> None:
    opts = {"lr_schedule": schedule, "lr_step_epochs": 1}
    full = _fit(_model(), tmp_path / "full", _cfg(epochs=3, **opts))
    first = _fit(_model(), tmp_path / "cut", _cfg(epochs=2, **opts))
    assert len(first.history) == 2
    with caplog.at_level(logging.INFO, logger="lstfill.training"):
        resumed = _fit(_model(seed=999), tmp_path / "cut", _cfg(epochs=3, **opts))
    assert "resuming from epoch 2" in caplog.text
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for got, want in zip(_losses(resumed.history), _losses(full.history), strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    assert resumed.best_val_loss == pytest.approx(full.best_val_loss, abs=1e-6)
    assert resumed.best_epoch == full.best_epoch


def test_finished_run_returns_without_training(tmp_path: Path) -> None:
    first = _fit(_model(), tmp_path, _cfg(epochs=2))
    mtime = (tmp_path / "last.pt").stat().st_mtime_ns

    def no_training(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise AssertionError("loss_fn called: the finished run was trained again")

    model = _model(seed=5)
    again = _fit(model, tmp_path, _cfg(epochs=2), loss=no_training)
    assert again.history == first.history
    assert again.best_val_loss == first.best_val_loss
    assert (tmp_path / "last.pt").stat().st_mtime_ns == mtime
    torch.testing.assert_close(model.weight.detach(), first.best_state["weight"])


def test_changed_options_refuse_to_resume(tmp_path: Path) -> None:
    _fit(_model(), tmp_path, _cfg(epochs=1))
    with pytest.raises(LstfillError, match="delete the folder"):
        _fit(_model(), tmp_path, _cfg(epochs=2, learning_rate=0.01))


def test_nan_input_is_a_clear_error(tmp_path: Path) -> None:
    train = _regression(64, 1)
    train.tensors[0][5, 1] = float("nan")
    with pytest.raises(LstfillError, match="epoch 1"):
        _fit(_model(), tmp_path, _cfg(), train=train)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("step", [0.01, 0.01, 0.005, 0.005, 0.0025]),
        ("inverse_time", [0.01, 0.01 / 2, 0.01 / 3, 0.01 / 4, 0.01 / 5]),
        ("none", [0.01] * 5),
    ],
)
def test_lr_schedules(tmp_path: Path, schedule: str, expected: list[float]) -> None:
    cfg = _cfg(
        epochs=5,
        patience=10,
        learning_rate=0.01,
        lr_schedule=schedule,
        lr_gamma=0.5 if schedule == "step" else 1.0,
        lr_step_epochs=2,
    )
    result = _fit(_model(), tmp_path, cfg)
    assert [h["lr"] for h in result.history] == pytest.approx(expected)


def test_max_batches_per_epoch(tmp_path: Path) -> None:
    model = _model()
    calls: list[bool] = []

    def counting_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls.append(model.training)
        return nn.functional.mse_loss(pred, target)

    _fit(model, tmp_path, _cfg(epochs=2, max_batches_per_epoch=3), loss=counting_loss)
    assert calls.count(True) == 2 * 3
    assert calls.count(False) == 2 * 4  # validation: 128 samples in batches of 32


def test_config_from_dict_and_device() -> None:
    cfg = TrainConfig.from_dict({"epochs": 4, "learning_rate": "1e-3", "device": "cpu"})
    assert cfg.epochs == 4
    assert cfg.learning_rate == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig.from_dict({"epoch": 4})
    with pytest.raises(ConfigError, match="lr_schedule"):
        TrainConfig.from_dict({"lr_schedule": "cosine"})
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig.from_dict({"batch_size": 2.5})
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="training.device"):
            resolve_device("cuda")


def test_checkpoint_round_trip_and_bad_file(tmp_path: Path) -> None:
    model = _model()
    path = tmp_path / "models" / "mlp.pt"
    save_checkpoint(
        path,
        model_name="linear",
        model_kwargs={"in_features": 3, "out_features": 1},
        state_dict=model.state_dict(),
        normalisation={"x_mean": [0.0, 0.0, 0.0]},
        features={"inputs": ["a", "b", "c"]},
        config={"epochs": 3},
    )
    ckpt = load_checkpoint(path)
    assert ckpt["format"] == CHECKPOINT_FORMAT == "lstfill-checkpoint-2"
    assert ckpt["model_name"] == "linear"
    assert ckpt["extra"] == {}
    assert ckpt["lstfill_version"] != "unknown"
    assert ckpt["created"].endswith("+00:00")
    rebuilt = nn.Linear(**ckpt["model_kwargs"])
    rebuilt.load_state_dict(ckpt["state_dict"])
    torch.testing.assert_close(rebuilt.weight, model.weight)
    assert not list(path.parent.glob(".*"))  # no temporary left behind

    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    not_ours = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2)}, not_ours)
    with pytest.raises(InputError, match="not an lstfill model checkpoint"):
        load_checkpoint(not_ours)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="cannot read"):
        load_checkpoint(garbage)


def test_training_curve_png(tmp_path: Path) -> None:
    result = _fit(_model(), tmp_path / "run", _cfg(epochs=3))
    png = tmp_path / "plots" / "curve.png"
    plot_training_curve(result.history, png, title="linear")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty.png"
    plot_training_curve([], empty)
    assert empty.read_bytes()[:4] == b"\x89PNG"


def test_reset_stale_workdir_keeps_a_resumable_run_only(tmp_path):
    work = tmp_path / "w"
    fp = {"dataset": {"mean": 1.0}, "training": {"epochs": 2, "batch_size": 8}}
    reset_stale_workdir(work, fp)
    (work / "last.pt").write_text("state")
    reset_stale_workdir(work, {**fp, "training": {"epochs": 5, "batch_size": 8}})
    assert (work / "last.pt").exists()  # more epochs: the same run continues
    reset_stale_workdir(work, {**fp, "training": {"epochs": 5, "batch_size": 16}})
    assert not (work / "last.pt").exists() and work.is_dir()  # other options: afresh
    (work / "last.pt").write_text("state")
    reset_stale_workdir(work, {**fp, "dataset": {"mean": 2.0}})
    assert not (work / "last.pt").exists()
