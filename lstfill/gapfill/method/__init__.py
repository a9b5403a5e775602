"""The gap-fill methods behind the jobs' method interface: the patch CNN of Kustura et al. (2025)
(`cnn`) and the context U-Net (`context`, with its input channels, training samples and tiled
inference in `context_inputs`, `context_samples` and `context_inference`). `METHODS` maps the
config value that selects a method (`gapfill.methods`, `gapfill.method`) to its class;
`lstfill.method.load_method` finds a checkpoint's by its model name, `method_key` its config
value."""

from __future__ import annotations

from lstfill.gapfill.method.cnn import CnnFiller
from lstfill.gapfill.method.context import ContextFiller

METHODS = {"patch_cnn": CnnFiller, "context": ContextFiller}


def method_key(filler: object) -> str:
    """The config value (a key of METHODS) of a filler's class."""
    for key, cls in METHODS.items():
        if isinstance(filler, cls):
            return key
    raise TypeError(f"{type(filler).__name__} is not a gap-fill method")
