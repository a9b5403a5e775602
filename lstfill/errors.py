"""Errors that name the file or config key at fault, so a user knows what to fix."""

from __future__ import annotations

from pathlib import Path


class LstfillError(Exception):
    """Base class of lstfill's own errors."""


class InputError(LstfillError):
    """An input file is unreadable, corrupt, on the wrong grid or CRS, or holds invalid values."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OutputError(LstfillError):
    """An output cannot be written: the disk is full or its folder is not writable."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(LstfillError):
    """A config key is unknown, missing or has an invalid value."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"config key '{key}': {problem}")
