"""GeoSphere Austria INCA analysis (dataset inca-v1-1h-1km) as NetCDF from the data hub.

Hourly 1 km fields on the Austrian Lambert grid (EPSG:31287): 2 m air temperature (degC),
global radiation (W m-2), relative humidity (%) and the wind components (m s-1). The data hub
delivers CF NetCDF with int16 packed variables on dims (time, y, x); this module writes files of
that shape and reads them back into float fields with T2M in kelvin, the unit of every other
temperature in lstfill.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import netCDF4
import numpy as np
from affine import Affine
from pyproj import CRS
from pyproj.exceptions import CRSError

from lstfill.errors import InputError
from lstfill.io import atomic_output, check_file
from lstfill.ranges import check_range
from lstfill.raster import Raster

PARAMETERS = ("T2M", "GL", "RH2M", "UU", "VV")
DATASET = "inca-v1-1h-1km"
INCA_CRS = "EPSG:31287"
TIME_UNITS = "seconds since 1961-01-01 00:00:00"
DEFAULT_RES_M = 1000.0
_ATTRS = {
    "T2M": ("degree_Celsius", "air temperature 2m above ground"),
    "GL": ("W m-2", "global radiation"),
    "RH2M": ("percent", "relative humidity 2m above ground"),
    "UU": ("m s-1", "wind speed in eastward direction"),
    "VV": ("m s-1", "wind speed in northward direction"),
}
_CELSIUS = {"degree_celsius", "degrees_celsius", "degc", "deg_c", "celsius", "°c", "c"}
_KELVIN = {"k", "kelvin", "degree_kelvin", "degrees_kelvin"}
_FILL = np.int16(-32767)


@dataclass
class IncaData:
    """Hourly fields of one INCA file on its own grid, in physical units (T2M in K)."""

    times: np.ndarray  # datetime64[ns], UTC
    transform: Affine
    crs: str
    fields: dict[str, np.ndarray]  # param -> float32 (time, y, x), NaN where _FillValue
    path: Path = field(default_factory=Path)

    def _field(self, param: str) -> np.ndarray:
        if param not in self.fields:
            raise InputError(self.path, f"no variable {param} (has {sorted(self.fields)})")
        return self.fields[param]

    def _nearest(self, when: datetime) -> int:
        """Index of the time step nearest `when` (naive datetimes are UTC)."""
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        t = np.datetime64(when, "ns")
        i = int(np.argmin(np.abs(self.times - t)))
        if abs(self.times[i] - t) > np.timedelta64(1, "h"):
            raise InputError(
                self.path,
                f"no hourly field within 1 h of {when:%Y-%m-%dT%H:%M} UTC "
                f"(file covers {self.times[0]} .. {self.times[-1]})",
            )
        return i

    def _raster(self, data: np.ndarray) -> Raster:
        return Raster(data.astype(np.float32), self.transform, self.crs, nodata=np.nan)

    def at(self, param: str, when: datetime) -> Raster:
        """The `param` field at the hour nearest `when`."""
        data = self._field(param)
        return self._raster(data[self._nearest(when)])

    def cumulative(self, param: str, when: datetime, hours: int = 6) -> Raster:
        """Mean of the hourly `param` fields over `hours` hours ending at the hour nearest `when`.

        For GL this is the mean irradiance (W m-2) of the period, the heating that preceded an
        overpass. Every one of those hours must be in the file; a pixel missing in some hours
        gets the mean of the others.
        """
        if hours < 1:
            raise ValueError(f"hours must be >= 1, got {hours}")
        data = self._field(param)
        end = self.times[self._nearest(when)]
        wanted = end - np.arange(hours)[::-1] * np.timedelta64(1, "h")
        idx = np.searchsorted(self.times, wanted)
        ok = (idx < len(self.times)) & (self.times[np.minimum(idx, len(self.times) - 1)] == wanted)
        if not ok.all():
            raise InputError(
                self.path,
                f"{param}: the {hours} h before {end} are not all in the file "
                f"(covers {self.times[0]} .. {self.times[-1]})",
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
            return self._raster(np.nanmean(data[idx], axis=0))


def _utc_naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def filename(start: datetime, end: datetime) -> str:
    """Data hub file name for the hours `start`..`end` (UTC)."""
    return f"{DATASET}_{_utc_naive(start):%Y%m%dT%H%M}_{_utc_naive(end):%Y%m%dT%H%M}.nc"


def _packing(values: np.ndarray) -> tuple[float, float]:
    """scale_factor and add_offset mapping the finite range of `values` onto -32766..32766."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 1.0, 0.0
    lo, hi = float(finite.min()), float(finite.max())
    offset = (lo + hi) / 2.0
    scale = (hi - lo) / (2 * 32766) if hi > lo else 1.0
    return scale, offset


def write_inca(
    path: str | Path,
    times: list[datetime],
    x: np.ndarray,
    y: np.ndarray,
    data: dict[str, np.ndarray],
) -> Path:
    """Write hourly fields (file units, T2M in degC; NaN = missing) as a data-hub-like NetCDF.

    `x`, `y` are EPSG:31287 cell centres in metres (y north to south); each array in `data` has
    shape (time, y, x). Variables are int16 packed with scale_factor/add_offset and _FillValue.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    shape = (len(times), len(y), len(x))
    for param, arr in data.items():
        if param not in PARAMETERS:
            raise ValueError(f"unknown INCA parameter {param!r}; choose from {PARAMETERS}")
        if np.shape(arr) != shape:
            raise ValueError(f"{param}: expected shape (time, y, x) = {shape}, got {np.shape(arr)}")
    crs = CRS.from_user_input(INCA_CRS)
    cf = crs.to_cf()
    seconds = [(_utc_naive(t) - datetime(1961, 1, 1)) / timedelta(seconds=1) for t in times]
    path = Path(path)
    with atomic_output(path) as tmp:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.Conventions = "CF-1.7"
            nc.title = "INCA analysis - large domain"
            nc.institution = "GeoSphere Austria"
            nc.dataset = DATASET
            nc.createDimension("time", len(times))
            nc.createDimension("y", len(y))
            nc.createDimension("x", len(x))
            tv = nc.createVariable("time", "i8", ("time",))
            tv.units = TIME_UNITS
            tv.calendar = "proleptic_gregorian"
            tv.standard_name = "time"
            tv[:] = np.round(seconds).astype(np.int64)
            for name, values in (("x", x), ("y", y)):
                v = nc.createVariable(name, "f8", (name,))
                v.units = "m"
                v.standard_name = f"projection_{name}_coordinate"
                v.long_name = f"{name} coordinate of projection"
                v[:] = values
            gm = nc.createVariable("crs", "i4")
            for key, val in cf.items():
                gm.setncattr(key, val)
            gm.spatial_ref = cf["crs_wkt"]
            gm.EPSG_code = INCA_CRS
            for param, arr in data.items():
                values = np.asarray(arr, dtype=np.float64)
                scale, offset = _packing(values)
                v = nc.createVariable(
                    param, "i2", ("time", "y", "x"), zlib=True, complevel=4, fill_value=_FILL
                )
                v.set_auto_maskandscale(False)
                v.scale_factor = scale
                v.add_offset = offset
                v.units, v.long_name = _ATTRS[param]
                v.grid_mapping = "crs"
                packed = np.round((values - offset) / scale)
                v[:] = np.where(np.isfinite(packed), packed, _FILL).astype(np.int16)
    return path


def _file_crs(path: Path, nc: netCDF4.Dataset, var: netCDF4.Variable) -> CRS:
    """The CRS named by the variable's grid mapping (or a "crs" variable); EPSG:31287 if none."""
    gm_name = getattr(var, "grid_mapping", None) or ("crs" if "crs" in nc.variables else None)
    if gm_name is None:
        return CRS.from_user_input(INCA_CRS)
    if gm_name not in nc.variables:
        raise InputError(path, f"grid mapping variable {gm_name!r} is missing")
    attrs = {k: nc.variables[gm_name].getncattr(k) for k in nc.variables[gm_name].ncattrs()}
    try:
        for key in ("crs_wkt", "spatial_ref"):
            if key in attrs:
                return CRS.from_wkt(str(attrs[key]))
        return CRS.from_cf(attrs)
    except CRSError as exc:
        raise InputError(path, f"cannot interpret the grid mapping {gm_name!r}: {exc}") from exc


def _axis_transform(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[Affine, bool]:
    """Transform of the cell edges from centre coordinates, and whether y runs south to north."""

    def step(c: np.ndarray, name: str) -> float:
        if c.size < 2:
            return DEFAULT_RES_M
        d = np.diff(c)
        if not np.allclose(d, d[0], rtol=1e-6, atol=1e-6) or d[0] == 0:
            raise InputError(path, f"{name} coordinates are not regularly spaced")
        return float(d[0])

    dx, dy = step(x, "x"), step(y, "y")
    if dx < 0:
        raise InputError(path, "x coordinates decrease (west-east flipped grid is unsupported)")
    ascending = y.size >= 2 and dy > 0
    res_y = abs(dy)
    top = float(y.max()) + res_y / 2
    return Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, -res_y, top), ascending


def _to_kelvin(path: Path, param: str, values: np.ndarray, units: str) -> np.ndarray:
    u = units.strip().lower().replace(" ", "_")
    if u in _CELSIUS:
        return values + np.float32(273.15)
    if u in _KELVIN:
        return values
    raise InputError(path, f"{param} has unknown temperature units {units!r}")


def read_inca(
    path: str | Path, expected_crs: str | None = INCA_CRS, tolerance: float | None = None
) -> IncaData:
    """Read every INCA parameter in the file as float32 (time, y, x), north-up, T2M in K.

    Each parameter (T2M after its conversion to kelvin) must lie in its physical range
    (lstfill.ranges): above `tolerance` of its pixels outside it the file is refused, below it
    those pixels become NaN.
    """
    path = check_file(path)
    try:
        with netCDF4.Dataset(path, "r") as nc:
            params = [p for p in PARAMETERS if p in nc.variables]
            if not params:
                raise InputError(path, f"no INCA variable ({', '.join(PARAMETERS)}) in the file")
            for name in ("time", "x", "y"):
                if name not in nc.variables:
                    raise InputError(path, f"no coordinate variable {name!r}")
            crs = _file_crs(path, nc, nc.variables[params[0]])
            if expected_crs is not None and not crs.equals(CRS.from_user_input(expected_crs)):
                raise InputError(path, f"grid is on CRS {crs.to_string()}, expected {expected_crs}")
            tvar = nc.variables["time"]
            stamps = netCDF4.num2date(
                tvar[:],
                tvar.units,
                getattr(tvar, "calendar", "standard"),
                only_use_cftime_datetimes=False,
                only_use_python_datetimes=True,
            )
            times = np.array([np.datetime64(_utc_naive(t), "ns") for t in stamps])
            x = np.asarray(nc.variables["x"][:], dtype=np.float64)
            y = np.asarray(nc.variables["y"][:], dtype=np.float64)
            transform, ascending = _axis_transform(path, x, y)
            fields: dict[str, np.ndarray] = {}
            units: dict[str, str] = {}
            for param in params:
                var = nc.variables[param]
                if var.dimensions != ("time", "y", "x"):
                    raise InputError(path, f"{param} has dims {var.dimensions}, not (time, y, x)")
                var.set_auto_maskandscale(True)
                values = np.ma.filled(var[:].astype(np.float32), np.nan)
                if ascending:
                    values = values[:, ::-1, :]
                units[param] = str(getattr(var, "units", ""))
                if param == "T2M":
                    values = _to_kelvin(path, param, values, units[param])
                    units[param] = "K"
                fields[param] = np.ascontiguousarray(values, dtype=np.float32)
    except InputError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, AttributeError) as exc:
        raise InputError(path, f"cannot read NetCDF (corrupt or truncated?): {exc}") from exc
    if times.size == 0:
        raise InputError(path, "file has no time steps")
    fields = {
        p: check_range(v, p.lower(), path, units[p], tolerance, name=p) for p, v in fields.items()
    }
    order = np.argsort(times)
    if not np.array_equal(order, np.arange(times.size)):
        times = times[order]
        fields = {k: v[order] for k, v in fields.items()}
    epsg = crs.to_epsg()
    return IncaData(
        times=times,
        transform=transform,
        crs=f"EPSG:{epsg}" if epsg else crs.to_wkt(),
        fields=fields,
        path=path,
    )


def find_inca(folder: str | Path) -> list[Path]:
    """INCA NetCDF files in `folder`, sorted by name (hence by start time)."""
    return sorted(p for p in Path(folder).glob(f"{DATASET}_*.nc") if not p.name.startswith("."))
