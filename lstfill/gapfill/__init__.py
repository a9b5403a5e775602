"""Gap-filling of cloud gaps in LST time series (Kustura et al. 2025 patch CNN, its baselines and
the artificial-gap evaluation protocol)."""
