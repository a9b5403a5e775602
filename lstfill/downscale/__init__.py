"""Downscaling: a pixel's LST deviation from its 9x9 neighbourhood, predicted from topography
(MLP)."""
