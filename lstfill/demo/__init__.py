"""The synthetic demo world: files in every provider's real format, with the truth they sample.

`world` is the static landscape, `physics` the sun, weather and surface energy balance, and one
writer per provider (`static` for SRTM and land cover, `ecostress`, `inca`, `sentinel2`,
`sentinel3`, `modis`) turns them into raw files that the readers in `lstfill.sources` parse as
they parse real downloads. `region` writes the main demo region (raw files and truth; run by the
`acquire_raw` checkpoint); `israel` writes the downscaling job's Israel-format region (the
`downscale_demo_region` rule).
"""
