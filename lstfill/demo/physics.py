"""Time-dependent physics of the demo: sun, weather, clouds, phenology, reflectance and LST.

The surface temperature is a small energy balance, not a formula of the observable inputs:
absorbed shortwave on the tilted surface (sun position, terrain, clouds) minus net longwave,
split into sensible heat through an aerodynamic conductance that grows with wind and canopy
roughness, after evaporation (tree cover, green grass, hidden soil moisture, vapour pressure
deficit) and ground storage (impervious surfaces store heat by day and release it at night).
Air temperature follows a lapse rate with night-time cold-air pooling in the valley; water
bodies sit near their own water temperature; a per-date correlated random field and a
persistent hidden emissivity field add what no input explains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from scipy import ndimage

from lstfill import terrain
from lstfill.demo.world import rng_for, smoothstep

LAPSE_K_PER_M = -0.0065
REF_ELEV_M = 600.0

# endmember reflectances (B02, B03, B04, B08, B11, B12)
S2_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
ENDMEMBERS = {
    "green": (0.030, 0.070, 0.035, 0.420, 0.200, 0.090),
    "dry": (0.060, 0.090, 0.120, 0.260, 0.340, 0.240),
    "forest": (0.020, 0.045, 0.025, 0.310, 0.140, 0.060),
    "impervious": (0.110, 0.130, 0.150, 0.180, 0.200, 0.180),
    "rock": (0.140, 0.170, 0.200, 0.250, 0.300, 0.250),
    "water": (0.040, 0.045, 0.030, 0.015, 0.005, 0.003),
}
ALBEDO = {"green": 0.19, "dry": 0.23, "forest": 0.12, "impervious": 0.14, "rock": 0.26}


# --- sun ----------------------------------------------------------------------------------
def _solar_terms(doy: float, utc_h: float) -> tuple[float, float]:
    """Declination (rad) and equation of time (minutes) for a day of year and UTC hour."""
    g = 2 * np.pi / 365.0 * (doy - 1 + (utc_h - 12) / 24.0)
    decl = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    eot = 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
    return float(decl), float(eot)


def utc_hours(when: datetime) -> float:
    return when.hour + when.minute / 60.0 + when.second / 3600.0


def solar_time_h(when: datetime, lon: np.ndarray | float) -> np.ndarray | float:
    """Local apparent solar time (hours, may leave 0-24) at `when` (naive UTC)."""
    _, eot = _solar_terms(when.timetuple().tm_yday, utc_hours(when))
    return utc_hours(when) + np.asarray(lon) / 15.0 + eot / 60.0


def utc_for_solar_time(day: date, solar_h: float, lon: float) -> datetime:
    """The UTC datetime at which local solar time on `day` at `lon` is `solar_h`."""
    _, eot = _solar_terms(day.timetuple().tm_yday, 12.0)
    utc = solar_h - lon / 15.0 - eot / 60.0
    return datetime(day.year, day.month, day.day) + timedelta(hours=utc)


def sun_position(when: datetime, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of the solar zenith and solar azimuth (rad, clockwise from north)."""
    decl, _ = _solar_terms(when.timetuple().tm_yday, utc_hours(when))
    ha = np.radians(15.0 * (solar_time_h(when, lon) - 12.0))
    la = np.radians(lat)
    cosz = np.sin(la) * np.sin(decl) + np.cos(la) * np.cos(decl) * np.cos(ha)
    az = np.arctan2(np.sin(ha), np.cos(ha) * np.sin(la) - np.tan(decl) * np.cos(la)) + np.pi
    return cosz.astype(np.float32), az.astype(np.float32)


def clear_sky_ghi(cosz: np.ndarray, z_m: np.ndarray | float) -> np.ndarray:
    """Clear-sky global horizontal irradiance (W m-2, Haurwitz with an altitude gain)."""
    mu = np.maximum(cosz, 0.0)
    ghi = 1098.0 * mu * np.exp(-0.057 / np.maximum(mu, 0.02)) * (1 + 0.07 * np.asarray(z_m) / 1000)
    return np.where(cosz > 0, ghi, 0.0).astype(np.float32)


def illumination(
    cosz: np.ndarray, az: np.ndarray, slope: np.ndarray, aspect: np.ndarray
) -> np.ndarray:
    """Cosine of the incidence angle on the tilted surface (0 when self-shaded)."""
    sinz = np.sqrt(np.clip(1 - cosz**2, 0, 1))
    cosi = cosz * np.cos(slope) + sinz * np.sin(slope) * np.cos(az - aspect)
    return np.maximum(cosi, 0.0).astype(np.float32)


# --- weather ------------------------------------------------------------------------------
@dataclass
class Meteo:
    """Daily synoptic state (one value per day from `start`), evaluated at any time and place."""

    start: date
    tmean_c: np.ndarray  # daily mean 2 m temperature at REF_ELEV_M, deg C
    cloudiness: np.ndarray  # 0..1
    rh_base: np.ndarray  # %
    u_syn: np.ndarray  # m s-1
    v_syn: np.ndarray

    @classmethod
    def build(cls, seed: int, start: date, end: date, cloudiness: dict[date, float]) -> Meteo:
        n = (end - start).days + 3
        rng = rng_for(seed, "meteo")
        doy = np.array([(start + timedelta(days=i - 1)).timetuple().tm_yday for i in range(n)])
        seasonal = 16.0 + 4.5 * np.exp(-(((doy - 205.0) / 45.0) ** 2))
        anom = np.zeros(n)
        for i in range(1, n):
            anom[i] = 0.75 * anom[i - 1] + rng.normal(0, 1.7)
        cloud = np.clip(rng.beta(0.9, 1.4, n), 0, 1)
        for day, frac in cloudiness.items():
            i = (day - start).days + 1
            if 0 <= i < n:
                cloud[i] = frac
        rh = 58.0 + 22.0 * cloud + rng.normal(0, 5, n)
        u = rng.normal(0.5, 1.8, n)
        v = rng.normal(0.0, 1.2, n)
        return cls(start, seasonal + anom - 2.0 * cloud, cloud, rh, u, v)

    def _daily(self, series: np.ndarray, when: datetime) -> float:
        t = (when - datetime(self.start.year, self.start.month, self.start.day)).total_seconds()
        f = np.clip(t / 86400.0 + 1.0, 0, len(series) - 1)
        return float(np.interp(f, np.arange(len(series)), series))

    def cloud_fraction(self, when: datetime) -> float:
        return self._daily(self.cloudiness, when)

    def air_temperature_k(
        self, when: datetime, z: np.ndarray, hab: np.ndarray, lon: float
    ) -> np.ndarray:
        """2 m air temperature (K): diurnal cycle, lapse rate, night cold-air pool in the valley."""
        h = float(np.mean(solar_time_h(when, lon)))
        cloud = self.cloud_fraction(when)
        amp = 5.5 * (1.0 - 0.55 * cloud)
        diurnal = amp * np.cos(2 * np.pi * (h - 15.0) / 24.0)
        night = (0.5 * (1 + np.cos(2 * np.pi * (h - 3.0) / 24.0))) ** 2  # 1 at 03, 0 at 15
        pool = 2.0 * night * (1 - cloud) * np.exp(-np.maximum(hab, 0) / 280.0)
        ta = self._daily(self.tmean_c, when) + diurnal + LAPSE_K_PER_M * (z - REF_ELEV_M) - pool
        return (ta + 273.15).astype(np.float32)

    def humidity(self, when: datetime, ta_k: np.ndarray, lon: float) -> np.ndarray:
        """Relative humidity (%) anti-correlated with temperature around the day's mean."""
        t_ref = self._daily(self.tmean_c, when) + 273.15
        return np.clip(self._daily(self.rh_base, when) - 3.2 * (ta_k - t_ref), 18, 100).astype(
            np.float32
        )

    def wind(
        self, when: datetime, x: np.ndarray, y: np.ndarray, lon: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Smooth wind components (m s-1): synoptic flow plus an up-valley (westward) day wind."""
        h = float(np.mean(solar_time_h(when, lon)))
        valley = -2.2 * max(np.sin(2 * np.pi * (h - 9.0) / 24.0), -0.4)
        u = self._daily(self.u_syn, when) + valley + 0.4 * np.sin(np.asarray(x) / 9_000.0)
        v = self._daily(self.v_syn, when) + 0.3 * np.cos(np.asarray(y) / 7_000.0)
        return np.asarray(u, dtype=np.float32), np.asarray(v, dtype=np.float32)


# --- random fields and clouds -------------------------------------------------------------
def correlated_field(
    rng: np.random.Generator, shape: tuple[int, int], corr_px: float
) -> np.ndarray:
    """Zero-mean unit-variance Gaussian random field with ~corr_px pixels correlation length."""
    white = rng.standard_normal(shape, dtype=np.float32)
    f = ndimage.gaussian_filter(white, sigma=max(corr_px / 2.0, 0.5), mode="wrap")
    return ((f - f.mean()) / (f.std() + 1e-12)).astype(np.float32)


def cloud_mask(
    rng: np.random.Generator,
    shape: tuple[int, int],
    res_m: float,
    fraction: float,
    inner: tuple[slice, slice] | None = None,
) -> np.ndarray:
    """Spatially coherent cloud mask covering exactly `fraction` of `inner` (default: all).

    Two scales (cloud fields ~4 km, cells ~1 km) of correlated noise, thresholded at a quantile.
    """
    if fraction <= 0:
        return np.zeros(shape, dtype=bool)
    coarse = correlated_field(rng, shape, 4_000.0 / res_m)
    fine = correlated_field(rng, shape, 900.0 / res_m)
    field = coarse + 0.45 * fine
    sample = field[inner] if inner is not None else field
    thr = np.quantile(sample, 1.0 - min(fraction, 1.0))
    return field > thr


def cloud_cover(mask: np.ndarray, res_m: float) -> np.ndarray:
    """Local cloud cover 0..1 (mask smoothed over ~300 m), for shading and transmissivity."""
    return ndimage.gaussian_filter(mask.astype(np.float32), sigma=max(300.0 / res_m, 0.5))


# --- vegetation ---------------------------------------------------------------------------
def greenness(day: date, z: np.ndarray, soil: np.ndarray) -> np.ndarray:
    """Green fraction of grassland (0..1): greens up with snow melt (later higher up), dries out
    over the summer (earlier on dry soils), and follows the dry spells and rain of the summer
    (:func:`weather_spells`)."""
    doy = day.timetuple().tm_yday
    peak = 165.0 + 0.026 * np.maximum(z - REF_ELEV_M, 0)
    width = 40.0 + 35.0 * soil
    up = smoothstep(doy - peak, -45.0, 0.0)
    down = np.exp(-((np.maximum(doy - peak, 0) / width) ** 2))
    spells = 0.16 * weather_spells(doy) * (1.0 - 0.7 * soil) * up
    return np.clip(0.25 + 0.72 * up * down + spells, 0, 1).astype(np.float32)


def weather_spells(doy: float) -> float:
    """Dry spells and rain over the region (-1..1, a few weeks each): grassland browns in a dry
    spell and greens again after rain, more on dry soils. The daily coarse sensors see these
    changes between two Sentinel-2 scenes; a fine series alone does not."""
    t = 2 * math.pi * (doy - 150.0)
    return 0.6 * math.sin(t / 24.0) + 0.4 * math.sin(t / 11.0 + 1.1)


@dataclass
class Surface:
    """Everything the physics needs about the ground on one grid (all arrays share a shape)."""

    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    hab: np.ndarray  # height above the valley floor, m
    slope: np.ndarray  # rad
    aspect: np.ndarray  # rad clockwise from north (direction the slope faces)
    tree: np.ndarray  # fractions 0..1
    imperv: np.ndarray
    water: np.ndarray
    rock: np.ndarray
    lake: np.ndarray
    soil: np.ndarray
    emis_bias: np.ndarray

    def fractions(self, day: date) -> dict[str, np.ndarray]:
        """Cover fractions summing to 1: forest, impervious, green/dry grass, rock, water."""
        land = 1.0 - self.water
        tree = np.minimum(self.tree, land)
        imp = np.minimum(self.imperv, land - tree)
        open_ = np.maximum(land - tree - imp, 0.0)
        rock = open_ * self.rock
        grass = open_ - rock
        g = greenness(day, self.z, self.soil)
        return {
            "forest": tree,
            "impervious": imp,
            "green": grass * g,
            "dry": grass * (1 - g),
            "rock": rock,
            "water": self.water,
        }


def slope_aspect_radians(z: np.ndarray, res: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect in radians (aspect 0 on flat cells), from the cube's own terrain code."""
    slope_deg, aspect_deg = terrain.slope_aspect(z, res, res)
    return np.radians(slope_deg), np.radians(np.nan_to_num(aspect_deg, nan=0.0))


def reflectance(surf: Surface, day: date) -> dict[str, np.ndarray]:
    """Surface reflectance per S2 band by linear mixing of cover endmembers."""
    fr = surf.fractions(day)
    out = {}
    for i, band in enumerate(S2_BANDS):
        out[band] = sum(fr[k] * ENDMEMBERS[k][i] for k in ENDMEMBERS).astype(np.float32)
    return out


def water_temperature_k(day: date, when_h: float, lake: np.ndarray) -> np.ndarray:
    """Lake ~290-296 K in summer; the glacier-fed river ~282-287 K."""
    doy = day.timetuple().tm_yday
    season = np.exp(-(((doy - 215.0) / 40.0) ** 2))
    diurnal = 0.6 * np.cos(2 * np.pi * (when_h - 16.0) / 24.0)
    t_lake = 289.5 + 5.0 * season + diurnal
    t_river = 282.0 + 4.0 * season + 0.4 * diurnal
    return (lake * t_lake + (1 - lake) * t_river).astype(np.float32)


def surface_temperature(
    surf: Surface,
    when: datetime,
    meteo: Meteo,
    cover: np.ndarray,
    noise: np.ndarray,
) -> np.ndarray:
    """Gap-free LST (K) of `surf` at `when` (naive UTC) under local cloud cover `cover` (0..1)."""
    day = when.date()
    lon_c = float(np.mean(surf.lon))
    cosz, az = sun_position(when, surf.lon, surf.lat)
    mu = np.maximum(cosz, 0.0)
    ta = meteo.air_temperature_k(when, surf.z, surf.hab, lon_c)
    rh = meteo.humidity(when, ta, lon_c)
    u, v = meteo.wind(when, surf.x, surf.y, lon_c)
    ws = np.hypot(u, v) * (1 + 0.8 * smoothstep(surf.hab, 200.0, 1500.0)) + 0.5

    trans = 1.0 - 0.72 * cover
    ghi = clear_sky_ghi(cosz, surf.z) * trans
    direct = ghi * 0.82 * (1 - cover)
    diffuse = ghi - direct
    cosi = illumination(cosz, az, surf.slope, surf.aspect)
    sw_in = direct * cosi / np.maximum(mu, 0.08) + diffuse * (1 + np.cos(surf.slope)) / 2

    fr = surf.fractions(day)
    land = np.maximum(1 - fr["water"], 1e-3)
    albedo = sum(fr[k] * ALBEDO[k] for k in ALBEDO) / land
    lw_net = (65.0 - 0.5 * (rh - 50.0)) * (1 - 0.75 * cover)
    rn = (1 - albedo) * sw_in - lw_net

    vpd = np.clip((100.0 - rh) / 45.0, 0.3, 1.8) ** 0.3
    ef = (
        fr["forest"] * 0.72
        + fr["green"] * (0.25 + 0.6 * surf.soil)
        + fr["dry"] * (0.05 + 0.25 * surf.soil)
        + fr["rock"] * 0.12
    ) / land
    ef = np.clip(ef * vpd, 0, 0.9)
    day_w = smoothstep(mu, 0.0, 0.25)
    tree = fr["forest"] / land
    imp = fr["impervious"] / land
    h = (8.0 + 3.0 * ws + day_w * (6.0 + 1.6 * ws)) * (1 + 0.9 * tree)
    storage = 0.12 + 0.25 * imp + 0.3 * fr["rock"] / land
    dt = np.where(rn > 0, rn * (1 - ef) * (1 - storage), rn * (1 - 0.5 * storage)) / h
    # heat stored in sealed surfaces and wet soils comes back late in the day and at night
    release = imp * (4.5 - 2.5 * day_w) + (1 - day_w) * 2.0 * (surf.soil - 0.5)
    t_land = ta + dt + release + surf.emis_bias + noise * (0.4 + 0.6 * day_w)
    t_water = water_temperature_k(day, float(np.mean(solar_time_h(when, lon_c))), surf.lake)
    return (fr["water"] * t_water + (1 - fr["water"]) * t_land).astype(np.float32)
