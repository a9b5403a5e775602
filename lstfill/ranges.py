"""Physical ranges of the variables lstfill reads, and the check every reader applies to them.

A file in another unit (LST in degrees Celsius, reflectance as digital numbers) or with a scale
factor left out still reads as numbers; taken as-is it would run through the whole chain and
yield products that look plausible but are wrong. Every reader therefore calls
:func:`check_range` right after decoding a variable:

- a `units` attribute naming a unit that is not the variable's (``degC`` on an LST read as
  kelvin) is an error; units lstfill does not recognise are logged and the values decide;
- when more than `tolerance` of the valid (non-NaN) values lie outside the variable's physical
  range, the file is refused with an :class:`~lstfill.errors.InputError` naming the file, the
  variable, the range, the values found (min, max, share out of range) and, where the values fit
  a known mistake, that mistake (degrees Celsius, unscaled counts);
- a few stray values (at most `tolerance` of them) become NaN, and a warning counts them.

The ranges are wide on purpose: they catch wrong units and scales, not unusual weather.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstfill.errors import InputError

log = logging.getLogger(__name__)

# Share of a variable's valid values allowed out of range (config: prepare.out_of_range_tolerance).
DEFAULT_TOLERANCE = 0.01
_MOSTLY = 0.5  # a hint applies when more than this share of the valid values fits it


@dataclass(frozen=True)
class PhysicalRange:
    """Inclusive bounds of a variable in its lstfill unit, the units its files may declare and
    the known mistakes its values can betray: (low, high, hint) where most values fall."""

    low: float
    high: float
    unit: str
    accepted: frozenset[str]
    hints: tuple[tuple[float, float, str], ...] = ()


_CELSIUS_HINT = (
    "they look like degrees Celsius: lstfill reads temperatures in kelvin "
    "(K = °C + 273.15; set the units attribute to 'K')"
)
_TEMPERATURE_HINTS = (
    (-90.0, 80.0, _CELSIUS_HINT),
    (7500.0, 18000.0, "they look like MODIS counts of 0.02 K (scale_factor not applied)"),
    (
        423.15,
        633.15,
        "they look like kelvin converted once more (units say degrees Celsius, data are K?)",
    ),
)
_DN_HINT = (
    (2.0, 65535.0, "they look like digital numbers: divide by the quantification value (10000)"),
)


def _r(
    low: float,
    high: float,
    unit: str,
    *also: str,
    hints: tuple[tuple[float, float, str], ...] = (),
) -> PhysicalRange:
    return PhysicalRange(low, high, unit, frozenset((unit, *also)), hints)


_KELVIN = _r(150.0, 360.0, "K", hints=_TEMPERATURE_HINTS)
_REFLECTANCE = _r(-0.1, 1.5, "1", hints=_DN_HINT)
_INDEX = _r(-1.0, 1.0, "1")
_PERCENT = _r(0.0, 100.0, "%")

# Variable (lstfill's cube name, lower case) -> its physical range.
# lst 150-360 K: the coldest Antarctic surfaces (~180 K) to the hottest desert LST measured from
# space (~354 K, Lut). Reflectance -0.1..1.5: Sentinel-2 L2A keeps dark pixels slightly negative
# since baseline 04.00 (DN 1 with offset -1000 is -0.0999); bright snow and cloud can pass 1.
# gl from -10 W m-2: thermopile pyranometers read a few W m-2 below zero at night. rh2m to 105 %:
# capacitive hygrometers read a few % above saturation in fog, and analyses inherit it.
# lst_err to 20 K: an uncertainty beyond that is no uncertainty in K (an unscaled count).
RANGES: dict[str, PhysicalRange] = {
    "lst": _KELVIN,
    "lst_err": _r(0.0, 20.0, "K", "degC"),  # a temperature difference: K and °C agree
    "t2m": _r(200.0, 340.0, "K", hints=_TEMPERATURE_HINTS),
    "gl": _r(-10.0, 1500.0, "W m-2"),
    "rh2m": _r(0.0, 105.0, "%"),
    "uu": _r(-75.0, 75.0, "m s-1"),
    "vv": _r(-75.0, 75.0, "m s-1"),
    "elevation": _r(-500.0, 9000.0, "m"),
    "slope": _r(0.0, 90.0, "degree"),
    "aspect": _r(0.0, 360.0, "degree"),
    "view_zenith": _r(0.0, 90.0, "degree"),
    "tree_cover": _PERCENT,
    "imperviousness": _PERCENT,
    "reflectance": _REFLECTANCE,  # any sensor's surface reflectance (MODIS, Sentinel-3)
    **{b: _REFLECTANCE for b in ("b01", "b02", "b03", "b04", "b05", "b06", "b07", "b08")},
    **{b: _REFLECTANCE for b in ("b8a", "b09", "b11", "b12")},
    **{i: _INDEX for i in ("ndvi", "ndwi", "ndmi", "ndbi")},
}

# Canonical unit -> its spellings, lower case without spaces, underscores or dots.
_SPELLINGS: dict[str, set[str]] = {
    "K": {"k", "kelvin", "kelvins", "degk", "degreek", "degreesk", "degreekelvin", "°k"},
    "degC": {"c", "°c", "degc", "degreec", "degreesc", "celsius", "degreecelsius"},
    "degF": {"f", "°f", "degf", "degreef", "degreesf", "fahrenheit", "degreefahrenheit"},
    "1": {"1", "-", "none", "unitless", "dimensionless", "fraction", "reflectance", "index"},
    "%": {"%", "percent", "percentage", "pct"},
    "m": {"m", "meter", "meters", "metre", "metres"},
    "km": {"km", "kilometer", "kilometers", "kilometre", "kilometres"},
    "ft": {"ft", "foot", "feet"},
    "W m-2": {"wm-2", "w/m2", "w/m^2", "wm^-2", "wm**-2", "wattpersquaremeter"},
    "m s-1": {"ms-1", "m/s", "ms^-1", "ms**-1", "meterpersecond", "metrepersecond"},
    "km h-1": {"kmh-1", "km/h", "kph"},
    "degree": {"degree", "degrees", "deg", "°"},
    "radian": {"rad", "radian", "radians"},
}
_CANONICAL = {spelling: unit for unit, spellings in _SPELLINGS.items() for spelling in spellings}
_CANONICAL.update({"degreescelsius": "degC", "degreeskelvin": "K", "degreesfahrenheit": "degF"})


def physical_range(variable: str) -> PhysicalRange:
    """The range of `variable` (a cube name; "t2m_6h" is t2m's); KeyError if lstfill has none."""
    key = variable.lower()
    base, _, suffix = key.rpartition("_")
    if base in RANGES and suffix.endswith("h") and suffix[:-1].isdigit():
        key = base  # the means over the hours before an acquisition: t2m_6h, gl_6h
    if key not in RANGES:
        raise KeyError(f"no physical range for variable {variable!r}; known: {sorted(RANGES)}")
    return RANGES[key]


def has_range(variable: str) -> bool:
    """True where lstfill knows the physical range of `variable`."""
    try:
        physical_range(variable)
    except KeyError:
        return False
    return True


def canonical_unit(units: str) -> str | None:
    """The canonical form of a units string ("degree_Celsius" -> "degC"), None if unknown."""
    text = str(units).strip().lower()
    for char in " _.":
        text = text.replace(char, "")
    return _CANONICAL.get(text)


def check_tolerance(tolerance: float | None) -> float:
    """`tolerance` as a float in 0..1 (None: :data:`DEFAULT_TOLERANCE`); ValueError otherwise."""
    if tolerance is None:
        return DEFAULT_TOLERANCE
    value = float(tolerance)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"out-of-range tolerance must lie in 0..1, got {tolerance}")
    return value


def check_units(
    variable: str, units: str | None, path: str | Path, *, name: str | None = None
) -> None:
    """InputError when `units` name a unit `variable` cannot be in (e.g. degC on an LST read as
    kelvin). Absent or empty units pass; units lstfill does not recognise are logged."""
    if units is None or not str(units).strip():
        return
    rng = physical_range(variable)
    label = _label(variable, name)
    unit = canonical_unit(units)
    if unit is None:
        log.warning(
            "%s: %s has units %r, which lstfill does not recognise (it reads it in %s); "
            "its values are checked against %g..%g",
            path,
            label,
            units,
            rng.unit,
            rng.low,
            rng.high,
        )
        return
    if unit in rng.accepted:
        return
    named = f"{units!r}" if unit == str(units).strip() else f"{units!r} ({unit})"
    problem = f"{label} has units {named}, but lstfill reads it in {rng.unit}"
    if unit == "degC" and rng.unit == "K":
        problem += ": convert it to kelvin (K = °C + 273.15) and set units to 'K'"
    raise InputError(path, problem)


def check_range(
    values: np.ndarray,
    variable: str,
    path: str | Path,
    units: str | None = None,
    tolerance: float | None = None,
    *,
    name: str | None = None,
    blank: bool = True,
) -> np.ndarray:
    """`values` of `variable` read from `path`, checked against its physical range.

    `units` (the file's attribute, if any) must not name another unit (see :func:`check_units`).
    NaN is ignored. More than `tolerance` (default :data:`DEFAULT_TOLERANCE`) of the other values
    out of range is an InputError naming the file, the variable (`name`, the file's own name for
    it, if given), the range, the values found and a hint where they fit a known mistake. Fewer
    are set to NaN in the returned copy and counted in a warning; `blank=False` keeps them (for
    protocols that must score data as published). The input is never modified; it is returned
    as it is when every value is in range.
    """
    rng = physical_range(variable)
    tol = check_tolerance(tolerance)
    check_units(variable, units, path, name=name)
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu":
        raise InputError(path, f"{_label(variable, name)} is not numeric (dtype {arr.dtype})")
    if arr.size == 0:
        return arr
    floating = arr.dtype.kind == "f"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN array is fine
        low, high = (np.nanmin(arr), np.nanmax(arr)) if floating else (arr.min(), arr.max())
    if np.isnan(low) or (rng.low <= low and high <= rng.high):
        return arr  # all NaN, or all in range: the common case costs two passes
    present = ~np.isnan(arr) if floating else np.ones(arr.shape, dtype=bool)
    n_valid = int(np.count_nonzero(present))
    outside = present & ((arr < rng.low) | (arr > rng.high))
    n_out = int(np.count_nonzero(outside))
    share = n_out / n_valid
    label = _label(variable, name)
    if share > tol:
        problem = (
            f"{label} values lie outside its physical range {rng.low:g}..{rng.high:g} "
            f"{rng.unit}: found {low:.6g}..{high:.6g}, {n_out} of {n_valid} valid values "
            f"({_pct(share)}) out of range, more than the tolerated {_pct(tol)}"
        )
        hint = _hint(arr, present, n_valid, rng)
        raise InputError(path, f"{problem}; {hint}" if hint else problem)
    log.warning(
        "%s: %d %s value(s) outside %g..%g %s (%s of %d valid, found %.6g..%.6g) %s",
        path,
        n_out,
        label,
        rng.low,
        rng.high,
        rng.unit,
        _pct(share),
        n_valid,
        low,
        high,
        "set to NaN" if blank else "kept",
    )
    if not blank:
        return arr
    out = arr.astype(arr.dtype if floating else np.float32, copy=True)
    out[outside] = np.nan
    return out


def _label(variable: str, name: str | None) -> str:
    return variable if name is None or name == variable else f"{name} ({variable})"


def _pct(share: float) -> str:
    return f"{100 * share:.3g} %"


def _hint(arr: np.ndarray, present: np.ndarray, n_valid: int, rng: PhysicalRange) -> str:
    """The hint of the first known mistake that more than half the valid values fit, or ""."""
    for low, high, text in rng.hints:
        inside = int(np.count_nonzero(present & (arr >= low) & (arr <= high)))
        if inside > _MOSTLY * n_valid:
            return text
    return ""
