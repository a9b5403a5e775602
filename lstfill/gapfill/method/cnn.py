"""The gap-fill CNN of Kustura et al. (2025, Remote Sens. 17(2):318): a pixelwise regression from
the 5×5 feature patch around a pixel to its LST.

Two branches see the same window: numeric features (Sentinel-2 bands and indices, INCA
meteorology, elevation, cyclic time) through convolutions with batch normalisation, categorical
land-cover layers (one-hot) through convolutions without it. Each branch stacks valid
convolutions whose kernel shrinks the window to 1×1 (for a 5×5 patch: four 2×2 layers, as in the
authors' code), with dropout after every second layer; the flattened branches are concatenated
into a dense layer and a linear output. The loss is the mean absolute error, the optimiser Adam.

Because every layer is a valid convolution and the head acts per position, the same network run
over a whole padded scene gives each pixel exactly the value its own patch would: prediction is
one fully-convolutional pass per row chunk instead of one forward per patch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from lstfill.device import resolve_device
from lstfill.errors import InputError
from lstfill.gapfill.dataset import PatchDataset, split_patches
from lstfill.gapfill.features import (
    FeatureSet,
    Normaliser,
    StoredPattern,
    categorical_stack,
    check_features,
    numeric_stack,
)
from lstfill.gapfill.inputs import FillResult, LstSeries
from lstfill.gapfill.model import PatchCNN, _kernel, enable_mc_dropout
from lstfill.gapfill.residuals import correct_residuals
from lstfill.training.loop import TrainResult, fit
from lstfill.training.rng import seed_everything
from lstfill.training.settings import TrainConfig

log = logging.getLogger(__name__)
MODEL_NAME = "gapfill_patch_cnn"


@torch.no_grad()
def predict_map(
    model: PatchCNN,
    numeric: np.ndarray,
    categorical: np.ndarray,
    *,
    chunk_rows: int = 256,
    mc_passes: int = 0,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised prediction and MC-dropout spread for every pixel of a (C, H, W) scene.

    The prediction is the deterministic pass (dropout off); `mc_passes` > 1 dropout passes give
    the spread (0 otherwise). Rows are processed `chunk_rows` at a time with a halo of half a
    patch, so memory grows with the chunk, not with the scene.
    """
    r = model.patch // 2
    _, h, w = numeric.shape
    mode = "reflect" if min(h, w) > r else "edge"
    num = np.pad(numeric, ((0, 0), (r, r), (r, r)), mode=mode)
    cat = np.pad(categorical, ((0, 0), (r, r), (r, r)), mode=mode)
    mean = np.empty((h, w), dtype=np.float32)
    std = np.zeros((h, w), dtype=np.float32)
    for r0 in range(0, h, chunk_rows):
        r1 = min(h, r0 + chunk_rows)
        xn = torch.from_numpy(np.ascontiguousarray(num[None, :, r0 : r1 + 2 * r])).to(device)
        xc = torch.from_numpy(np.ascontiguousarray(cat[None, :, r0 : r1 + 2 * r])).to(device)
        model.eval()
        mean[r0:r1] = model.forward_map(xn, xc).cpu().numpy()
        if mc_passes > 1:
            # dropout samples give the spread only; seeded so a product is reproducible
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + r0)
                enable_mc_dropout(model)
                runs = torch.stack([model.forward_map(xn, xc) for _ in range(mc_passes)])
            std[r0:r1] = runs.std(0).cpu().numpy()
    model.eval()
    return mean, std


# distance-to-visible bins (pixels) of the error model behind the prediction intervals
_DIST_EDGES_PX = (0.0, 1.5, 3.0, 6.0, 12.0, 24.0, np.inf)


class CnnFiller:
    """Train the patch CNN on a series and fill any acquisition of the same grid.

    The raw CNN sees no LST of the acquisition it fills. Its prediction is then tied to the
    acquisition's visible pixels by residual interpolation (`residual_mode`, the same step the
    learned baselines get), and given a 90 % interval: MC-dropout spread combined with the
    validation error at the pixel's distance to the nearest clear pixel, scaled so 90 % of the
    validation acquisitions' artificially hidden pixels fall inside.
    """

    name: ClassVar[str] = MODEL_NAME

    def __init__(
        self,
        features: FeatureSet,
        *,
        patch: int = 5,
        filters: Sequence[int] = (128, 128, 512, 512),
        dense: int = 128,
        dropout: float = 0.1,
        train: TrainConfig | dict[str, Any] | None = None,
        max_per_acquisition: int = 2000,
        mc_passes: int = 8,
        residual_mode: str = "smooth",
        sigma_px: float = 8.0,
        chunk_rows: int = 256,
        seed: int = 0,
    ) -> None:
        self.features = features
        self.hyper = {
            "patch": patch,
            "filters": list(filters),
            "dense": dense,
            "dropout": dropout,
            "max_per_acquisition": max_per_acquisition,
            "mc_passes": mc_passes,
            "residual_mode": residual_mode,
            "sigma_px": sigma_px,
            "chunk_rows": chunk_rows,
            "seed": seed,
        }
        if isinstance(train, TrainConfig):
            self.train_cfg = train
        else:
            self.train_cfg = TrainConfig.from_dict({"seed": seed, **(train or {})})
        _kernel(patch, len(filters))
        self.model: PatchCNN | None = None
        self.norm: Normaliser | None = None
        self.patterns: tuple[np.ndarray, np.ndarray] | None = None  # (night, day)
        self.calibration: dict[str, Any] | None = None

    # -- training ---------------------------------------------------------------------------
    def build_samples(
        self,
        series: LstSeries,
        train_index: np.ndarray,
        val_index: np.ndarray,
        history_allowed: np.ndarray,
        block_map: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Training and validation patches (from their own dates and, with `block_map`, blocks),
        their normalisation and the training LST patterns (see `split_patches`)."""
        check_features(series, self.features)
        return split_patches(
            series,
            train_index,
            val_index,
            history_allowed,
            self.features,
            size=self.hyper["patch"],
            max_per_acquisition=self.hyper["max_per_acquisition"],
            rng=np.random.default_rng(self.hyper["seed"]),
            blocks=block_map,
        )

    def new_model(self, norm: Normaliser) -> PatchCNN:
        return PatchCNN(
            len(self.features.numeric),
            norm.n_classes(self.features.categorical),
            patch=self.hyper["patch"],
            filters=self.hyper["filters"],
            dense=self.hyper["dense"],
            dropout=self.hyper["dropout"],
        )

    def fit_samples(
        self, samples: dict[str, Any], workdir: str | Path, *, progress: bool = True
    ) -> TrainResult:
        """Train on prepared samples (MAE loss on the standardised target, Adam)."""
        self.norm = samples["norm"]
        self.patterns = samples["patterns"]
        seed_everything(self.train_cfg.seed)  # initial weights from the config's seed
        self.model = self.new_model(self.norm)
        result = fit(
            self.model,
            PatchDataset(samples["train"], self.norm, self.features),
            PatchDataset(samples["val"], self.norm, self.features),
            nn.L1Loss(),
            self.train_cfg,
            workdir,
            progress=progress,
        )
        self.model.eval()
        return result

    def fit(
        self,
        data: tuple[dict[str, Any], LstSeries, np.ndarray],
        workdir: str | Path,
        *,
        progress: bool = True,
    ) -> TrainResult:
        """Train, then calibrate the intervals. `data` is (samples, series, val_index): the
        patches (`build_samples`'s, or the dataset file's), and the series whose `val_index`
        acquisitions calibrate the intervals."""
        samples, series, val_index = data
        result = self.fit_samples(samples, workdir, progress=progress)
        self.calibrate(series, np.asarray(val_index))
        return result

    # -- prediction -------------------------------------------------------------------------
    def _require_fitted(self) -> tuple[PatchCNN, Normaliser]:
        if self.model is None or self.norm is None:
            raise RuntimeError("CnnFiller is not trained")
        return self.model, self.norm

    def predict(self, series: LstSeries, t: int) -> tuple[np.ndarray, np.ndarray]:
        """The CNN's own LST (K) and MC-dropout spread (K) at every pixel of acquisition t."""
        model, norm = self._require_fitted()
        check_features(series, self.features)
        history = None
        if "lst_pattern" in self.features.numeric:
            assert self.patterns is not None
            history = StoredPattern(series, self.patterns[1], self.patterns[0])
        num = numeric_stack(series, t, self.features.numeric, history)
        cat = categorical_stack(series, self.features.categorical)
        mean, std = predict_map(
            model,
            norm.numeric(num, self.features.numeric),
            norm.categorical(cat, self.features.categorical),
            chunk_rows=self.hyper["chunk_rows"],
            mc_passes=self.hyper["mc_passes"],
            device=next(model.parameters()).device,
            seed=self.hyper["seed"],
        )
        return norm.untarget(mean), (std * norm.target_std).astype(np.float32)

    def fill(self, series: LstSeries, t: int) -> FillResult:
        """Prediction at every land pixel of t, tied to its visible pixels, with a 90 % interval."""
        return self._fill(series, t)[0]

    def _fill(self, series: LstSeries, t: int) -> tuple[FillResult, np.ndarray]:
        pred, spread = self.predict(series, t)
        visible = series.valid[t]
        out = correct_residuals(
            pred,
            np.where(visible, series.lst[t], np.nan),
            visible,
            mode=self.hyper["residual_mode"],
            sigma_px=self.hyper["sigma_px"],
        )
        half = None
        if self.calibration is not None:
            half = self._halfwidth(spread, visible)
        land = series.land
        result = FillResult(
            lst=np.where(land, out, np.nan).astype(np.float32),
            halfwidth90=None if half is None else np.where(land, half, np.nan),
        )
        return result, spread

    def _halfwidth(self, spread: np.ndarray, visible: np.ndarray) -> np.ndarray:
        from lstfill.gapfill.evaluate import distance_to_visible

        cal = self.calibration
        assert cal is not None
        dist = distance_to_visible(visible, 1.0)
        b = np.clip(np.digitize(dist, cal["edges"][1:-1]), 0, len(cal["rms"]) - 1)
        sigma = np.sqrt(spread.astype(np.float64) ** 2 + np.asarray(cal["rms"])[b] ** 2)
        return (cal["k"] * sigma).astype(np.float32)

    def calibrate(self, series: LstSeries, index: np.ndarray, n_donors: int = 3) -> None:
        """Fit the interval error model on artificial gaps of the acquisitions `index`.

        Each acquisition gets the real cloud masks of up to `n_donors` other acquisitions; the
        hidden pixels' errors by distance to the nearest clear pixel set the per-bin RMS, and
        the factor k makes 90 % of |error| / sigma fall inside.
        """
        from lstfill.gapfill.evaluate import distance_to_visible, hidden_mask

        self.calibration = None
        vf = series.valid_fraction()
        donors = np.flatnonzero((vf >= 0.2) & (vf <= 0.9))
        rng = np.random.default_rng(self.hyper["seed"] + 1)
        errs, spreads, dists = [], [], []
        for t in index:
            if vf[t] < 0.3:
                continue
            cands = donors[donors != t]
            for d in rng.choice(cands, size=min(n_donors, cands.size), replace=False):
                hidden = hidden_mask(series.valid[t], series.valid[d], series.land)
                if hidden.sum() < 10:
                    continue
                hs = series.with_hidden(int(t), hidden)
                res, spread = self._fill(hs, int(t))
                errs.append(res.lst[hidden] - series.lst[t][hidden])
                spreads.append(spread[hidden])
                dists.append(distance_to_visible(hs.valid[t], 1.0)[hidden])
        if not errs:
            log.warning("no validation acquisition to calibrate intervals on; none will be given")
            return
        err, spread, dist = (np.concatenate(a).astype(np.float64) for a in (errs, spreads, dists))
        edges = np.asarray(_DIST_EDGES_PX)
        overall = float(np.sqrt(np.mean(err**2)))
        rms = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            sel = (dist >= lo) & (dist < hi)
            rms.append(float(np.sqrt(np.mean(err[sel] ** 2))) if sel.sum() >= 50 else overall)
        b = np.clip(np.digitize(dist, edges[1:-1]), 0, len(rms) - 1)
        sigma = np.sqrt(spread**2 + np.asarray(rms)[b] ** 2)
        k = float(np.quantile(np.abs(err) / sigma, 0.9))
        self.calibration = {
            "edges": [float(e) for e in edges],
            "rms": rms,
            "k": k,
            "n": int(err.size),
            "val_rmse": overall,
        }
        log.info("interval calibration on %d validation pixels: k=%.2f rms=%s", err.size, k, rms)

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything prediction needs, for lstfill.training.save_checkpoint."""
        model, norm = self._require_fitted()
        assert self.patterns is not None
        return {
            "model_name": MODEL_NAME,
            "model_kwargs": {
                "n_numeric": len(self.features.numeric),
                "n_classes": norm.n_classes(self.features.categorical),
                "patch": self.hyper["patch"],
                "filters": self.hyper["filters"],
                "dense": self.hyper["dense"],
                "dropout": self.hyper["dropout"],
            },
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "normalisation": norm.to_dict(),
            "features": self.features.to_dict(),
            "config": {"hyper": self.hyper, "train": asdict(self.train_cfg)},
            "extra": {
                "pattern_night": self.patterns[0],
                "pattern_day": self.patterns[1],
                "calibration": self.calibration,
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str | torch.device = "auto") -> CnnFiller:
        """Rebuild a trained filler from a checkpoint dict, its network on `device`."""
        if state.get("model_name") != MODEL_NAME:
            raise InputError(
                state.get("path", "(checkpoint)"),
                f"not a gap-fill CNN checkpoint (model {state.get('model_name')!r})",
            )
        cfg = state["config"]
        hyper = dict(cfg["hyper"])
        filler = cls(FeatureSet.from_dict(state["features"]), train=cfg["train"], **hyper)
        filler.norm = Normaliser.from_dict(state["normalisation"])
        filler.model = PatchCNN(**state["model_kwargs"])
        filler.model.load_state_dict(state["state_dict"])
        filler.model.to(resolve_device(device)).eval()
        extra = state["extra"]
        filler.patterns = (np.asarray(extra["pattern_night"]), np.asarray(extra["pattern_day"]))
        filler.calibration = extra.get("calibration")
        return filler
