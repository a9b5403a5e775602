"""Region grid: bbox and MGRS construction, pixel centres, coarsening."""

import numpy as np
import pytest
from pyproj import Transformer

from lstfill.grid import Grid, grid_from_config, mgrs_tile_origin


def test_bbox_grid_rounds_extent_up_and_centres_pixels():
    g = Grid.from_bbox("EPSG:32632", [600000, 5200000, 600150, 5200100], 70)
    assert g.shape == (2, 3)  # 100/70 -> 2 rows, 150/70 -> 3 cols
    assert g.bounds == (600000, 5200100 - 140, 600210, 5200100)
    np.testing.assert_allclose(g.x, [600035, 600105, 600175])
    np.testing.assert_allclose(g.y, [5200065, 5199995])


@pytest.mark.parametrize(
    ("tile", "epsg", "west", "north"),
    [
        ("32TPT", 32632, 600000, 5300000),  # Innsbruck
        ("33UXP", 32633, 600000, 5400000),  # Vienna
        ("T31UFU", 32631, 600000, 5900000),
        ("55HBU", 32755, 200000, 5900000),  # southern hemisphere
    ],
)
def test_mgrs_tile_origin(tile, epsg, west, north):
    assert mgrs_tile_origin(tile) == (epsg, west, north)


def test_mgrs_tile_contains_its_city():
    g = Grid.from_mgrs("32TPT", 70)
    assert g.shape == (1569, 1569)
    x, y = Transformer.from_crs("EPSG:4326", g.crs, always_xy=True).transform(11.39, 47.27)
    xmin, ymin, xmax, ymax = g.bounds
    assert xmin < x < xmax and ymin < y < ymax


@pytest.mark.parametrize("bad", ["32TP", "61TPT", "32IPT", "32TPI", "xx123"])
def test_bad_mgrs_ids_are_rejected(bad):
    with pytest.raises(ValueError):
        mgrs_tile_origin(bad)


def test_coarsen_keeps_origin_and_covers_extent():
    g = Grid.from_bbox("EPSG:32632", [0, 0, 700, 490], 70).coarsen(4)
    assert g.shape == (2, 3) and g.res == (280, 280)
    assert g.bounds[0] == 0 and g.bounds[3] == 490


def test_lonlat_and_round_trip():
    g = grid_from_config(
        {"crs": "EPSG:32632", "bounds": [675000, 5231000, 686200, 5242200], "resolution": 70}
    )
    lon, lat = g.lonlat()
    assert lon.shape == g.shape and 11.2 < lon.mean() < 11.5 and 47.1 < lat.mean() < 47.4
    assert Grid.from_dict(g.to_dict()) == g


def test_invalid_bbox():
    with pytest.raises(ValueError, match="xmin < xmax"):
        Grid.from_bbox("EPSG:32632", [10, 0, 0, 10], 1)
