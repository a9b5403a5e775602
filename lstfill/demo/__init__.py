"""The synthetic demo world: files in every provider's real format, with the truth they sample.

`world` is the static landscape, `physics` the sun, weather and surface energy balance, and one
writer per provider (`static` for SRTM and land cover, `ecostress`, `inca`, `sentinel2`,
`sentinel3`, `modis`) turns them into raw files that the readers in `lstfill.sources` parse as
they parse real downloads. Each demo world has one writer with the shape of a step,
`(settings, outputs...)`, run by one rule of `rules/demo.smk`: `region.write_region` the main
demo region (raw files and truth; rule demo_region), `israel.write_israel_region` the
downscaling job's Israel-format region (rule demo_israel).
"""
