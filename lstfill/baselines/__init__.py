"""Classical thermal-sharpening baselines for LST super-resolution: bicubic interpolation,
TsHARP/DisTrad (Kustas et al. 2003; Agam et al. 2007) and the Data Mining Sharpener
(Gao et al. 2012), on a fine grid exactly nested in the coarse one."""

from lstfill.baselines.bicubic import bicubic, block_mean, block_mean_t4
from lstfill.baselines.dms import DmsConfig, dms, homogeneity_weights, sharpen_dms
from lstfill.baselines.tsharp import fit_tsharp, fractional_cover, tsharp

__all__ = [
    "DmsConfig",
    "bicubic",
    "block_mean",
    "block_mean_t4",
    "dms",
    "fit_tsharp",
    "fractional_cover",
    "homogeneity_weights",
    "sharpen_dms",
    "tsharp",
]
