"""The viewer's data files: quantised, row-differenced, compressed frames that decode to the
maps within half a step; the payload's slider positions; the report quicklook's date."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pytest

from lstfill.viewer.build import _script, colour_lut, job_payload
from lstfill.viewer.encode import STEPS, Quantiser, decode_codes, encode_codes
from lstfill.viewer.layers import JobView, Panel, Series
from lstfill.viewer.quicklook import plot_product, representative_time


def day(n: int) -> dt.datetime:
    return dt.datetime(2023, 7, n, tzinfo=dt.UTC)


def lst_field(seed: int, shape=(40, 50)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    field = 290 + 10 * np.sin(x / 7) + 5 * np.cos(y / 5) + rng.normal(0, 0.5, shape)
    field[5:15, 10:30] = np.nan  # a cloud
    return field.astype(np.float32)


def test_frames_decode_to_the_map_within_half_a_step():
    frames = [lst_field(1), lst_field(2) + 30]
    quantiser = Quantiser.for_frames(frames, STEPS["lst"])
    for frame in frames:
        text = encode_codes(quantiser.codes(frame))
        back = quantiser.values(decode_codes(text, frame.shape))
        assert np.array_equal(np.isnan(back), np.isnan(frame))
        ok = np.isfinite(frame)
        assert np.abs(back[ok] - frame[ok]).max() <= STEPS["lst"] / 2 + 1e-4
    # the smallest value maps to code 1, never to 0 (no data)
    assert quantiser.codes(frames[0])[np.isfinite(frames[0])].min() >= 1


def test_row_differences_wrap_and_compress():
    codes = np.array([[1, 65535, 2, 0, 65535], [0, 0, 0, 0, 0]], np.uint16)
    assert np.array_equal(decode_codes(encode_codes(codes), codes.shape), codes)
    smooth = Quantiser(250.0, 0.05).codes(lst_field(3, (200, 200)))
    text = encode_codes(smooth)
    assert len(text) < 0.75 * smooth.nbytes * 4 / 3  # well below raw base64


def test_values_beyond_the_range_are_clipped_not_wrapped():
    quantiser = Quantiser(0.0, 0.01)
    codes = quantiser.codes(np.array([[0.0, 700.0, np.nan]], np.float32))
    assert codes.tolist() == [[1, 65535, 0]]


def view_of_three_days() -> JobView:
    observed = Panel(
        "observed",
        "observed",
        "lst",
        "K",
        [day(1), day(2), day(3)],
        [lst_field(1), lst_field(2), np.full((40, 50), np.nan, np.float32)],
    )
    product = Panel("filled", "filled", "lst", "K", [day(1), day(3)], [lst_field(4), lst_field(5)])
    series = [Series("observed", "observed", "points"), Series("filled", "filled")]
    return JobView("gapfill", "Gap-fill", [observed, product], series)


def test_payload_maps_each_slider_position_to_a_frame():
    payload = job_payload(view_of_three_days())
    assert payload["times"] == ["2023-07-01T00:00:00Z", "2023-07-02T00:00:00Z",
                                "2023-07-03T00:00:00Z"]  # fmt: skip
    observed, filled = payload["panels"]
    assert observed["at"] == [0, 1, 2]
    assert filled["at"] == [0, -1, 1]
    assert (filled["width"], filled["height"]) == (50, 40)
    assert payload["series"][1] == {"panel": "filled", "label": "filled", "style": "line",
                                    "interval": None}  # fmt: skip
    back = Quantiser(filled["offset"], filled["step"]).values(
        decode_codes(filled["frames"][1], (40, 50))
    )
    np.testing.assert_allclose(back, lst_field(5), atol=0.026)


def test_large_maps_are_shown_as_block_means():
    frame = np.arange(25 * 23, dtype=np.float32).reshape(25, 23) / 10 + 280
    frame[:4, :4] = np.nan
    view = JobView("superres", "t", [Panel("p", "250 m LST", "lst", "K", [day(1)], [frame])], [])
    (panel,) = job_payload(view, max_side=10)["panels"]
    assert (panel["height"], panel["width"], panel["title"]) == (
        9,
        8,
        "250 m LST (3x3 block means)",
    )
    back = Quantiser(panel["offset"], panel["step"]).values(
        decode_codes(panel["frames"][0], (9, 8))
    )
    assert np.isnan(back[0, 0])  # a block without a valid pixel
    assert back[1, 1] == pytest.approx(np.nanmean(frame[3:6, 3:6]), abs=0.026)
    assert back[8, 7] == pytest.approx(frame[24, 21:23].mean(), abs=0.026)  # the padded edge
    (same,) = job_payload(view, max_side=25)["panels"]
    assert (same["height"], same["width"], same["title"]) == (25, 23, "250 m LST")


def test_script_is_strict_json_behind_an_assignment():
    text = _script("['x']", {"a": float("nan"), "b": [1.5]})
    body = re.fullmatch(
        r"window\.LSTFILL=window\.LSTFILL\|\|\{jobs:\{\}\};window\.LSTFILL\['x'\]=(.*);\n", text
    )
    assert body and json.loads(body[1]) == {"a": None, "b": [1.5]}  # fmt: skip


def test_colour_tables_have_256_colours():
    lut = colour_lut("inferno")
    assert len(lut) == 256 * 6 and lut[:6] == "000003"


def test_quicklook_date_has_every_panel_and_a_half_observed_input(tmp_path):
    view = view_of_three_days()
    # day 2 lacks the product; day 3's input is empty; day 1 has both, its input ~90 % valid
    assert representative_time(view) == day(1)
    out = plot_product(view, tmp_path / "q.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_every_kind_has_a_colour_map(kind):
    from lstfill.viewer.build import COLOUR_MAPS

    assert kind in COLOUR_MAPS
