"""Israel LST: yearly NetCDF files of gap-filled MYD11A1 1 km LST (Shiff et al. 2021).

Zenodo record 4533677 holds one file per year, ``LST_{year}_NetCDF.nc``, on a regular grid of
about 1/120 degree over Israel (EPSG:4326, 603 x 409 cell centres in coordinates ``y`` = latitude
and ``x`` = longitude; 28.9967..34.0078 over 603 rows is a spacing of 0.008324 degree, the MODIS
926.6 m cell, so the reader takes the spacing from the coordinates and never assumes 1/120).
Its single variable ``__xarray_dataarray_variable__`` has dims (time, band, y, x): ``time`` is
the 0-based day of the year (days may be missing), bands 0-2 are night, day and daily (mean of
the two) LST as integers in units of 0.02 K, band 3 is a QA code (not scaled) saying which
overpasses were observed; the LST elsewhere is gap-filled from a model. The reader applies scale
and masks itself (``mask_and_scale=False``) so the QA band is never scaled, and returns the grid
north-up whichever way ``y`` runs in the file. The grid's transform and a DEM averaged onto its
cells are in :mod:`lstfill.sources.israel_grid`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import xarray as xr
from affine import Affine

from lstfill.errors import InputError
from lstfill.io import atomic_output, check_file
from lstfill.ranges import check_range
from lstfill.sources.israel_grid import CRS_LATLON, spacing

VARIABLE = "__xarray_dataarray_variable__"
DIMS = ("time", "band", "y", "x")
BAND_NIGHT = 0
BAND_DAY = 1
BAND_DAILY = 2
BAND_QA = 3
QA_NONE = 0  # no observation, day nor night
QA_NO_DAY = 1  # night observed, day missing
QA_NO_NIGHT = 2  # day observed, night missing
QA_BOTH = 3  # day and night observed
SCALE_K = 0.02  # K per count of bands 0-2
VALID_MIN = 7500  # counts: 150 K
VALID_MAX = 65535  # counts: 1310.7 K
_YEAR_RE = re.compile(r"LST_(\d{4})(?!\d)")
_REGULAR_RTOL = 1e-6


@dataclass
class IsraelLst:
    """One year of Israel LST, north-up: LST in K (NaN where invalid) and QA codes per day."""

    year: int
    days: np.ndarray  # int, 0-based day of the year as in the file
    dates: np.ndarray  # datetime64[D]: Jan 1 of `year` + day
    lat: np.ndarray  # cell-centre latitudes, north to south
    lon: np.ndarray  # cell-centre longitudes, west to east
    night: np.ndarray  # float32 (T, H, W) K
    day: np.ndarray  # float32 (T, H, W) K
    daily: np.ndarray  # float32 (T, H, W) K, the file's band 2
    qa: np.ndarray  # uint8 (T, H, W), QA_* codes
    path: Path | None = None
    crs: ClassVar[str] = CRS_LATLON

    @property
    def transform(self) -> Affine:
        """Affine transform of the cell edges (EPSG:4326 degrees), from the centres' spacing."""
        dx = spacing(self.lon)
        dy = spacing(self.lat)  # negative: north to south
        return Affine(dx, 0.0, float(self.lon[0]) - dx / 2, 0.0, dy, float(self.lat[0]) - dy / 2)

    def lst(self, which: str) -> np.ndarray:
        """The "night", "day" or "daily" LST (K, NaN where invalid)."""
        fields = {"night": self.night, "day": self.day, "daily": self.daily}
        if which not in fields:
            raise ValueError(f"which must be one of {sorted(fields)}, got {which!r}")
        return fields[which]


def dates_of(year: int, days: np.ndarray) -> np.ndarray:
    """datetime64[D] dates of 0-based days of the year."""
    return np.datetime64(f"{year:04d}-01-01", "D") + np.asarray(days, dtype=np.int64)


# ------------------------------------------------------------------------------------ reading


def _year(path: Path, attrs: dict) -> int:
    """The year from the file name ``LST_2020_NetCDF.nc`` or a ``year`` attribute."""
    m = _YEAR_RE.search(path.name)
    from_name = int(m[1]) if m else None
    from_attr = None
    if "year" in attrs:
        try:
            from_attr = int(np.ravel(attrs["year"])[0])
        except (TypeError, ValueError, IndexError) as exc:
            raise InputError(path, f"attribute year={attrs['year']!r} is not a year") from exc
    if from_name is not None and from_attr is not None and from_name != from_attr:
        raise InputError(path, f"file name says year {from_name} but attribute year={from_attr}")
    year = from_name if from_name is not None else from_attr
    if year is None:
        raise InputError(path, "no year in the file name (LST_<year>_NetCDF.nc) or attributes")
    return year


def _regular(path: Path, name: str, coord: np.ndarray) -> np.ndarray:
    """`coord` as float64 if it is strictly monotonic with constant spacing, else InputError.

    The tolerance is 1e-6 of the spacing, widened to the rounding error of the stored dtype
    (float32 coordinates of ~34 degrees carry ~4e-6 degree of rounding).
    """
    c = np.asarray(coord)
    if c.ndim != 1 or c.size < 2:
        raise InputError(path, f"coordinate {name} needs at least 2 values, has {c.size}")
    if not np.issubdtype(c.dtype, np.number) or not np.all(np.isfinite(c)):
        raise InputError(path, f"coordinate {name} is not all finite numbers")
    step = spacing(c)
    eps = np.finfo(c.dtype).eps if np.issubdtype(c.dtype, np.floating) else 0.0
    tol = max(_REGULAR_RTOL * abs(step), 4 * eps * float(np.max(np.abs(c))))
    worst = float(np.max(np.abs(np.diff(c.astype(np.float64)) - step)))
    if step == 0 or worst > tol:
        raise InputError(
            path, f"coordinate {name} is not regular: spacing {step:.6g} varies by {worst:.3g}"
        )
    return c.astype(np.float64)


def _fill_values(attrs: dict) -> list[float]:
    """The _FillValue and missing_value(s) of a variable's raw attributes."""
    values: list[float] = []
    for key in ("_FillValue", "missing_value"):
        if key in attrs:
            values.extend(float(v) for v in np.ravel(attrs[key]))
    return values


def _invalid(raw: np.ndarray, fills: list[float], lo: float, hi: float) -> np.ndarray:
    """True where `raw` is a fill value, outside lo..hi, or not finite."""
    bad = (raw < lo) | (raw > hi)
    if np.issubdtype(raw.dtype, np.floating):
        bad |= ~np.isfinite(raw)
    for fill in fills:
        if np.isnan(fill):
            continue  # NaN is caught above
        if np.issubdtype(raw.dtype, np.integer):
            info = np.iinfo(raw.dtype)
            if fill != int(fill) or not info.min <= fill <= info.max:
                continue  # cannot occur in this dtype
            fill = int(fill)
        bad |= raw == fill
    return bad


def decode_lst(raw: np.ndarray, fills: list[float]) -> np.ndarray:
    """Counts of 0.02 K -> float32 K; NaN at fill values, outside 7500..65535 and non-finite."""
    raw = np.asarray(raw)
    out = raw.astype(np.float32) * np.float32(SCALE_K)
    out[_invalid(raw, fills, VALID_MIN, VALID_MAX)] = np.nan  # 0 is below VALID_MIN
    return out


def decode_qa(raw: np.ndarray, fills: list[float]) -> np.ndarray:
    """QA codes as uint8; fill values and anything outside 0..3 count as QA_NONE."""
    raw = np.asarray(raw)
    bad = _invalid(raw, fills, QA_NONE, QA_BOTH)
    return np.where(bad, QA_NONE, raw).astype(np.uint8)


def _check_variable(path: Path, ds: xr.Dataset) -> xr.DataArray:
    """The LST variable with dims (time, band, y, x) and the four bands, else InputError."""
    if VARIABLE not in ds.data_vars:
        raise InputError(path, f"no variable {VARIABLE} (has {sorted(map(str, ds.data_vars))})")
    var = ds[VARIABLE]
    if set(var.dims) != set(DIMS) or var.ndim != len(DIMS):
        raise InputError(path, f"variable {VARIABLE} has dims {var.dims}, expected {DIMS}")
    if not np.issubdtype(var.dtype, np.number):
        raise InputError(path, f"variable {VARIABLE} has non-numeric dtype {var.dtype}")
    missing_coords = [d for d in DIMS if d not in ds.coords]
    if missing_coords:
        raise InputError(path, f"no coordinate values for {missing_coords}")
    bands = [int(b) for b in np.asarray(ds["band"].values).ravel()]
    missing = [b for b in (BAND_NIGHT, BAND_DAY, BAND_DAILY, BAND_QA) if b not in bands]
    if missing:
        raise InputError(path, f"band(s) {missing} missing (bands in file: {bands})")
    for key in ("scale_factor", "add_offset"):
        expected = SCALE_K if key == "scale_factor" else 0.0
        if key in var.attrs and not np.isclose(float(np.ravel(var.attrs[key])[0]), expected):
            raise InputError(path, f"unexpected {key}={var.attrs[key]} (expected 0.02 K units)")
    return var.transpose(*DIMS)


def _days(path: Path, year: int, time: np.ndarray) -> np.ndarray:
    """Integer 0-based days of the year, checked: whole, unique, within the year."""
    t = np.asarray(time)
    if not np.issubdtype(t.dtype, np.number) or not np.all(np.isfinite(t)):
        raise InputError(path, "coordinate time is not numeric day-of-year values")
    days = np.round(t).astype(np.int64)
    if np.any(np.abs(t - days) > 1e-6):
        raise InputError(path, "coordinate time holds non-integer days")
    n_days = 366 if calendar.isleap(year) else 365
    if days.size and (days.min() < 0 or days.max() >= n_days):
        raise InputError(
            path, f"time has day {days.min()}..{days.max()}, outside 0..{n_days - 1} of {year}"
        )
    if len(np.unique(days)) != len(days):
        raise InputError(path, "coordinate time holds repeated days")
    return days


def _apply_strict(night: np.ndarray, day: np.ndarray, daily: np.ndarray, qa: np.ndarray) -> None:
    """Blank, in place, every value the QA code says was modelled rather than observed."""
    day[(qa == QA_NONE) | (qa == QA_NO_DAY)] = np.nan
    night[(qa == QA_NONE) | (qa == QA_NO_NIGHT)] = np.nan
    daily[qa != QA_BOTH] = np.nan


def file_days(path: str | Path) -> tuple[int, np.ndarray]:
    """(year, 0-based days of the year, sorted) of a yearly file, without reading its values."""
    path = check_file(path)
    try:
        with xr.open_dataset(path, engine="netcdf4", decode_times=False) as ds:
            var = _check_variable(path, ds)
            year = _year(path, dict(ds.attrs) | dict(var.attrs))
            return year, np.sort(_days(path, year, ds["time"].values))
    except InputError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"cannot read NetCDF (corrupt or truncated?): {exc}") from exc


def read_israel_lst(
    path: str | Path,
    *,
    qa_strict: bool = False,
    days: Sequence[int] | None = None,
    tolerance: float | None = None,
) -> IsraelLst:
    """Read a yearly Israel LST file, north-up, sorted by day.

    With `qa_strict`, keep only observed values: day LST where QA is 3 or 2, night LST where QA is
    3 or 1, daily LST where QA is 3 (the rest of the data set is gap-filled from a model).
    `days` (0-based days of the year) reads only those days, so a few days of a 1.4 GB year cost
    a few days' memory; a day the file lacks is an error.
    Raises InputError naming the file when it is unreadable or not in this format, or when more
    than `tolerance` of a band's LST lies outside its physical range (lstfill.ranges; fewer
    such values become NaN).
    """
    path = check_file(path)
    days_wanted = None if days is None else [int(d) for d in days]
    try:
        with xr.open_dataset(
            path,
            engine="netcdf4",
            mask_and_scale=False,
            decode_times=False,
            decode_timedelta=False,
        ) as ds:
            var = _check_variable(path, ds)
            year = _year(path, dict(ds.attrs) | dict(var.attrs))
            days = _days(path, year, ds["time"].values)
            if days_wanted is not None:
                missing = sorted(set(days_wanted) - set(days.tolist()))
                if missing:
                    raise InputError(path, f"has no day(s) {missing} of {year}")
                keep = np.flatnonzero(np.isin(days, days_wanted))
                var = var.isel(time=keep)
                days = days[keep]
            lat = _regular(path, "y", ds["y"].values)
            lon = _regular(path, "x", ds["x"].values)
            fills = _fill_values(var.attrs)

            def band(b: int) -> np.ndarray:
                return np.asarray(var.sel(band=b).values)

            night = decode_lst(band(BAND_NIGHT), fills)
            day = decode_lst(band(BAND_DAY), fills)
            daily = decode_lst(band(BAND_DAILY), fills)
            qa = decode_qa(band(BAND_QA), fills)
    except InputError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise InputError(path, f"cannot read NetCDF (corrupt or truncated?): {exc}") from exc
    night, day, daily = (
        check_range(values, "lst", path, tolerance=tolerance, name=f"band {band} ({which} LST)")
        for values, band, which in (
            (night, BAND_NIGHT, "night"),
            (day, BAND_DAY, "day"),
            (daily, BAND_DAILY, "daily"),
        )
    )
    if qa_strict:
        _apply_strict(night, day, daily, qa)
    order = np.argsort(days, kind="stable")
    rows = slice(None, None, -1) if lat[-1] > lat[0] else slice(None)
    cols = slice(None, None, -1) if lon[-1] < lon[0] else slice(None)

    def orient(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[order][:, rows, cols])

    return IsraelLst(
        year=year,
        days=days[order],
        dates=dates_of(year, days[order]),
        lat=lat[rows].copy(),
        lon=lon[cols].copy(),
        night=orient(night),
        day=orient(day),
        daily=orient(daily),
        qa=orient(qa),
        path=path,
    )


# ------------------------------------------------------------------------------------ writing


def file_name(year: int) -> str:
    """File name of a year as published, e.g. "LST_2020_NetCDF.nc"."""
    return f"LST_{year:04d}_NetCDF.nc"


def _pack(name: str, kelvin: np.ndarray, fill_value: int) -> np.ndarray:
    """K -> int32 counts of 0.02 K (NaN -> fill); ValueError outside the valid counts."""
    counts = np.round(np.asarray(kelvin, dtype=np.float64) / SCALE_K)
    finite = np.isfinite(counts)
    if np.any((counts[finite] < VALID_MIN) | (counts[finite] > VALID_MAX)):
        raise ValueError(f"{name} LST outside {VALID_MIN * SCALE_K}..{VALID_MAX * SCALE_K} K")
    return np.where(finite, counts, fill_value).astype(np.int32)


def write_israel_lst(
    path: str | Path,
    year: int,
    days: np.ndarray,
    night_k: np.ndarray,
    day_k: np.ndarray,
    qa: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    fill_value: int = 0,
) -> Path:
    """Write one year in the Israel LST format, atomically; rows stored in the order of `lat`.

    Band 2 is the mean of night and day where both are valid, else the valid one, else fill.
    """
    night = np.asarray(night_k, dtype=np.float64)
    day = np.asarray(day_k, dtype=np.float64)
    qa = np.asarray(qa)
    days = np.asarray(days, dtype=np.int64)
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    shape = (len(days), len(lat), len(lon))
    for name, arr in (("night_k", night), ("day_k", day), ("qa", qa)):
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}, expected (days, lat, lon) = {shape}")
    if np.any((qa < QA_NONE) | (qa > QA_BOTH)):
        raise ValueError("qa codes must be 0..3")
    if VALID_MIN <= fill_value <= VALID_MAX:
        raise ValueError(f"fill_value {fill_value} is a valid LST count")
    with np.errstate(invalid="ignore"):
        daily = np.where(np.isnan(night), day, np.where(np.isnan(day), night, (night + day) / 2))
    data = np.stack(
        [
            _pack("night", night, fill_value),
            _pack("day", day, fill_value),
            _pack("daily", daily, fill_value),
            qa.astype(np.int32),
        ],
        axis=1,
    )
    da = xr.DataArray(
        data,
        dims=DIMS,
        coords={"time": days, "band": np.arange(4, dtype=np.int64), "y": lat, "x": lon},
        attrs={
            "description": "bands 0-2: night, day, daily LST in 0.02 K; band 3: QA code",
            "qa_codes": "0 no data day and night, 1 no data day, 2 no data night, 3 both valid",
        },
    )
    ds = da.to_dataset(name=VARIABLE)
    ds.attrs = {"year": int(year), "crs": CRS_LATLON}
    encoding = {
        VARIABLE: {"dtype": "int32", "_FillValue": np.int32(fill_value), "zlib": True},
        "y": {"_FillValue": None},
        "x": {"_FillValue": None},
    }
    path = Path(path)
    with atomic_output(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return path
