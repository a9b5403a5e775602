"""Fusion (EFAST and its baselines) on a real fine/coarse NDVI set: the withheld-scene protocol.

    python benchmarks/fusion_real.py DATA_DIR --json OUT.json [--thin-coarse N]
        [--sigma 20] [--D 15] [--max-days 30] [--composite-days 10] [--composite-D 20]
        [--smooth-px 1] [--min-importance 0.02] [--tolerance 0.05]

DATA_DIR has the layout of ../shared/data/fusion_landsat_modis (see its README.md):
``fine/YYYY-MM-DD.tif`` (fine NDVI, float32, NaN = cloud / no data), ``coarse/YYYY-MM-DD.tif``
(coarse NDVI on a grid nesting exactly in the fine grid: same CRS and origin, one coarse pixel =
``ratio`` x ``ratio`` fine pixels, coarse shape = ceil(fine shape / ratio)) and ``meta.json``
(``ratio``, ``targets``: the fine dates to withhold, ``coarse_kind``). The nesting is checked for
every coarse file; a file that does not nest is named in the error.

Protocol (:func:`lstfill.fusion.evaluate.withheld_protocol`): each target date is removed from
the fine inputs and its day is predicted from the other fine dates and every coarse date by
``model_efast`` and every baseline (:func:`lstfill.fusion.evaluate.predict_all`, the same
inputs); NDVI is scored (:func:`lstfill.fusion.evaluate.scores`) on the target's valid pixels
where every method has a value, the same pixels for every method. Method-level figures are the
means over the target dates (``n`` summed). Day numbers are days since 1970-01-01; the coarse
series may be daily, 16-day composites or a few dates (``--thin-coarse N`` keeps every N-th
coarse date, to show that behaviour on a daily set). On tiny grids SSIM can be NaN (no pixel
with a fully valid 11 x 11 window): it is printed as ``nan`` and written as null.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lstfill.errors import InputError  # noqa: E402
from lstfill.fusion.baselines import BASELINES  # noqa: E402
from lstfill.fusion.coarse import CoarseSeries  # noqa: E402
from lstfill.fusion.evaluate import METRICS, MODEL, withheld_protocol  # noqa: E402
from lstfill.fusion.inputs import FineInput, day_number  # noqa: E402
from lstfill.fusion.method import EfastSettings  # noqa: E402
from lstfill.fusion.nesting import coarse_shape  # noqa: E402
from lstfill.io import write_json  # noqa: E402
from lstfill.ranges import check_range  # noqa: E402
from lstfill.tables import method_table  # noqa: E402

BAND = "ndvi"
DATE_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.tif$")
# EfastSettings fields set from the command line (ratio comes from meta.json)
OPTIONS = {
    "sigma": "--sigma",
    "D": "--D",
    "max_days": "--max-days",
    "composite_days": "--composite-days",
    "composite_D": "--composite-D",
    "smooth_px": "--smooth-px",
    "min_importance": "--min-importance",
    "tolerance": "--tolerance",
}


class LayoutError(ValueError):
    """DATA_DIR does not have the fusion_real layout, or its grids do not nest."""


@dataclasses.dataclass
class Grid:
    crs: Any
    transform: Any
    shape: tuple[int, int]


@dataclasses.dataclass
class FusionSet:
    ratio: int
    targets: list[str]
    coarse_kind: str
    scenes: list[FineInput]
    coarse: CoarseSeries
    coarse_dates: list[str]
    fine_grid: Grid


# ------------------------------------------------------------------------------ data


def _dated_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise LayoutError(f"{folder} is missing (expected {folder.name}/YYYY-MM-DD.tif)")
    files = {}
    for path in sorted(folder.iterdir()):
        match = DATE_FILE.match(path.name)
        if match:
            files[match.group(1)] = path
    if not files:
        raise LayoutError(f"{folder} holds no YYYY-MM-DD.tif file")
    return files


def _read(path: Path) -> tuple[np.ndarray, Grid]:
    """NDVI (NaN at nodata) and grid of one file; LayoutError when unreadable or when its
    values are not NDVI (lstfill.ranges: outside -1..1 beyond the tolerated share)."""
    try:
        with rasterio.open(path) as src:
            data = src.read(1).astype(np.float32)
            if src.nodata is not None and not math.isnan(src.nodata):
                data[data == src.nodata] = np.nan
            grid = Grid(src.crs, src.transform, (src.height, src.width))
        return check_range(data, BAND, path), grid
    except rasterio.errors.RasterioIOError as exc:
        raise LayoutError(f"{path}: cannot read: {exc}") from exc
    except InputError as exc:
        raise LayoutError(str(exc)) from exc


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol


def check_nesting(path: Path, coarse: Grid, fine: Grid, ratio: int) -> None:
    """LayoutError naming `path` unless the coarse grid nests exactly in the fine grid."""
    f, c = fine.transform, coarse.transform
    px = max(abs(f.a), abs(f.e))
    problems = []
    if coarse.crs != fine.crs:
        problems.append(f"CRS {coarse.crs} differs from the fine CRS {fine.crs}")
    if not (_close(c.c, f.c, 1e-3 * px) and _close(c.f, f.f, 1e-3 * px)):
        problems.append(f"origin ({c.c}, {c.f}) differs from the fine origin ({f.c}, {f.f})")
    for name, cv, fv in (("width", c.a, f.a), ("height", c.e, f.e)):
        if not _close(cv, ratio * fv, 1e-6 * abs(ratio * fv)):
            problems.append(f"pixel {name} {cv} is not {ratio} x the fine {fv}")
    if not (_close(c.b, 0, 1e-9 * px) and _close(c.d, 0, 1e-9 * px)) or f.b or f.d:
        problems.append("rotated grids are not supported")
    expected = coarse_shape(fine.shape, ratio)
    if coarse.shape != expected:
        problems.append(f"shape {coarse.shape} is not ceil({fine.shape} / {ratio}) = {expected}")
    if problems:
        raise LayoutError(
            f"{path}: the coarse grid does not nest in the fine grid at ratio {ratio}: "
            + "; ".join(problems)
        )


def load_set(data_dir: str | Path, thin_coarse: int = 1) -> FusionSet:
    """The fine scenes (FineInput, one NDVI band) and the coarse series of DATA_DIR."""
    data_dir = Path(data_dir)
    meta_path = data_dir / "meta.json"
    if not meta_path.is_file():
        raise LayoutError(
            f"{data_dir} lacks meta.json (expected meta.json, fine/YYYY-MM-DD.tif, "
            "coarse/YYYY-MM-DD.tif)"
        )
    meta = json.loads(meta_path.read_text())
    for key in ("ratio", "targets"):
        if key not in meta:
            raise LayoutError(f"{meta_path} lacks {key!r}")
    ratio = int(meta["ratio"])
    fine_files = _dated_files(data_dir / "fine")
    coarse_files = _dated_files(data_dir / "coarse")
    scenes, grid = [], None
    for date, path in fine_files.items():
        data, g = _read(path)
        if grid is None:
            grid = g
        elif (g.crs, g.transform, g.shape) != (grid.crs, grid.transform, grid.shape):
            raise LayoutError(f"{path}: its grid differs from the other fine scenes'")
        day = dt.date.fromisoformat(date)
        scenes.append(FineInput(day_number(day), data[None], name=date, date=day))
    assert grid is not None
    if thin_coarse < 1:
        raise LayoutError(f"--thin-coarse must be >= 1, got {thin_coarse}")
    dates = sorted(coarse_files)[::thin_coarse]
    stack = []
    for date in dates:
        data, g = _read(coarse_files[date])
        check_nesting(coarse_files[date], g, grid, ratio)
        stack.append(data)
    days = [day_number(dt.date.fromisoformat(d)) for d in dates]
    coarse = CoarseSeries(np.array(days), np.stack(stack)[:, None])
    targets = [str(t) for t in meta["targets"]]
    missing = [t for t in targets if t not in fine_files]
    if missing:
        raise LayoutError(f"{meta_path}: target(s) {missing} have no fine/DATE.tif")
    return FusionSet(
        ratio=ratio,
        targets=targets,
        coarse_kind=str(meta.get("coarse_kind", "?")),
        scenes=scenes,
        coarse=coarse,
        coarse_dates=dates,
        fine_grid=grid,
    )


# ------------------------------------------------------------------------------ protocol


def settings_from(args: argparse.Namespace, ratio: int) -> EfastSettings:
    return EfastSettings(ratio=ratio, **{f: getattr(args, f) for f in OPTIONS})


def run(data: FusionSet, settings: EfastSettings) -> dict[str, Any]:
    """The withheld protocol's scores: methods (means), targets (per date), coverage."""
    index = {s.name: i for i, s in enumerate(data.scenes)}
    result = withheld_protocol(
        data.scenes, data.coarse, settings, [BAND], [index[t] for t in data.targets]
    )
    targets = {date: dict(t["bands"][BAND]) for date, t in result["targets"].items()}
    return {
        "methods": result["bands"][BAND],
        "targets": targets,
        "coverage": result["coverage"],
        "inputs": {date: t["inputs"] for date, t in result["targets"].items()},
    }


def _fmt(value: float, width: int = 8, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return f"{'nan':>{width}s}"
    return f"{value:{width}.{digits}f}"


def print_table(
    methods: dict[str, dict[str, float]], title: str, coverage: dict[str, float] | None = None
) -> None:
    """One row per method; `coverage` (share of the target's valid pixels the method has a
    value on, before the common mask) as a last column when given."""
    rows = {}
    for name, m in methods.items():
        vals = [_fmt(m[k]) for k in METRICS[:-1]]
        n = m["n"]
        vals.append(f"{int(n):8d}" if math.isfinite(n) else f"{'nan':>8s}")
        if coverage:
            vals.append(_fmt(coverage[name], digits=3))
        rows[name] = vals
    columns = [*METRICS, "cover"] if coverage else METRICS
    print(f"\n{title}\n" + method_table(rows, columns, name_width=18, width=8))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument(
        "--thin-coarse", type=int, default=1, metavar="N", help="keep every N-th coarse date"
    )
    defaults = {f.name: f.default for f in dataclasses.fields(EfastSettings)}
    for field, flag in OPTIONS.items():
        parser.add_argument(flag, dest=field, type=float, default=defaults[field])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = load_set(args.data_dir, args.thin_coarse)
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = settings_from(args, data.ratio)
    kind = data.coarse_kind
    if args.thin_coarse > 1:
        kind = f"{kind}, every {args.thin_coarse}th date kept"
    h, w = data.fine_grid.shape
    ch, cw = coarse_shape((h, w), data.ratio)
    print(
        f"{args.data_dir}: {len(data.scenes)} fine scenes {h}x{w}, {len(data.coarse_dates)} "
        f"coarse dates {ch}x{cw} ({kind}), ratio {data.ratio}, targets {data.targets}",
        flush=True,
    )
    res = run(data, settings)
    order = [MODEL, *BASELINES]
    methods = {m: res["methods"][m] for m in order}
    title = "withheld scenes, NDVI, mean over target dates (n summed)"
    print_table(methods, title, res["coverage"])
    if len(res["targets"]) > 1:
        for date, per in res["targets"].items():
            inputs = res["inputs"][date]
            print_table({m: per[m] for m in order}, f"target {date} ({inputs} inputs)")
    out = {
        "methods": methods,
        "targets": {d: {m: per[m] for m in order} for d, per in res["targets"].items()},
        "coverage": res["coverage"],
        "settings": {**dataclasses.asdict(settings), "thin_coarse": args.thin_coarse},
        "data": {
            "data_dir": str(args.data_dir),
            "ratio": data.ratio,
            "coarse_kind": kind,
            "fine_shape": [h, w],
            "coarse_shape": [ch, cw],
            "fine_dates": [s.name for s in data.scenes],
            "coarse_dates": data.coarse_dates,
            "targets": data.targets,
            "inputs": res["inputs"],
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
