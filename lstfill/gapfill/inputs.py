"""An LST time series on one grid with its covariates: the one input every gap-fill method reads.

Two layouts load into it: lstfill's per-acquisition datacubes (`results/{region}/cubes/*.nc`) and a
single NetCDF holding `lst(time, y, x)` with static layers (the real MODIS benchmark cubes). Methods
never open files themselves, so the evaluation protocol can blank a target's hidden pixels in one
place and be sure no method sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine

from lstfill.errors import InputError
from lstfill.grid import Grid
from lstfill.io import check_file
from lstfill.ranges import check_range, has_range

# Cube variables that describe the LST observation itself, never covariates.
_LST_VARIABLES = {"lst", "lst_err", "lst_valid", "cloud", "gap_code"}
# Static variables whose values are classes, not quantities.
CATEGORICAL_STATIC = {"water", "biome", "landcover", "land_cover"}


@dataclass
class LstSeries:
    """LST (K) of T acquisitions on one grid, NaN where not observed clear, plus covariates.

    `dynamic` holds per-acquisition covariates (T, H, W), `static` per-pixel layers (H, W),
    `land` the pixels a filled product must cover (not water, not outside the data).
    """

    times: np.ndarray  # datetime64[s], (T,)
    lst: np.ndarray  # float32 (T, H, W)
    grid: Grid
    dynamic: dict[str, np.ndarray] = field(default_factory=dict)
    static: dict[str, np.ndarray] = field(default_factory=dict)
    land: np.ndarray | None = None
    ids: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        self.lst = np.asarray(self.lst, dtype=np.float32)
        if self.lst.ndim != 3:
            raise ValueError(f"lst must be (time, y, x), got shape {self.lst.shape}")
        t, h, w = self.lst.shape
        if (h, w) != self.grid.shape:
            raise ValueError(f"lst shape {(h, w)} does not match grid {self.grid.shape}")
        self.times = np.asarray(self.times, dtype="datetime64[s]")
        if self.land is None:
            self.land = np.ones((h, w), dtype=bool)
        if not self.ids:
            self.ids = [str(x)[:19].replace("-", "").replace(":", "") for x in self.times]
        for name, arr in self.dynamic.items():
            if arr.shape != self.lst.shape:
                raise ValueError(f"dynamic variable {name} has shape {arr.shape}, not {(t, h, w)}")
        for name, arr in self.static.items():
            if arr.shape != (h, w):
                raise ValueError(f"static variable {name} has shape {arr.shape}, not {(h, w)}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.lst.shape  # type: ignore[return-value]

    @property
    def valid(self) -> np.ndarray:
        """Clear observations (T, H, W) on land."""
        return np.isfinite(self.lst) & self.land[None]

    def valid_fraction(self) -> np.ndarray:
        """Share of land pixels observed clear, per acquisition."""
        n_land = max(int(self.land.sum()), 1)
        return self.valid.reshape(len(self.times), -1).sum(1) / n_land

    def variables(self) -> set[str]:
        return set(self.dynamic) | set(self.static)

    def with_hidden(self, t: int, hidden: np.ndarray) -> LstSeries:
        """A copy whose acquisition `t` has the pixels of `hidden` (H, W) set to NaN."""
        lst = self.lst.copy()
        lst[t][hidden] = np.nan
        return replace(self, lst=lst)

    def subset(self, index: Sequence[int] | np.ndarray) -> LstSeries:
        """The series restricted to the acquisitions at `index` (in that order)."""
        idx = np.asarray(index, dtype=int)
        return replace(
            self,
            times=self.times[idx],
            lst=self.lst[idx],
            dynamic={k: v[idx] for k, v in self.dynamic.items()},
            ids=[self.ids[i] for i in idx],
        )

    def centre_lonlat(self) -> tuple[float, float]:
        lon, lat = self.grid.lonlat()
        return float(np.mean(lon)), float(np.mean(lat))


def _grid_of(ds: xr.Dataset, path: Path) -> Grid:
    """The north-up grid of a dataset with 1-D `x`/`y` pixel-centre coordinates and a CRS."""
    if "x" not in ds.coords or "y" not in ds.coords:
        raise InputError(path, "no x/y coordinates")
    crs = ds.rio.crs
    if crs is None:
        raise InputError(path, "no CRS (expected a grid-mapping variable such as spatial_ref)")
    x, y = ds["x"].values, ds["y"].values
    if len(x) < 2 or len(y) < 2:
        raise InputError(path, "grid needs at least 2 x 2 pixels")
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    if dx <= 0 or dy >= 0:
        raise InputError(path, "grid must be north-up (x increasing, y decreasing)")
    transform = Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)
    return Grid(crs.to_string(), transform, len(x), len(y))


def _open(path: str | Path) -> xr.Dataset:
    path = check_file(path)
    try:
        return xr.open_dataset(path, decode_coords="all")
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read NetCDF (corrupt or truncated?): {exc}") from exc


def _land_mask(ds: xr.Dataset, lst: np.ndarray) -> np.ndarray:
    """Pixels to fill: not water, and not codes 2 (skip) / 3 (no data) at every date."""
    land = np.ones(lst.shape[1:], dtype=bool)
    if "water" in ds:
        land &= np.asarray(ds["water"].values) == 0
    if "gap_code" in ds:
        codes = np.asarray(ds["gap_code"].values)
        land &= ~np.all((codes == 2) | (codes == 3), axis=0)
    return land


def _values(ds: xr.Dataset, name: str, path: Path, tolerance: float | None) -> np.ndarray:
    """A variable as float32, checked against its physical range and units where lstfill knows
    them (lstfill.ranges): a cube in other units is refused before any method sees it."""
    values = np.asarray(ds[name].values, dtype=np.float32)
    if not has_range(name):
        return values
    return check_range(values, name, path, ds[name].attrs.get("units"), tolerance)


def _split_variables(
    ds: xr.Dataset, path: Path, tolerance: float | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    dynamic: dict[str, np.ndarray] = {}
    static: dict[str, np.ndarray] = {}
    for name, var in ds.data_vars.items():
        if name in _LST_VARIABLES or var.dtype.kind not in "iuf":
            continue
        dims = tuple(var.dims)
        if dims == ("time", "y", "x"):
            dynamic[str(name)] = _values(ds, str(name), path, tolerance)
        elif dims == ("y", "x"):
            static[str(name)] = _values(ds, str(name), path, tolerance)
    return dynamic, static


def load_series(path: str | Path, tolerance: float | None = None) -> LstSeries:
    """Read a single NetCDF with `lst(time, y, x)` in K (NaN = gap) and optional static layers.

    LST (where `lst_valid` says clear) and every covariate with a physical range must lie in it
    (lstfill.ranges): above `tolerance` of a variable's values outside it (an LST in degrees
    Celsius, say) the cube is refused, below it those values become NaN.
    """
    path = Path(path)
    ds = _open(path)
    with ds:
        if "lst" not in ds or tuple(ds["lst"].dims) != ("time", "y", "x"):
            raise InputError(path, "expected a variable lst(time, y, x)")
        grid = _grid_of(ds, path)
        lst = np.asarray(ds["lst"].values, dtype=np.float32)
        if "lst_valid" in ds:
            lst = np.where(np.asarray(ds["lst_valid"].values) == 1, lst, np.nan)
        lst = check_range(lst, "lst", path, ds["lst"].attrs.get("units"), tolerance)
        dynamic, static = _split_variables(ds, path, tolerance)
        land = _land_mask(ds, lst)
        times = ds["time"].values
    order = np.argsort(times, kind="stable")
    return LstSeries(
        times=times[order],
        lst=lst[order],
        grid=grid,
        dynamic={k: v[order] for k, v in dynamic.items()},
        static=static,
        land=land,
        source=str(path),
    )


def load_cubes(paths: Sequence[str | Path], tolerance: float | None = None) -> LstSeries:
    """Stack lstfill datacubes (one acquisition each, same grid) into one series, time-ordered;
    each cube checked as :func:`load_series` checks it."""
    if not paths:
        raise InputError("(no cubes)", "no datacube to read")
    parts: list[LstSeries] = []
    for p in paths:
        parts.append(load_series(p, tolerance))
    first = parts[0]
    for p, part in zip(paths, parts, strict=True):
        if part.grid != first.grid:
            raise InputError(p, f"cube grid {part.grid.to_dict()} differs from {paths[0]}")
        if set(part.dynamic) != set(first.dynamic):
            missing = sorted(set(first.dynamic) ^ set(part.dynamic))
            raise InputError(p, f"cube variables differ from {paths[0]}: {missing}")
    times = np.concatenate([p.times for p in parts])
    order = np.argsort(times, kind="stable")
    land = first.land.copy()
    for p in parts[1:]:
        land &= p.land
    return LstSeries(
        times=times[order],
        lst=np.concatenate([p.lst for p in parts])[order],
        grid=first.grid,
        dynamic={k: np.concatenate([p.dynamic[k] for p in parts])[order] for k in first.dynamic},
        static=first.static,
        land=land,
        ids=[Path(paths[i]).stem for i in order],
        source=str(Path(paths[0]).parent),
    )


@dataclass
class FillResult:
    """A method's answer for one acquisition: LST (K) at every land pixel, and optionally the
    half-width (K) of its 90 % prediction interval."""

    lst: np.ndarray
    halfwidth90: np.ndarray | None = None
