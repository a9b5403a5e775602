"""Classical thermal-sharpening baselines for LST super-resolution: bicubic interpolation
(`bicubic`), TsHARP/DisTrad (`tsharp`; Kustas et al. 2003; Agam et al. 2007) and the Data Mining
Sharpener (`dms`; Gao et al. 2012), on a fine grid exactly nested in the coarse one.

Import the submodule you need: DMS pulls in scikit-learn, which prediction jobs never need."""
