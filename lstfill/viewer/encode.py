"""Maps as compact text the browser decodes without a server: each frame quantised to uint16
(0 = no data), differenced along rows (as TIFF's horizontal predictor does, so smooth fields
become small numbers), zlib-compressed and base64-encoded. The page inflates it with the
browser's own DecompressionStream("deflate"), which also works for a page opened from disk, where
fetching a binary file is not allowed.

Quantisation steps are far below the products' errors: 0.05 K for LST (the models' errors are
1-3 K), 0.01 K for uncertainties, 0.001 for NDVI.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass

import numpy as np

STEPS = {"lst": 0.05, "uncertainty": 0.01, "ndvi": 0.001}
TOP = 65535  # largest code; 0 is no data


@dataclass(frozen=True)
class Quantiser:
    """value = offset + step * (code - 1) for codes 1..65535; code 0 = no data."""

    offset: float
    step: float

    @classmethod
    def for_frames(cls, frames: list[np.ndarray], step: float) -> Quantiser:
        """The offset that puts the frames' smallest value at code 1 (a whole step below it)."""
        finite = [f[np.isfinite(f)] for f in frames]
        lows = [float(v.min()) for v in finite if v.size]
        low = min(lows) if lows else 0.0
        offset = float(np.floor(low / step) * step)
        return cls(offset, step)

    def codes(self, frame: np.ndarray) -> np.ndarray:
        """uint16 codes of `frame`; values above the range are clipped to the top code."""
        valid = np.isfinite(frame)
        q = np.zeros(frame.shape, np.uint16)
        scaled = np.round((frame[valid] - self.offset) / self.step) + 1
        q[valid] = np.clip(scaled, 1, TOP).astype(np.uint16)
        return q

    def values(self, codes: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`codes` (NaN for code 0)."""
        out = self.offset + self.step * (codes.astype(np.float64) - 1)
        return np.where(codes == 0, np.nan, out).astype(np.float32)


def encode_codes(codes: np.ndarray) -> str:
    """uint16 (rows, cols) codes as base64 of zlib(row-differenced little-endian uint16)."""
    q = np.ascontiguousarray(codes, dtype=np.uint16)
    diff = q.copy()
    diff[:, 1:] = q[:, 1:] - q[:, :-1]  # wraps modulo 2**16, undone by a wrapping cumulative sum
    return base64.b64encode(zlib.compress(diff.astype("<u2").tobytes(), 9)).decode("ascii")


def decode_codes(text: str, shape: tuple[int, int]) -> np.ndarray:
    """The inverse of :func:`encode_codes` (what the page's JavaScript does)."""
    diff = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<u2").reshape(shape)
    return np.cumsum(diff, axis=1, dtype=np.uint64).astype(np.uint16)
