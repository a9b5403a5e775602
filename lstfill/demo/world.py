"""The demo's static synthetic landscape: alpine terrain, land cover and hidden soil properties.

Everything is a function of position in a local metric frame (metres east/north of the region
centre), built from seeded periodic random textures, so the same ground has the same elevation
and land cover whichever grid samples it (the SRTM tile, the Copernicus HRL grid in EPSG:3035,
the Sentinel-2 10 m grid or the MODIS sinusoidal grid). The landscape is an E-W valley with a
flat floor at ~560-600 m (river, lake, town, roads) between mountains rising above 2000 m.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

EARTH_RADIUS_M = 6_371_000.0
FLOOR_M = 585.0  # valley floor at the region centre
FLOOR_HALF_WIDTH_M = 1_100.0
SLOPE_WIDTH_M = 4_500.0  # floor edge to ridge
RIVER_HALF_WIDTH_M = 45.0


def rng_for(seed: int, name: str, *keys: int) -> np.random.Generator:
    """An independent generator per component (and index), so components never share state."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()), *(int(k) for k in keys)])


def smoothstep(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((v - np.float32(lo)) * np.float32(1.0 / (hi - lo)), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def spectral_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    spacing: float,
    beta: float,
    lmin: float,
    lmax: float,
) -> np.ndarray:
    """Periodic Gaussian random field, k^-beta power spectrum between wavelengths lmin and lmax.

    Zero mean, unit standard deviation, float32.
    """
    ky = np.fft.fftfreq(shape[0], d=spacing)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=spacing)[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = np.inf
    amp = k ** (-beta / 2.0) * np.exp(-((k * lmin) ** 2)) * (1.0 - np.exp(-((k * lmax) ** 2)))
    amp[0, 0] = 0.0
    white = rng.standard_normal(shape)
    field = np.fft.irfft2(np.fft.rfft2(white) * amp, s=shape)
    field -= field.mean()
    return (field / (field.std() + 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class Texture:
    """A periodic random field sampled bilinearly at any frame position (x, y in metres)."""

    data: np.ndarray
    spacing: float

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.ndim == 2 and y.ndim == 2 and x.shape[0] == 1 and y.shape[1] == 1:
            return self._separable(x[0], y[:, 0])
        xb, yb = np.broadcast_arrays(x, y)
        coords = np.stack([(-yb / self.spacing).ravel(), (xb / self.spacing).ravel()])
        out = ndimage.map_coordinates(self.data, coords, order=1, mode="grid-wrap")
        return out.reshape(xb.shape)

    def _separable(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Fast path for axis-aligned grids: interpolate along x, then along y."""
        ny, nx = self.data.shape

        def idx(c: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            f = np.floor(c)
            i0 = f.astype(np.int64) % n
            return i0, (i0 + 1) % n, (c - f).astype(np.float32)

        x0, x1, wx = idx(xs / self.spacing, nx)
        y0, y1, wy = idx(-ys / self.spacing, ny)
        rows = self.data[:, x0] * (1 - wx) + self.data[:, x1] * wx
        return rows[y0] * (1 - wy)[:, None] + rows[y1] * wy[:, None]


def texture(
    rng: np.random.Generator, n: int, spacing: float, beta: float, lmin: float, lmax: float
) -> Texture:
    return Texture(spectral_noise(rng, (n, n), spacing, beta, lmin, lmax), spacing)


class World:
    """The synthetic landscape around (lon0, lat0); all methods take frame coordinates in metres."""

    def __init__(self, seed: int, lon0: float, lat0: float) -> None:
        self.seed = seed
        self.lon0 = lon0
        self.lat0 = lat0
        rng = rng_for(seed, "terrain")
        self.broad = texture(rng, 512, 240.0, 3.0, 2_000.0, 40_000.0)
        self.mid = texture(rng, 512, 40.0, 3.0, 100.0, 5_000.0)
        self.fine = texture(rng, 256, 12.0, 2.5, 30.0, 800.0)
        self.ridge = texture(rng, 256, 300.0, 3.0, 3_000.0, 30_000.0)
        lc = rng_for(seed, "landcover")
        self.forest = texture(lc, 512, 30.0, 2.0, 120.0, 2_500.0)
        self.town = texture(lc, 256, 20.0, 2.0, 60.0, 600.0)
        self.soil = texture(lc, 256, 300.0, 3.0, 800.0, 15_000.0)
        self.emis = texture(lc, 256, 40.0, 2.0, 150.0, 3_000.0)
        self.meander_amp = float(lc.uniform(250.0, 450.0))
        self.meander_len = float(lc.uniform(9_000.0, 14_000.0))
        self.meander_phase = float(lc.uniform(0, 2 * np.pi))
        self.tilt = float(lc.uniform(-0.06, 0.06))
        self.lake_x = float(lc.uniform(-3_500.0, -1_500.0))
        self.town_x = float(lc.uniform(-400.0, 400.0))

    # --- geometry -------------------------------------------------------------------------
    def to_frame(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Equirectangular metres east/north of (lon0, lat0); linear in lon/lat."""
        k = np.pi / 180.0 * EARTH_RADIUS_M
        x = (np.asarray(lon, dtype=np.float64) - self.lon0) * k * np.cos(np.radians(self.lat0))
        return x, (np.asarray(lat, dtype=np.float64) - self.lat0) * k

    def centreline(self, x: np.ndarray) -> np.ndarray:
        """North offset (m) of the river, the valley axis, at frame x."""
        ph = self.meander_phase
        wave = np.sin(2 * np.pi * x / self.meander_len + ph) - np.sin(ph)
        return self.tilt * x + self.meander_amp * wave

    def floor(self, x: np.ndarray) -> np.ndarray:
        """Valley floor elevation (m): the river flows east, ~0.8 m per km."""
        return FLOOR_M - 0.0008 * np.asarray(x)

    def lake(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Normalised elliptic distance to the lake centre (< 1 inside the lake)."""
        cy = self.centreline(np.float64(self.lake_x)) + 650.0
        return np.hypot((x - self.lake_x) / 480.0, (y - cy) / 230.0)

    def elevation(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Terrain height (m): flat valley floor, smooth-stepped slopes, multi-scale roughness."""
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32)
        d = y - self.centreline(x)
        ad = np.abs(d)
        slope = smoothstep(ad, FLOOR_HALF_WIDTH_M, FLOOR_HALF_WIDTH_M + SLOPE_WIDTH_M)
        ridge = 1_550.0 + 200.0 * self.ridge(x, y)
        rough = smoothstep(ad, FLOOR_HALF_WIDTH_M - 200.0, FLOOR_HALF_WIDTH_M + 1_500.0)
        far = smoothstep(ad, FLOOR_HALF_WIDTH_M + SLOPE_WIDTH_M, 20_000.0)
        relief = slope * ridge + far * 350.0 * self.broad(x, y)
        relief = relief + rough * (130.0 * self.mid(x, y) + 20.0 * self.fine(x, y))
        # a soft floor: slopes never dip far below the valley floor
        relief = np.where(relief < 20.0, 20.0 * np.exp((relief - 20.0) / 60.0), relief)
        z = self.floor(x) + rough * relief + (1.0 - rough) * slope * ridge + 1.5 * self.fine(x, y)
        river = ad < RIVER_HALF_WIDTH_M
        z = np.where(river, self.floor(x) - 3.0, z)
        lake = self.lake(x, y) < 1.0
        return np.where(lake, self.floor(x) - 1.0, z).astype(np.float32)

    # --- land cover -----------------------------------------------------------------------
    def landcover(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
        """HRL-like fields: tree cover % and imperviousness % (0-100), WAW class (0-4), plus the
        hidden fractions rock (bare rock/scree) and lake (1 where the water is the lake)."""
        x, y = np.broadcast_arrays(x, y)
        d = y - self.centreline(x)
        ad = np.abs(d)
        hab = z - self.floor(x)
        lake_r = self.lake(x, y)
        lake = lake_r < 1.0
        river = ad < RIVER_HALF_WIDTH_M
        water = lake | river
        wet = (lake_r >= 1.0) & (lake_r < 1.25)

        treeline = 1_850.0 + 150.0 * self.ridge(x + 7_000.0, y)
        potential = smoothstep(hab, 40.0, 220.0) * (
            1.0 - smoothstep(z, treeline - 150, treeline + 120)
        )
        f = self.forest(x, y)
        tcd = np.clip(2.6 * potential - 1.05 + 0.75 * f, 0.0, 0.97)
        riparian = (ad >= RIVER_HALF_WIDTH_M) & (ad < 130.0)
        tcd = np.where(riparian, np.maximum(tcd, 0.55 + 0.2 * np.clip(f, -1, 1)), tcd)

        t = self.town(x, y)
        floor_ok = 1.0 - smoothstep(hab, 40.0, 120.0)
        town = np.exp(-(((x - self.town_x) / 2_800.0) ** 2) - ((d - 250.0) / 1_000.0) ** 2)
        villages = sum(
            0.8 * np.exp(-(((x - vx) / 650.0) ** 2) - ((d - vd) / 450.0) ** 2)
            for vx, vd in ((7_000.0, 450.0), (-8_500.0, -500.0), (13_500.0, -300.0))
        )
        density = np.clip(town + villages, 0.0, 1.0) * floor_ok
        imd = np.clip(density * (0.8 + 0.35 * t), 0.0, 1.0)
        streets = (np.abs(np.mod(x - self.town_x, 450.0) - 225.0) < 7.0) & (town > 0.15)
        motorway = np.abs(d + 650.0) < 14.0
        road = np.abs(d - 520.0) < 7.0
        lanes = (streets | motorway | road) & (hab < 150.0)
        imd = np.where(lanes, np.maximum(imd, 0.9), imd)
        tcd = tcd * (1.0 - imd)

        imd = np.where(water, 0.0, imd)
        tcd = np.where(water, 0.0, tcd)
        waw = np.where(water, 1, np.where(wet & ~lanes, 3, 0)).astype(np.uint8)
        rock = smoothstep(z, 2_200.0, 2_650.0) * (1.0 - tcd)
        return {
            "tree_cover": (100.0 * tcd).astype(np.float32),
            "imperviousness": (100.0 * imd).astype(np.float32),
            "waw": waw,
            "rock": rock.astype(np.float32),
            "lake": lake.astype(np.float32),
        }

    def soil_moisture(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Persistent, never-observed relative soil moisture (0.1-0.95), wetter near the river."""
        d = np.abs(y - self.centreline(x))
        s = 0.5 + 0.17 * self.soil(x, y) + 0.2 * np.exp(-d / 500.0)
        return np.clip(s, 0.1, 0.95).astype(np.float32)

    def emissivity_bias_k(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Persistent LST offset (K) from unobserved emissivity / surface material differences."""
        return (0.6 * self.emis(x, y)).astype(np.float32)
