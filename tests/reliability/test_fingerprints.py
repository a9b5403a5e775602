"""A training work folder is reused only when everything the training reads is unchanged: the
content of its input files (validation data included), the config keys of its step and the file
formats. Changing only the validation patches trains afresh; an unchanged rerun reuses the
finished training, and more epochs continue it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fakes.methods import LinearMethod
from torch.utils.data import TensorDataset

from lstfill.errors import InputError
from lstfill.method import train_method
from lstfill.splits import TEST, TRAIN, VAL
from lstfill.superres import steps as superres_steps
from lstfill.superres.dataset import PatchPairs, read_patch_pairs, write_patch_pairs
from lstfill.training.checkpoint import load_checkpoint
from lstfill.training.loop import TrainResult
from lstfill.training.settings import TrainConfig
from lstfill.training.workdir import input_digests

torch.set_num_threads(1)


class NpyLinearMethod(LinearMethod):
    """The linear method trained on arrays read from .npy files (training, validation)."""

    def __init__(self, epochs: int) -> None:
        super().__init__(
            TrainConfig(
                epochs=epochs, batch_size=16, learning_rate=0.05, lr_schedule="none", device="cpu"
            )
        )

    def fit(self, data: Any, workdir: str | Path, *, progress: bool = True) -> TrainResult:
        return super().fit([_dataset(np.load(p)) for p in data], workdir, progress=progress)


def _dataset(x: np.ndarray) -> TensorDataset:
    t = torch.from_numpy(x.astype(np.float32)[:, None])
    return TensorDataset(t, 3.0 * t - 1.0)


def _train(tmp_path: Path, files: list[Path], epochs: int, caplog) -> TrainResult:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lstfill.training"):
        return train_method(
            NpyLinearMethod(epochs),
            files,
            {"training": {"epochs": epochs, "lr": 0.05}},
            tmp_path / "work",
            tmp_path / "m.pt",
            tmp_path / "curve.png",
            title="linear",
            inputs=files,
            progress=False,
        )


def test_only_changed_validation_data_trains_afresh(tmp_path, caplog):
    rng = np.random.default_rng(0)
    files = [tmp_path / "train.npy", tmp_path / "val.npy"]
    np.save(files[0], rng.uniform(-1, 1, 128))
    np.save(files[1], rng.uniform(-1, 1, 32))
    first = _train(tmp_path, files, 2, caplog)
    assert [h["epoch"] for h in first.history] == [1, 2]
    stamp = json.loads((tmp_path / "work/fingerprint.json").read_text())
    assert [name for name, _ in stamp["inputs"]] == ["train.npy", "val.npy"]
    assert stamp["formats"]["checkpoint"] == load_checkpoint(tmp_path / "m.pt")["format"]

    again = _train(tmp_path, files, 2, caplog)  # unchanged: the finished run is reused
    assert "already finished at epoch 2" in caplog.text and "afresh" not in caplog.text
    assert again.history == first.history

    more = _train(tmp_path, files, 3, caplog)  # more epochs: the run continues
    assert "resuming from epoch 2" in caplog.text
    assert more.history[:2] == first.history and len(more.history) == 3

    np.save(files[1], rng.uniform(-1, 1, 32))  # other validation data, same training data
    fresh = _train(tmp_path, files, 3, caplog)
    assert "starting afresh" in caplog.text and "(changed: inputs)" in caplog.text
    assert "resuming" not in caplog.text and "already finished" not in caplog.text
    assert [h["epoch"] for h in fresh.history] == [1, 2, 3]
    assert fresh.history[0]["train_loss"] == first.history[0]["train_loss"]  # same start...
    assert fresh.history[0]["val_loss"] != first.history[0]["val_loss"]  # ...other validation


# --- a job: super-resolution, whose fingerprint once held only the normalisation ---------------

SR_CFG = {
    "crop": None,
    "model": {"channels": [4, 8], "residual": True},
    "psf_mtf": 0.1,
    "variants": {"sifnn1": {"alpha": 0.99, "gamma": -0.5}},
    "training": {"epochs": 2, "batch_size": 4, "seed": 0, "device": "cpu"},
    "tiles": {"tile": 16, "overlap": 4},
}


def _patch_pairs(seed: int) -> PatchPairs:
    """Nine 8×8 coarse LST patches (×4 NDVI): six train, two val, one test."""
    rng = np.random.default_rng(seed)
    ndvi = np.clip(rng.normal(0.5, 0.15, (9, 32, 32)), 0, 1).astype(np.float32)
    coarse = ndvi.reshape(9, 8, 4, 8, 4).mean(axis=(2, 4))
    lst = (310 - 15 * coarse + rng.normal(0, 0.3, coarse.shape)).astype(np.float32)
    split = np.array([TRAIN] * 6 + [VAL] * 2 + [TEST], dtype=np.int8)
    days = np.datetime64("2023-07-01") + np.arange(9).astype("timedelta64[D]")
    return PatchPairs(lst, ndvi, split, days, np.zeros((9, 2), np.int32), 4)


def _sr_train(root: Path, caplog) -> list[dict[str, float]]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lstfill.training"):
        superres_steps.train(
            root / "patches.nc",
            SR_CFG,
            "sifnn1",
            root / "m.pt",
            root / "curve.png",
            root / "work",
            progress=False,
        )
    return load_checkpoint(root / "m.pt")["extra"]["history"]


def test_superres_retrains_when_only_its_validation_patches_change(tmp_path, caplog):
    pairs = _patch_pairs(0)
    norm = {"lst_mean": 300.0, "lst_std": 2.0, "ndvi_mean": 0.5, "ndvi_std": 0.15}
    write_patch_pairs(pairs, norm, tmp_path / "patches.nc")
    first = _sr_train(tmp_path, caplog)
    assert [h["epoch"] for h in first] == [1, 2]
    stamp = (tmp_path / "work/fingerprint.json").read_text()

    assert _sr_train(tmp_path, caplog) == first  # unchanged: reused without another epoch
    assert "already finished at epoch 2" in caplog.text

    val = pairs.split == VAL
    pairs.lst[val] += 1.5  # the validation patches change; statistics and count do not
    write_patch_pairs(pairs, norm, tmp_path / "patches.nc")
    assert read_patch_pairs(tmp_path / "patches.nc")[1] == norm
    second = _sr_train(tmp_path, caplog)
    assert "starting afresh" in caplog.text and "(changed: inputs)" in caplog.text
    assert "already finished" not in caplog.text
    assert [h["epoch"] for h in second] == [1, 2]
    assert second[0]["val_loss"] != first[0]["val_loss"]
    new_stamp = json.loads((tmp_path / "work/fingerprint.json").read_text())
    old_stamp = json.loads(stamp)
    assert {k for k in old_stamp if old_stamp[k] != new_stamp[k]} == {"inputs"}


def test_input_digests_follow_content_not_time_and_name_a_missing_input(tmp_path):
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"one")
    single = tmp_path / "split.json"
    single.write_text("{}")
    first = input_digests([folder, single])
    assert [name for name, _ in first] == ["samples", "split.json"]
    single.write_text("{}")  # rewritten, same content
    assert input_digests([folder, single]) == first
    (folder / "a.bin").write_bytes(b"two")
    assert input_digests([folder, single])[0] != first[0]
    with pytest.raises(InputError, match="missing.nc: training input does not exist"):
        input_digests([tmp_path / "missing.nc"])
