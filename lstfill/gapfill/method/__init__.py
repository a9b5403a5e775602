"""The gap-fill methods behind the jobs' method interface: the patch CNN of Kustura et al. (2025)
(`cnn`, the workflow's method) and the context U-Net (`context`, with its input channels,
training samples and tiled inference in `context_inputs`, `context_samples` and
`context_inference`), which the real-data benchmark runs beside it. `METHODS` maps the name a
benchmark uses to the class; `lstfill.method.load_method` finds a checkpoint's by its model name."""

from __future__ import annotations

from lstfill.gapfill.method.cnn import CnnFiller
from lstfill.gapfill.method.context import ContextFiller

METHODS = {"cnn": CnnFiller, "context": ContextFiller}
