"""Benchmark: what issue 18's checks cost. The content fingerprint of a training's inputs
(sha256 of every file it reads), the physical-range check every reader applies, and loading a
model checkpoint safely (`weights_only=True`) against the old unrestricted load.

Hashes the demo's cubes where `make demo` has written them (results/demo), otherwise synthetic
files of the given size; the checkpoint is a synthetic one of 8 dense 512 x 512 layers.

    python benchmarks/reliability_cost.py
    python benchmarks/reliability_cost.py --mb 500 --values 50000000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lstfill.ranges import check_range  # noqa: E402
from lstfill.training.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from lstfill.training.workdir import input_digests  # noqa: E402

DEMO = Path("results/demo")


def _best(fn: Callable[[], object], repeat: int = 3) -> float:
    """Fastest of `repeat` runs, in seconds (the others pay for cold caches)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _inputs(tmp: Path, mb: int) -> tuple[list[Path], str]:
    cubes = sorted((DEMO / "cubes").glob("*.nc"))
    if cubes:
        return cubes, f"{len(cubes)} demo cubes"
    rng = np.random.default_rng(0)
    files = []
    for i in range(8):
        f = tmp / f"cube{i}.nc"
        f.write_bytes(rng.bytes(mb * 2**20 // 8))
        files.append(f)
    return files, "8 synthetic files"


def _checkpoint(tmp: Path) -> tuple[Path, str]:
    """A synthetic checkpoint, 8 dense 512 x 512 layers (8 MiB of weights): reading the demo's
    own would move one of an older format aside."""
    path = tmp / "model.pt"
    net = torch.nn.Sequential(*[torch.nn.Linear(512, 512) for _ in range(8)])
    save_checkpoint(
        path,
        model_name="bench",
        model_kwargs={},
        state_dict=net.state_dict(),
        normalisation={"mean": np.zeros(26, np.float32), "std": np.ones(26, np.float32)},
        features={"numeric": ["b04"] * 26},
        config={"training": {"epochs": 1}},
    )
    return path, "synthetic 8 x 512^2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="synthetic input size without a demo")
    parser.add_argument("--values", type=int, default=10_000_000, help="values per range check")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files, what = _inputs(Path(tmp), args.mb)
        mb = sum(f.stat().st_size for f in files) / 2**20
        sec = _best(lambda: input_digests(files))
        rows.append(("fingerprint (sha256)", f"{what}, {mb:.0f} MiB", sec, f"{mb / sec:.0f} MiB/s"))

        lst = np.random.default_rng(1).uniform(260, 320, args.values).astype(np.float32)
        lst[::7] = np.nan
        sec = _best(lambda: check_range(lst, "lst", "bench"))
        rate = args.values / sec / 1e6
        rows.append(
            ("range check, all in range", f"{args.values:.0e} LST values", sec, f"{rate:.0f} M/s")
        )
        stray = lst.copy()
        stray[::1000] = 20.0  # 0.1 % stray: masked, counted
        sec = _best(lambda: check_range(stray, "lst", "bench"))
        rate = args.values / sec / 1e6
        rows.append(
            ("range check, 0.1 % stray", f"{args.values:.0e} LST values", sec, f"{rate:.0f} M/s")
        )

        path, what = _checkpoint(Path(tmp))
        size = f"{what}, {path.stat().st_size / 2**20:.1f} MiB"
        sec = _best(lambda: load_checkpoint(path), repeat=5)
        rows.append(("checkpoint, safe load", size, sec, ""))
        sec = _best(lambda: torch.load(path, map_location="cpu", weights_only=False), repeat=5)
        rows.append(("checkpoint, unrestricted load (old)", size, sec, ""))

    print(f"{'what':<36} {'input':<34} {'seconds':>9} {'rate':>12}")
    for name, what, sec, rate in rows:
        print(f"{name:<36} {what:<34} {sec:>9.4f} {rate:>12}")


if __name__ == "__main__":
    main()
