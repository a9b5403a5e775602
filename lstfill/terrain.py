"""Slope and aspect of a DEM on a projected grid (Horn 1981 finite differences)."""

from __future__ import annotations

import numpy as np


def slope_aspect(
    elevation: np.ndarray, res_x: float, res_y: float
) -> tuple[np.ndarray, np.ndarray]:
    """Slope (degrees from horizontal) and aspect (degrees clockwise from north, downslope).

    Horn's 3x3 weighted differences, with edge pixels padded by replication. Flat cells get
    aspect NaN; NaN elevations propagate to their neighbours.
    """
    z = np.pad(np.asarray(elevation, dtype=np.float64), 1, mode="edge")
    # Windows: a b c / d e f / g h i ; rows run north to south.
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * res_x)  # towards east
    dzdy = ((a + 2 * b + c) - (g + 2 * h + i)) / (8 * res_y)  # towards north
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    # Downslope direction is -gradient; azimuth measured clockwise from north.
    aspect = np.degrees(np.arctan2(-dzdx, -dzdy)) % 360.0
    aspect = np.where((dzdx == 0) & (dzdy == 0), np.nan, aspect)
    return slope.astype(np.float32), aspect.astype(np.float32)
