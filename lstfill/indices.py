"""Spectral indices from Sentinel-2 reflectance (0-1)."""

from __future__ import annotations

import numpy as np

# name -> (first band, second band): index = (first - second) / (first + second)
NORMALISED_DIFFERENCES: dict[str, tuple[str, str]] = {
    "ndvi": ("B08", "B04"),  # vegetation (Rouse et al. 1974)
    "ndwi": ("B03", "B08"),  # open water (McFeeters 1996)
    "ndmi": ("B08", "B11"),  # vegetation moisture (Gao 1996)
    "ndbi": ("B11", "B08"),  # built-up (Zha et al. 2003)
}


def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b), NaN where either is NaN or the sum is not positive."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(total > 0, (a - b) / total, np.nan)
    return out.astype(np.float32)


def compute_indices(bands: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every index in NORMALISED_DIFFERENCES whose two bands are present."""
    return {
        name: normalised_difference(bands[x], bands[y])
        for name, (x, y) in NORMALISED_DIFFERENCES.items()
        if x in bands and y in bands
    }
