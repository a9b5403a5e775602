"""Fusion: daily fine NDVI and reflectance from sparse Sentinel-2 and daily coarse data (EFAST).

Senty et al. 2024, Remote Sensing 16:1833. Inputs: the region's Sentinel-2 scenes on the region
grid (clouds, shadows and snow masked through SCL) and a daily coarse series (Sentinel-3 SYN/OLCI
or MODIS MOD09GQ red/NIR) on a grid that nests exactly in the region grid (`ratio` fine pixels
per coarse pixel). Output: one COG per day on the region grid with NDVI, the fused
reflectances, the sum of fine weights (`weight`), the days to the nearest fine scene used
(`days_to_fine`) and a `flag` band; evaluation withholds Sentinel-2 scenes and scores every
method and baseline on their clear pixels.
"""
