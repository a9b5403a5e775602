"""lstfill: gap-free, high-resolution land surface temperature."""

__version__ = "0.1.0"
