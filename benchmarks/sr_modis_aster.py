"""MODIS LST super-resolution (1 km -> 250 m, x4, NDVI-guided) scored against real ASTER LST.

    python benchmarks/sr_modis_aster.py DATA_DIR --json OUT.json [--checkpoint PATH ...]
        [--quick] [--threads 2]

DATA_DIR is the MODIS/ASTER pair set described in its README (../shared/data/sr_modis_aster):
pairs/NNN/{lst_1km.tif (64x64), ndvi_250m.tif (256x256), aster_lst.tif, meta.json} and
manifest.csv. The protocol (placement of every method on the LST-aligned fine grid, scoring on
the ASTER pixels, the README's reference rows) is `lstfill.superres.aster`'s.

Methods, the job's method table (`lstfill.superres.evaluate.all_methods`): `model_sifnn1` and
`model_sifnn2` (lstfill's SIF-NN-SR U-Net, trained here or loaded with --checkpoint; before
predicting, each shifts the NDVI by the sub-pixel offset, 0.5 fine px steps up to 1 px, whose
PSF-degraded version correlates best with the coarse LST: `lstfill.superres.registration`,
self-supervised, grid fixed a priori; a checkpoint without that setting gets it),
`baseline_bicubic`, `baseline_tsharp` (NDVI basis, LST >= 270 K in the fit) and `baseline_dms`
(Gao et al. 2012 as its reference implementation pyDMS configures it: 10 bagged leaf-linear
trees, local models on windows of 15 coarse pixels blended with the global model), plus
`baseline_dms_global` (the same, global model only). On the 42 pairs, mean RMSE (pairs below
bicubic's 2.464 K): `model_sifnn2` 2.398 K (37/42; 2.419 K, 35/42 without the NDVI
registration), `model_sifnn1` 2.582 K (6/42; 2.629 K, 1/42 without), `baseline_dms` 2.528 K
(16/42), `baseline_dms_global` 2.561 K (7/42), `baseline_tsharp` 2.625 K (4/42); pyDMS itself
scores 2.527 and 2.560 K under this protocol.

Training (without --checkpoint, `lstfill.superres.aster_training`) is self-supervised on the
MODIS LST and the aligned MODIS NDVI of DATA_DIR only; **the models never see ASTER**, which is
read only for scoring. The trained checkpoints are saved next to OUT.json (OUT_stem_sifnn1.pt,
...) so they can be re-scored with --checkpoint. Everything is seeded (split, weight
initialisation, crops, DMS), so a rerun gives the same numbers on the same machine and library
versions.

Runtime: the two trainings are sized for the 15-minute budget on 2 CPU cores
(torch.set_num_threads(--threads)). On the project's 2-core machine, otherwise idle: about 70 s
per variant, and 3 minutes for the whole benchmark including the prediction and scoring of the
42 pairs by every method; a busy machine takes several times longer (at load 5: 26 minutes,
of which DMS took 44 s windowed and 6 s global for the 42 pairs). The NDVI registration search
adds about 0.3-0.7 s per pair and model (25 shifts, one batched PSF blur). --quick (tiny U-Net,
one epoch of one batch; DMS keeps its settings) is a smoke test.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lstfill.io import write_json  # noqa: E402
from lstfill.superres.aster import (  # noqa: E402
    FACTOR,
    FILES,
    MIN_T,
    MTF,
    PLACEMENT,
    load_pairs,
    score_pairs,
)
from lstfill.superres.aster_training import SEED, load_models, train_models  # noqa: E402
from lstfill.superres.dms import dms  # noqa: E402
from lstfill.superres.evaluate import all_methods  # noqa: E402
from lstfill.tables import method_table  # noqa: E402

# pyDMS's reference configuration (run_pyDMS.py): 10 bagged trees, local models on windows of 15
# coarse pixels blended with the global model; `baseline_dms_global` is the global model alone.
DMS_SETTINGS: dict[str, Any] = {"n_estimators": 10, "moving_window": 15, "seed": SEED}
DMS_GLOBAL = "baseline_dms_global"
TSHARP_SETTINGS: dict[str, Any] = {"basis": "ndvi", "min_t": 270.0}
# The two in the vocabulary of the job's `superres.baselines` block, for its method table.
BASELINES_CONFIG = {
    "baselines": {
        "tsharp_basis": TSHARP_SETTINGS["basis"],
        "min_t": TSHARP_SETTINGS["min_t"],
        "dms_estimators": DMS_SETTINGS["n_estimators"],
        "dms_moving_window": DMS_SETTINGS["moving_window"],
    }
}


def print_table(methods: dict[str, dict], refs: dict[str, dict]) -> None:
    cols = ("rmse", "ubrmse", "bias", "psnr", "ssim", "gssim", "frr", "energy", "wins")
    keys = ("rmse", "rmse_debiased", "bias", "psnr", "ssim", "gssim", "frr", "energy_residual")
    rows = {}
    for group in (methods, refs):
        for name, m in group.items():
            vals = [f"{m[f'{k}_mean']:7.3f}" for k in keys]
            wins = m.get("wins_vs_bicubic")
            vals.append(f"{wins:7.2f}" if wins is not None else f"{'-':>7s}")
            rows[name] = vals
    print("\n" + method_table(rows, cols, name_width=36, width=7))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument(
        "--checkpoint",
        type=Path,
        nargs="+",
        default=None,
        help="score these saved models instead of training",
    )
    parser.add_argument("--quick", action="store_true", help="tiny models, a smoke test")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    pairs = load_pairs(args.data_dir)
    if not pairs:
        print(
            f"error: no MODIS/ASTER pair under {args.data_dir}/pairs "
            f"(expected pairs/NNN/{{{','.join(FILES)}}})",
            file=sys.stderr,
        )
        return 2
    print(f"{args.data_dir}: {len(pairs)} pairs, placement {PLACEMENT}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    if args.checkpoint:
        models, model_info = load_models(args.checkpoint)
    else:
        models, model_info = train_models(pairs, args.json, args.quick)
    # the job's method table: the models on the CPU, the baselines with this benchmark's settings
    methods = all_methods(
        models, BASELINES_CONFIG, FACTOR, "cpu", n_jobs=args.threads, seed=DMS_SETTINGS["seed"]
    )
    global_dms = {**DMS_SETTINGS, "moving_window": 0, "n_jobs": args.threads}
    methods[DMS_GLOBAL] = lambda lst, ndvi: dms(lst, ndvi, FACTOR, **global_dms)
    rows, summary, refs = score_pairs(pairs, methods)
    elapsed = time.perf_counter() - start
    print_table(summary, refs)
    print(f"total {elapsed:.0f} s")
    out = {
        "n_pairs": len(pairs),
        "placement": PLACEMENT,
        "methods": summary,
        "reference": refs,
        "pairs": rows,
        "config": {
            "data_dir": str(args.data_dir),
            "quick": args.quick,
            "threads": args.threads,
            "seed": SEED,
            "factor": FACTOR,
            "min_t_aster": MIN_T,
            "mtf": MTF,
            "losses": {k: m.loss_cfg.to_dict() for k, m in models.items()},
            "tsharp": TSHARP_SETTINGS,
            "dms": DMS_SETTINGS,
            "dms_global": {**DMS_SETTINGS, "moving_window": 0},
            "models": model_info,
            "training_seconds": {
                k: v["seconds"] for k, v in model_info.get("variants", {}).items()
            },
            "seconds_total": elapsed,
        },
    }
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")
    for name in ("lstfill.training", "lstfill.superres.aster_training"):
        logging.getLogger(name).setLevel(logging.INFO)  # one line per epoch and per variant
    sys.exit(main())
