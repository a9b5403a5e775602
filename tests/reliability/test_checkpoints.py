"""Checkpoints and resume states load without running code: a `.pt` file holding pickled code is
refused (and the code never runs), one cut short is moved aside so a rerun of the workflow trains
it again, one an older lstfill wrote with numpy inside is refused with a clear message, and a
damaged resume state makes training start afresh."""

from __future__ import annotations

import builtins
import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SNAKEMAKE, copy_run, job_counts, run_snakemake
from torch import nn
from torch.utils.data import TensorDataset

from lstfill.errors import InputError
from lstfill.training.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from lstfill.training.loop import fit
from lstfill.training.settings import TrainConfig
from lstfill.training.storage import plain
from lstfill.training.workdir import read_resume_state


class Payload:
    """Unpickling this object creates the file `target` (by `open`, pickled as `io.open`): a
    stand-in for any code."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return builtins.open, (self.target, "w")


def _checkpoint(path: Path, **extra) -> Path:
    """A real checkpoint of a small linear model, with numpy values among its extras."""
    torch.manual_seed(0)
    save_checkpoint(
        path,
        model_name="linear",
        model_kwargs={"in_features": 3, "out_features": 1},
        state_dict=nn.Linear(3, 1).state_dict(),
        normalisation={"mean": np.float64(1.5), "std": np.arange(3, dtype=np.float32)},
        features={"inputs": ("a", "b", "c")},
        config={"source": Path("results/x.nc")},
        extra={"pattern": np.eye(4, dtype=np.float32), "k": np.float32(2.0), **extra},
    )
    return path


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return TensorDataset(x, x.sum(1, keepdim=True))


def _fit(workdir: Path, epochs: int):
    torch.manual_seed(1)
    cfg = TrainConfig(epochs=epochs, batch_size=16, learning_rate=0.05, device="cpu")
    return fit(nn.Linear(3, 1), _data(64, 0), _data(32, 1), nn.MSELoss(), cfg, workdir)


# --- what goes in, what comes back -------------------------------------------------------------


def test_a_checkpoint_holds_plain_values_and_gives_numpy_back(tmp_path):
    path = _checkpoint(tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)  # nothing but tensors and plain values
    assert raw["format"] == CHECKPOINT_FORMAT
    assert raw["config"] == {"source": "results/x.nc"}
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt["extra"]["pattern"], np.ndarray)
    assert ckpt["extra"]["pattern"].dtype == np.float32
    np.testing.assert_array_equal(ckpt["extra"]["pattern"], np.eye(4))
    assert ckpt["extra"]["k"] == 2.0 and type(ckpt["extra"]["k"]) is float
    assert ckpt["normalisation"]["std"].dtype == np.float32
    assert ckpt["features"] == {"inputs": ("a", "b", "c")}
    rebuilt = nn.Linear(**ckpt["model_kwargs"])
    rebuilt.load_state_dict(ckpt["state_dict"])


def test_an_object_lstfill_cannot_store_is_named_when_saving(tmp_path):
    with pytest.raises(TypeError, match=r"m\.pt\['extra'\]\['model'\]: cannot store a Linear"):
        plain({"extra": {"model": nn.Linear(1, 1)}}, "m.pt")


def test_a_resume_state_loads_safely_and_resumes(tmp_path, caplog):
    _fit(tmp_path, epochs=1)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    with caplog.at_level(logging.INFO, logger="lstfill.training"):
        result = _fit(tmp_path, epochs=2)
    assert "resuming from epoch 1" in caplog.text
    assert [h["epoch"] for h in result.history] == [1, 2]


# --- a file holding code -----------------------------------------------------------------------


@pytest.mark.parametrize("with_numpy", [False, True], ids=["plain", "among-numpy"])
def test_a_checkpoint_holding_code_is_refused_and_the_code_never_runs(tmp_path, with_numpy):
    target = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    content = {"format": CHECKPOINT_FORMAT, "model_name": "linear", "extra": Payload(target)}
    if with_numpy:  # an older lstfill checkpoint with code slipped in is no legacy one
        content["normalisation"] = {"mean": np.zeros(3)}
    torch.save(content, path)
    with pytest.raises(InputError, match=r"model\.pt: not an lstfill model checkpoint") as err:
        load_checkpoint(path)
    assert "io.open" in str(err.value) and "refused" in str(err.value)
    assert not target.exists()
    assert path.exists()  # not ours to move: the user decides what to do with it


def test_a_resume_state_holding_code_is_refused_and_the_code_never_runs(tmp_path):
    target = tmp_path / "pwned"
    work = tmp_path / "work"
    _fit(work, epochs=1)
    state = torch.load(work / "last.pt", weights_only=True)
    torch.save({**state, "history": Payload(target)}, work / "last.pt")
    with pytest.raises(InputError, match="not an lstfill resume state.*refused"):
        read_resume_state(work / "last.pt")
    with pytest.raises(InputError, match=r"io\.open"):
        _fit(work, epochs=2)
    assert not target.exists()


# --- a file cut short --------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.98], ids=["empty", "half", "end-missing"])
def test_a_truncated_checkpoint_is_moved_aside_for_the_rerun(tmp_path, keep):
    path = _checkpoint(tmp_path / "cnn.pt")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match="truncated") as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "moved to cnn.pt.corrupt" in message and "rerun the workflow" in message
    assert not path.exists()
    assert (tmp_path / "cnn.pt.corrupt").exists()
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(path)


def test_a_truncated_resume_state_makes_training_start_afresh(tmp_path, caplog):
    _fit(tmp_path, epochs=1)
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:200])
    assert read_resume_state(last) is None
    assert not last.exists()
    _fit(tmp_path, epochs=1)
    last.write_bytes(last.read_bytes()[:200])
    with caplog.at_level(logging.INFO, logger="lstfill.training"):
        result = _fit(tmp_path, epochs=2)
    assert "truncated or damaged" in caplog.text and "starts afresh" in caplog.text
    assert "resuming" not in caplog.text
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert torch.load(last, weights_only=True)["epoch"] == 2


# --- files written by older lstfill versions ---------------------------------------------------


def test_a_checkpoint_with_numpy_inside_from_an_older_lstfill_is_refused_with_advice(tmp_path):
    path = tmp_path / "cnn.pt"
    torch.save(  # what lstfill wrote before checkpoints held plain values only
        {
            "format": "lstfill-checkpoint-1",
            "model_name": "linear",
            "state_dict": nn.Linear(3, 1).state_dict(),
            "normalisation": {"mean": np.float64(1.0)},
            "extra": {"pattern": np.zeros((2, 2), np.float32)},
        },
        path,
    )
    with pytest.raises(InputError, match="written by an older lstfill") as err:
        load_checkpoint(path)
    assert "moved to cnn.pt.legacy; rerun the workflow to retrain it" in str(err.value)
    assert (tmp_path / "cnn.pt.legacy").exists() and not path.exists()


def test_an_older_plain_checkpoint_still_loads_and_a_newer_format_is_named(tmp_path):
    path = tmp_path / "m.pt"
    base = {"model_name": "linear", "state_dict": {}, "normalisation": {"mean": 1.0}}
    torch.save({"format": "lstfill-checkpoint-1", **base}, path)
    assert load_checkpoint(path)["normalisation"] == {"mean": 1.0}
    torch.save({"format": "lstfill-checkpoint-9", **base}, path)
    with pytest.raises(InputError, match="another lstfill version.*lstfill-checkpoint-9"):
        load_checkpoint(path)


def test_an_older_resume_state_with_numpy_inside_makes_training_start_afresh(tmp_path, caplog):
    _fit(tmp_path, epochs=1)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    del state["format"]
    state["rng"]["numpy"] = np.random.get_state()  # noqa: NPY002 - as older versions saved it
    torch.save(state, tmp_path / "last.pt")
    with caplog.at_level(logging.INFO, logger="lstfill.training"):
        result = _fit(tmp_path, epochs=1)
    assert "written by an older lstfill" in caplog.text
    assert [h["epoch"] for h in result.history] == [1]


# --- the workflow retrains a checkpoint moved aside --------------------------------------------


def test_the_workflow_retrains_a_truncated_checkpoint(tiny_run, tmp_path):
    """A prediction that reads a truncated checkpoint fails and moves it aside; the rerun of the
    workflow then trains it again (and nothing else), and the prediction succeeds."""
    run = copy_run(tiny_run, tmp_path / "run")
    before = _scheduled(run)  # empty, unless the code changed since the tiny run
    model = run / "results/tiny/superres/model/sifnn1.pt"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    product = sorted((run / "results/tiny/superres/sharpened/sifnn1").glob("*.tif"))[0]
    product.unlink()  # a product still to make: its prediction reads the checkpoint
    target = str(product.relative_to(run))
    cmd = [*SNAKEMAKE, "-d", str(run), "--cores", "1", "--workflow-profile", "none", target]
    failed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert failed.returncode != 0
    logs = (run / "logs").rglob("*.log")
    log = failed.stdout + failed.stderr + "".join(p.read_text() for p in logs)
    assert "truncated" in log and "moved to sifnn1.pt.corrupt; rerun the workflow" in log
    assert not model.exists() and model.with_name("sifnn1.pt.corrupt").exists()

    after = _scheduled(run)
    assert before.get("superres_train", 0) == 0 and after["superres_train"] == 1
    for rule in ("gapfill_train", "downscale_train", "superres_dataset"):
        assert after.get(rule, 0) == before.get(rule, 0), rule
    run_snakemake(run, target)
    assert load_checkpoint(model)["format"] == CHECKPOINT_FORMAT
    assert product.exists()


def _scheduled(workdir: Path) -> dict[str, int]:
    """Jobs per rule of a dry run of the default target."""
    out = run_snakemake(workdir, "--dry-run")
    return {} if "Nothing to be done" in out else job_counts(out)
