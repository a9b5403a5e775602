"""The gap-fill methods behind the jobs' method interface: the patch CNN of Kustura et al. (2025)
(`cnn`, the workflow's method) and the context U-Net (`context`, with its input channels and
training samples in `context_inputs` and `context_samples`), which the real-data benchmark runs
beside it. `METHODS` maps the name a checkpoint or benchmark uses to the class."""

from __future__ import annotations

from lstfill.gapfill.method.cnn import CnnFiller
from lstfill.gapfill.method.context import ContextFiller

METHODS = {"cnn": CnnFiller, "context": ContextFiller}
